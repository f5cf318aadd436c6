package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/oauth/inventory"
	"github.com/chitdev/chit/ui"
)

func (s *Server) overviewPage(c echo.Context) error {
	cc, paths := consoleOf(c), pathsOf(c)
	o, err := s.console.Inventory.Overview(c.Request().Context(), cc.tenant.ID)
	if err != nil {
		return err
	}
	denials := paths.page("denials")
	p := ui.OverviewProps{Shell: s.shell(c, "Overview", ui.NavOverview), Self: paths.overview(), AsOf: o.Now,
		Now: []ui.StatProps{
			{Label: "Live agents", Value: thousands(o.LiveAgents), Hint: thousands(o.SilentAgents) + " silent (no heartbeat)",
				Href: withQuery(paths.page("agents"), url.Values{"status": {string(inventory.AgentLive)}}),
				Kind: nonzero(o.LiveAgents, "live"), TestID: "stat-live-agents"},
			{Label: "Active tokens", Value: thousands(o.ActiveTokens), Hint: "accepted by resource servers now",
				Kind: nonzero(o.ActiveTokens, "live"), TestID: "stat-active-tokens"},
			{Label: "Active tasks", Value: thousands(o.ActiveTasks), Hint: "neither completed nor past their deadline",
				Href: withQuery(paths.page("tasks"), url.Values{"status": {string(inventory.TaskActive)}}),
				Kind: nonzero(o.ActiveTasks, "active"), TestID: "stat-active-tasks"},
		},
		LastHour: []ui.StatProps{
			{Label: "Denials", Value: thousands(o.DenialsLastHour), Hint: "refused requests", Href: denials,
				Kind: nonzero(o.DenialsLastHour, "denied"), TestID: "stat-denials"},
			{Label: "Revocations", Value: thousands(o.RevocationsLastHour), Hint: "token renewals left out",
				Href: paths.page("revocations"), Kind: nonzero(o.RevocationsLastHour, "warning"), TestID: "stat-revocations"},
		},
		Completions: completionCards(o, paths),
	}
	for _, tc := range o.TopDenialChecks {
		p.TopChecks = append(p.TopChecks, ui.CheckCount{Check: string(tc.Check), Count: tc.Count,
			Href: withQuery(denials, url.Values{"check": {string(tc.Check)}})})
	}
	return render(c, http.StatusOK, ui.OverviewPage(p))
}

// completionCards measure credentials against the work they were for.
func completionCards(o inventory.Overview, paths consolePaths) []ui.StatProps {
	cm := o.Completions
	ratio := ui.StatProps{Label: "Credential lifetime ÷ task duration", Value: "—",
		Hint: "no completed task had a token", TestID: "stat-lifetime-ratio"}
	if cm.Tasks > 0 {
		ratio.Value = strconv.FormatFloat(cm.MedianLifetimeRatio, 'f', 1, 64) + "×"
		ratio.Hint = "median over " + counted(cm.Tasks, "task", "tasks") + "; above 1, credentials were valid longer than the work took"
	}
	left := ui.StatProps{Label: "Credential time left when tasks ended", Value: "—",
		Hint: "no token was still valid when its task ended", TestID: "stat-time-left"}
	if cm.Tokens > 0 {
		left.Value = ui.FormatAge(cm.TimeLeftMedian)
		left.Hint = "median over " + counted(cm.Tokens, "token", "tokens") + ", " + ui.FormatAge(cm.TimeLeftTotal) +
			" in all, cut off by completion"
	}
	return []ui.StatProps{
		{Label: "Completed tasks", Value: thousands(o.CompletedTasks), Hint: "completed or revoked at task level",
			Href: withQuery(paths.page("tasks"), url.Values{"status": {string(inventory.TaskCompleted)}}),
			Kind: nonzero(o.CompletedTasks, "completed"), TestID: "stat-completed-tasks"},
		ratio, left,
	}
}

// nonzero colours a figure only when there is something to see.
func nonzero(n int, kind string) string {
	if n == 0 {
		return ""
	}
	return kind
}

