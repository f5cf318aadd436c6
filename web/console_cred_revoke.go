package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/oauth/inventory"
	"github.com/chitdev/chit/ui"
)

// maxReason is the longest revocation reason oauth accepts.
const maxReason = 256

func (s *Server) denialsPage(c echo.Context) error {
	cc, paths := consoleOf(c), pathsOf(c)
	f := inventory.DenialFilter{Check: oauth.Check(c.QueryParam("check")), ClientID: c.QueryParam("client")}
	var err error
	if f.TaskID, err = idFilter(c, "task"); err != nil {
		return err
	}
	if f.AgentID, err = idFilter(c, "agent"); err != nil {
		return err
	}
	pg, err := pageOf(c)
	if err != nil {
		return err
	}
	list, err := s.console.Inventory.Denials(c.Request().Context(), cc.tenant.ID, f, pg)
	if err != nil {
		return err
	}
	path := paths.page("denials")
	checks := make([]ui.Option, len(inventory.Checks))
	for i, ch := range inventory.Checks {
		checks[i] = ui.Option{Value: string(ch), Label: string(ch)}
	}
	p := ui.DenialsProps{Shell: s.shell(c, "Denials", ui.NavDenials),
		Listing: listing(c, path, list.Next, f != inventory.DenialFilter{}),
		Checks:  options(string(f.Check), checks...),
		ClearTo: without(c, path, "task", "agent", "client"),
	}
	// Filters that came from a task's, an agent's or a client's page are
	// kept when the check changes, and said in words.
	var showing []string
	if f.TaskID != uuid.Nil {
		p.Kept = append(p.Kept, ui.Hidden{Name: "task", Value: f.TaskID.String()})
		showing = append(showing, "task "+ui.ShortID(f.TaskID.String()))
	}
	if f.AgentID != uuid.Nil {
		p.Kept = append(p.Kept, ui.Hidden{Name: "agent", Value: f.AgentID.String()})
		showing = append(showing, "agent "+ui.ShortID(f.AgentID.String()))
	}
	if f.ClientID != "" {
		p.Kept = append(p.Kept, ui.Hidden{Name: "client", Value: f.ClientID})
		showing = append(showing, "client "+f.ClientID)
	}
	p.Showing = strings.Join(showing, ", ")
	for _, d := range list.Denials {
		p.Rows = append(p.Rows, paths.denialRow(d))
	}
	return render(c, http.StatusOK, ui.DenialsPage(p))
}

func (s *Server) denialPage(c echo.Context) error {
	cc, paths := consoleOf(c), pathsOf(c)
	id, err := idParam(c, "id", "denial")
	if err != nil {
		return err
	}
	d, err := s.console.Inventory.Denial(c.Request().Context(), cc.tenant.ID, id)
	if err != nil {
		return err
	}
	p := ui.DenialDetailProps{Shell: s.shell(c, "Denial "+ui.ShortID(d.ID.String()), ui.NavDenials),
		DenialRow: paths.denialRow(d), Expected: d.Expected, Presented: d.Presented,
		Revocation: refTo(d.RevocationID, paths.revocation)}
	if d.Rule != nil {
		p.Rule, p.RuleHref = *d.Rule, paths.policies(p.ClientID)
	}
	// Whoever reads a denial may want to stop its source; the confirm step
	// says whether it still holds anything.
	if canRevoke(c) {
		if d.AgentID != nil {
			p.RevokeAgentHref = paths.revoke(oauth.LevelAgent, *d.AgentID)
		}
		if d.TaskID != nil {
			p.RevokeTaskHref = paths.revoke(oauth.LevelTask, *d.TaskID)
		}
	}
	return render(c, http.StatusOK, ui.DenialPage(p))
}

func (s *Server) revocationsPage(c echo.Context) error {
	cc, paths := consoleOf(c), pathsOf(c)
	pg, err := pageOf(c)
	if err != nil {
		return err
	}
	list, err := s.console.Inventory.Revocations(c.Request().Context(), cc.tenant.ID, pg)
	if err != nil {
		return err
	}
	p := ui.RevocationsProps{Shell: s.shell(c, "Revocations", ui.NavRevocations),
		Listing: listing(c, paths.page("revocations"), list.Next, false)}
	actors := make([]string, 0, len(list.Revocations))
	for _, r := range list.Revocations {
		p.Rows = append(p.Rows, paths.revocationRow(r))
		actors = append(actors, r.RevokedBy)
	}
	names, err := s.userNames(c, actors)
	if err != nil {
		return err
	}
	for i := range p.Rows {
		p.Rows[i].RevokedByName = names[p.Rows[i].RevokedBy]
	}
	return render(c, http.StatusOK, ui.RevocationsPage(p))
}

// revocationDone is the ?done= value of the redirect after a console revocation.
const revocationDone = "revocation"

func (s *Server) revocationPage(c echo.Context) error {
	cc, paths := consoleOf(c), pathsOf(c)
	id, err := idParam(c, "id", "revocation")
	if err != nil {
		return err
	}
	r, err := s.console.Inventory.Revocation(c.Request().Context(), cc.tenant.ID, id)
	if err != nil {
		return err
	}
	p := ui.RevocationDetailProps{Shell: s.shell(c, "Revocation "+ui.ShortID(r.ID.String()), ui.NavRevocations),
		RevocationRow: paths.revocationRow(r), Task: refTo(r.TaskID, paths.task), ByYou: r.RevokedBy == cc.actor(),
		Renewal: r.Renewal}
	names, err := s.userNames(c, []string{r.RevokedBy})
	if err != nil {
		return err
	}
	p.RevokedByName = names[r.RevokedBy]
	if p.ByYou && c.QueryParam("done") == revocationDone {
		p.Shell.Flash = &ui.Flash{Kind: "ok", Text: "Revoked. Every replica refuses these credentials from now on."}
	}
	return render(c, http.StatusOK, ui.RevocationPage(p))
}

// revokeLevels are the levels the console revokes at.
var revokeLevels = map[string]bool{oauth.LevelToken: true, oauth.LevelAgent: true, oauth.LevelChain: true, oauth.LevelTask: true}

// revokeConfirmPage is the confirm step: nothing changes until its form is posted.
func (s *Server) revokeConfirmPage(c echo.Context) error {
	p, err := s.revokePreview(c, c.QueryParam("level"), c.QueryParam("target"))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, ui.RevokePage(p))
}

// consoleRevoke revokes in the console user's name (the audit trail's
// actor), then shows the revocation (post/redirect/get). A reason is
// required; without one the confirm step comes back with the error.
func (s *Server) consoleRevoke(c echo.Context) error {
	cc, paths := consoleOf(c), pathsOf(c)
	level, target, reason := c.FormValue("level"), c.FormValue("target"), strings.TrimSpace(c.FormValue("reason"))
	var problem string
	switch {
	case reason == "":
		problem = "Say why: the reason is kept with the revocation, for whoever reviews it."
	case len(reason) > maxReason:
		problem = "The reason is too long: keep it to 256 bytes."
	}
	if problem != "" {
		p, err := s.revokePreview(c, level, target)
		if err != nil {
			return err
		}
		p.Reason, p.ReasonError = c.FormValue("reason"), problem
		return render(c, http.StatusUnprocessableEntity, ui.RevokePage(p))
	}
	if !revokeLevels[level] {
		return fault.InvalidField("level", "must be token, agent, chain or task")
	}
	if _, err := uuid.Parse(target); err != nil {
		return fault.New(fault.NotFound, "Nothing to revoke: no such %s.", level)
	}
	res, err := s.deps.OAuth.RevokeByUser(c.Request().Context(), cc.tenant, cc.actor(),
		oauth.RevokeParams{Level: level, Target: target, Reason: reason})
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, withQuery(paths.revocation(res.ID), url.Values{"done": {revocationDone}}))
}

// revokePreview is the confirm step of revoking target at level: what it
// is and how much authority ends with it.
func (s *Server) revokePreview(c echo.Context, level, target string) (ui.RevokeProps, error) {
	ctx, cc, paths := c.Request().Context(), consoleOf(c), pathsOf(c)
	if !revokeLevels[level] {
		return ui.RevokeProps{}, fault.InvalidField("level", "must be token, agent, chain or task")
	}
	id, err := uuid.Parse(target)
	if err != nil {
		return ui.RevokeProps{}, fault.New(fault.NotFound, "Nothing to revoke: no such %s.", level)
	}
	p := ui.RevokeProps{Shell: s.shell(c, "Revoke", ui.NavRevocations), Level: level,
		Action: paths.page("revoke"), CSRF: cc.sess.CSRF()}
	switch level {
	case oauth.LevelToken:
		t, err := s.console.Inventory.Token(ctx, cc.tenant.ID, id)
		if err != nil {
			return p, err
		}
		p.Target, p.Principal = ui.Ref{ID: t.JTI.String(), Href: paths.token(t.JTI)}, t.Subject
		p.Ended = t.State != inventory.TokenLive
		if !p.Ended {
			p.LiveTokens = 1
		}
	case oauth.LevelAgent, oauth.LevelChain:
		a, err := s.console.Inventory.Agent(ctx, cc.tenant.ID, id)
		if err != nil {
			return p, err
		}
		p.Target, p.Principal = ui.Ref{ID: a.ID.String(), Href: paths.agent(a.ID)}, a.Principal
		p.Ended = !a.Status.HoldsAuthority()
		// Sub-agents' authority derives from the agent's: revoking the agent
		// alone ends theirs as well, so both levels end the whole subtree.
		task, err := s.console.Inventory.Task(ctx, cc.tenant.ID, a.TaskID)
		if err != nil {
			return p, err
		}
		if n := findNode(task.Lineage.Roots, a.ID); n != nil {
			p.Agents, p.LiveTokens = holding(n)
			p.Partial = task.Lineage.Truncated
		} else { // deeper than the tree read: count it alone
			p.Agents, p.LiveTokens, p.Partial = authority(a.Agent), a.LiveTokens, true
		}
	case oauth.LevelTask:
		task, err := s.console.Inventory.Task(ctx, cc.tenant.ID, id)
		if err != nil {
			return p, err
		}
		p.Target, p.Principal = ui.Ref{ID: task.ID.String(), Href: paths.task(task.ID)}, task.Principal
		p.Ended = task.Status != inventory.TaskActive
		for _, n := range task.Lineage.Roots {
			agents, tokens := holding(n)
			p.Agents, p.LiveTokens = p.Agents+agents, p.LiveTokens+tokens
		}
		p.Partial = task.Lineage.Truncated
	}
	p.Cancel = p.Target.Href
	return p, nil
}

func findNode(nodes []*inventory.Node, id uuid.UUID) *inventory.Node {
	for _, n := range nodes {
		if n.ID == id {
			return n
		}
		if found := findNode(n.Children, id); found != nil {
			return found
		}
	}
	return nil
}

// holding counts the agents of a subtree that hold authority and their live tokens.
func holding(n *inventory.Node) (agents, liveTokens int) {
	agents, liveTokens = authority(n.Agent), n.LiveTokens
	for _, c := range n.Children {
		a, t := holding(c)
		agents, liveTokens = agents+a, liveTokens+t
	}
	return agents, liveTokens
}

func authority(a inventory.Agent) int {
	if a.Status.HoldsAuthority() {
		return 1
	}
	return 0
}