// counted is "1 task", "2 tasks".
func counted(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return thousands(n) + " " + many
}

// thousands writes a count with thousands separators: "1,204".
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func (s *Server) agentsPage(c echo.Context) error {
	cc, paths := consoleOf(c), pathsOf(c)
	status, err := inventory.ParseAgentStatus(c.QueryParam("status"))
	if err != nil {
		return err
	}
	taskID, err := idFilter(c, "task")
	if err != nil {
		return err
	}
	pg, err := pageOf(c)
	if err != nil {
		return err
	}
	list, err := s.console.Inventory.Agents(c.Request().Context(), cc.tenant.ID, inventory.AgentFilter{Status: status, TaskID: taskID}, pg)
	if err != nil {
		return err
	}
	path := paths.page("agents")
	p := ui.AgentsProps{Shell: s.shell(c, "Agents", ui.NavAgents),
		Listing: listing(c, path, list.Next, status != "" || taskID != uuid.Nil),
		Statuses: options(string(status),
			ui.Option{Value: string(inventory.AgentLive), Label: "Holding authority"},
			ui.Option{Value: string(inventory.AgentSilent), Label: inventory.AgentSilent.Label()},
			ui.Option{Value: string(inventory.AgentRevoked), Label: "Revoked (any)"},
			ui.Option{Value: string(inventory.AgentLineageRevoked), Label: inventory.AgentLineageRevoked.Label()},
			ui.Option{Value: string(inventory.AgentExpired), Label: inventory.AgentExpired.Label()}),
	}
	if taskID != uuid.Nil {
		p.Task, p.TaskOff = ui.Ref{ID: taskID.String(), Href: paths.task(taskID)}, without(c, path, "task")
	}
	mayRevoke := canRevoke(c)
	for _, a := range list.Agents {
		p.Rows = append(p.Rows, paths.agentRow(a, mayRevoke))
	}
	return render(c, http.StatusOK, ui.AgentsPage(p))
}

func (s *Server) agentPage(c echo.Context) error {
	cc, paths := consoleOf(c), pathsOf(c)
	id, err := idParam(c, "id", "agent")
	if err != nil {
		return err
	}
	d, err := s.console.Inventory.Agent(c.Request().Context(), cc.tenant.ID, id)
	if err != nil {
		return err
	}
	mayRevoke := canRevoke(c)
	var children []ui.TreeNode
	for _, child := range d.Children {
		children = append(children, paths.agentNode(child, oauth.NewScope(d.Scope...).Missing(oauth.NewScope(child.Scope...)), false))
	}
	p := ui.AgentDetailProps{Shell: s.shell(c, "Agent "+ui.ShortID(d.ID.String()), ui.NavAgents),
		ID: d.ID.String(), SPIFFEID: d.SPIFFEID, Status: agentKind(d.Status), StatusLabel: d.Status.Label(),
		Task: ui.Ref{ID: d.TaskID.String(), Href: paths.task(d.TaskID)}, Parent: refTo(d.ParentID, paths.agent),
		Principal: d.Principal, ClientID: d.ClientID, Depth: d.Depth, Scope: d.Scope, CreatedAt: d.CreatedAt,
		LastSeenAt: d.LastSeenAt, HeartbeatAge: d.HeartbeatAge, RevokedAt: timeOr(d.RevokedAt),
		Revocation: refTo(d.RevocationID, paths.revocation), RevokedBy: refTo(d.RevokedAncestor, paths.agent),
		LiveTokens: d.LiveTokens, Lineage: paths.chainTree(d.Task, d.Chain, true, children),
		DenialsHref: withQuery(paths.page("denials"), url.Values{"agent": {d.ID.String()}}),
	}
	if d.ChildrenTruncated {
		p.LineageNote = "It launched more than " + strconv.Itoa(inventory.MaxChildren) + " sub-agents: the first are shown."
	}
	for _, t := range d.Tokens {
		p.Tokens = append(p.Tokens, paths.tokenRow(t, mayRevoke))
	}
	if d.TokensTruncated {
		p.TokensNote = "Only its newest " + strconv.Itoa(inventory.MaxAgentTokens) + " tokens are shown."
	}
	if mayRevoke && d.Status.HoldsAuthority() {
		p.RevokeHref, p.RevokeChainHref = paths.revoke(oauth.LevelAgent, d.ID), paths.revoke(oauth.LevelChain, d.ID)
	}
	return render(c, http.StatusOK, ui.AgentPage(p))
}

func (s *Server) tasksPage(c echo.Context) error {
	cc, paths := consoleOf(c), pathsOf(c)
	status, err := inventory.ParseTaskStatus(c.QueryParam("status"))
	if err != nil {
		return err
	}
	principal := strings.TrimSpace(c.QueryParam("principal"))
	pg, err := pageOf(c)
	if err != nil {
		return err
	}
	list, err := s.console.Inventory.Tasks(c.Request().Context(), cc.tenant.ID, inventory.TaskFilter{Status: status, Principal: principal}, pg)
	if err != nil {
		return err
	}
	p := ui.TasksProps{Shell: s.shell(c, "Tasks", ui.NavTasks),
		Listing: listing(c, paths.page("tasks"), list.Next, status != "" || principal != ""),
		Statuses: options(string(status),
			ui.Option{Value: string(inventory.TaskActive), Label: inventory.TaskActive.Label()},
			ui.Option{Value: string(inventory.TaskCompleted), Label: inventory.TaskCompleted.Label()},
			ui.Option{Value: string(inventory.TaskExpired), Label: inventory.TaskExpired.Label()}),
		Principal: principal,
	}
	mayRevoke := canRevoke(c)
	for _, t := range list.Tasks {
		p.Rows = append(p.Rows, paths.taskRow(t, mayRevoke))
	}
	return render(c, http.StatusOK, ui.TasksPage(p))
}

func (s *Server) taskPage(c echo.Context) error {
	cc, paths := consoleOf(c), pathsOf(c)
	id, err := idParam(c, "id", "task")
	if err != nil {
		return err
	}
	d, err := s.console.Inventory.Task(c.Request().Context(), cc.tenant.ID, id)
	if err != nil {
		return err
	}
	p := ui.TaskDetailProps{Shell: s.shell(c, "Task "+ui.ShortID(d.ID.String()), ui.NavTasks),
		TaskRow: paths.taskRow(d.Task, canRevoke(c)), ClientID: d.ClientID, Audiences: d.Audiences,
		CompletedAt: timeOr(d.CompletedAt), Lineage: paths.taskTree(d), LineageNote: lineageNote(d.Lineage),
		AgentsHref:  withQuery(paths.page("agents"), url.Values{"task": {d.ID.String()}}),
		DenialsHref: withQuery(paths.page("denials"), url.Values{"task": {d.ID.String()}}),
	}
	return render(c, http.StatusOK, ui.TaskPage(p))
}

func (s *Server) tokenPage(c echo.Context) error {
	cc, paths := consoleOf(c), pathsOf(c)
	jti, err := idParam(c, "jti", "token")
	if err != nil {
		return err
	}
	d, err := s.console.Inventory.Token(c.Request().Context(), cc.tenant.ID, jti)
	if err != nil {
		return err
	}
	p := ui.TokenDetailProps{Shell: s.shell(c, "Token "+ui.ShortID(d.JTI.String()), ui.NavAgents),
		TokenRow: paths.tokenRow(d.Token, canRevoke(c)), Subject: d.Subject, ClientID: d.ClientID, Audiences: d.Audiences,
		Agent: refTo(d.AgentID, paths.agent), Task: refTo(d.TaskID, paths.task),
		RenewedFrom: refTo(d.RenewedFrom, paths.token), RenewedTo: refTo(d.RenewedTo, paths.token),
		RevokedAt: timeOr(d.RevokedAt),
	}
	if d.Task != nil {
		p.Lineage = paths.chainTree(*d.Task, d.Chain, false, []ui.TreeNode{paths.tokenNode(d.Token, true)})
	}
	return render(c, http.StatusOK, ui.TokenPage(p))
}
