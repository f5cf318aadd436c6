package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/tenants/policy"
	"github.com/chitdev/chit/ui"
)

// credScene is a tenant whose orchestrator started a task; its root agent
// delegated to a sub-agent with a narrower scope; each holds a token.
type credScene struct {
	env       *chittest.Env
	tn        *chittest.Tenant
	orch      string
	task      uuid.UUID
	root, sub *chittest.Agent
}

func newCredScene(t *testing.T, slug string) *credScene {
	t.Helper()
	return credSceneOn(t, chittest.Start(t), slug)
}

func credSceneOn(t *testing.T, env *chittest.Env, slug string) *credScene {
	t.Helper()
	tn := env.NewTenant(slug, []string{"tickets:*"}, []string{api})
	s := &credScene{env: env, tn: tn, orch: tn.ClientToken(tn.Orchestrator)}
	s.task = tn.CreateTask(s.orch, "tickets:read tickets:write", []string{api})
	s.root = tn.Register(tn.LaunchToken(s.orch, s.task, ""))
	s.root.Exchange("")
	s.sub = credDelegate(t, s.root, "tickets:read")
	return s
}

// credDelegate has parent launch a sub-agent with scope, which registers
// and gets its first token.
func credDelegate(t *testing.T, parent *chittest.Agent, scope string) *chittest.Agent {
	t.Helper()
	resp := parent.Delegate(scope)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var lt struct {
		LaunchToken string `json:"launch_token"`
	}
	resp.JSON(t, &lt)
	child := parent.Tenant.Register(lt.LaunchToken)
	child.Exchange("")
	return child
}

// apiRevoke revokes as the orchestrator and returns the revocation's id.
func (s *credScene) apiRevoke(t *testing.T, level, target, reason string) uuid.UUID {
	t.Helper()
	resp := s.tn.PostJSON("/v1/revocations", s.orch, map[string]string{"level": level, "target": target, "reason": reason})
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var out struct {
		ID uuid.UUID `json:"revocation_id"`
	}
	resp.JSON(t, &out)
	return out.ID
}

// consoleAs signs a new console user of the scene's tenant in.
func (s *credScene) consoleAs(t *testing.T, role policy.Role) (*chittest.Browser, string) {
	t.Helper()
	email := s.tn.ConsoleUser(role)
	b := s.env.Browser()
	b.Login(email, chittest.ConsolePassword)
	return b, email
}

func (s *credScene) path(sub string) string { return ui.TenantPath(s.tn.T.Slug.String(), sub) }

func jtiOf(t *testing.T, token string) string {
	t.Helper()
	return chittest.Claims(t, token)["jti"].(string)
}

func denialIDOf(t *testing.T, r *chittest.Response) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(r.Map(t)["denial_id"].(string))
	require.NoError(t, err, string(r.Body))
	return id
}

func getOK(t *testing.T, b *chittest.Browser, path string) *chittest.Page {
	t.Helper()
	p := b.Get(path)
	require.Equal(t, http.StatusOK, p.Status, "%s: %s", path, p.Body)
	return p
}

func statValue(p *chittest.Page, id string) string {
	return strings.TrimSpace(p.TestID(id).Find(`[data-testid="stat-value"]`).Text())
}

// Lineage trees: each node is an <li> holding its own box and a list of
// its children.

func treeRoots(p *chittest.Page) *goquery.Selection {
	return p.TestID("lineage-tree").ChildrenFiltered("li")
}

func treeChildren(n *goquery.Selection) *goquery.Selection {
	return n.ChildrenFiltered("ul").ChildrenFiltered("li")
}

func nodeLabel(n *goquery.Selection) *goquery.Selection {
	return n.ChildrenFiltered("div").Find(`[data-testid="lineage-label"]`)
}

// childLinkedTo is the child node of n whose label links to href.
func childLinkedTo(t *testing.T, n *goquery.Selection, href string) *goquery.Selection {
	t.Helper()
	found := treeChildren(n).FilterFunction(func(_ int, c *goquery.Selection) bool {
		return nodeLabel(c).AttrOr("href", "") == href
	})
	require.Equal(t, 1, found.Length(), "one child node links to %s", href)
	return found
}

func nodeScopes(n *goquery.Selection) []string {
	return n.ChildrenFiltered("div").Find(`[data-testid="scope"]`).Map(func(_ int, s *goquery.Selection) string { return s.Text() })
}

func nodeStatus(n *goquery.Selection) string {
	return n.ChildrenFiltered("div").Find(`[data-testid="status"]`).AttrOr("data-kind", "")
}

func rowIDs(p *chittest.Page, testID string) []string {
	return p.TestID(testID).Map(func(_ int, s *goquery.Selection) string { return s.AttrOr("data-id", "") })
}

func TestConsoleOverviewFiguresMatchTheData(t *testing.T) {
	t.Parallel()
	s := newCredScene(t, "acme")
	// A second task whose only agent is revoked, a third completed, and a
	// task refused for a scope outside the orchestrator's grant.
	task2 := s.tn.CreateTask(s.orch, "tickets:read", []string{api})
	revoked := s.tn.Register(s.tn.LaunchToken(s.orch, task2, ""))
	revoked.Exchange("")
	s.apiRevoke(t, "agent", revoked.ID.String(), "compromised")
	task3 := s.tn.CreateTask(s.orch, "tickets:read", []string{api})
	done := s.tn.Register(s.tn.LaunchToken(s.orch, task3, ""))
	done.Exchange("")
	resp := s.tn.PostJSON("/v1/tasks/"+task3.String()+"/complete", s.orch, nil)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	resp = s.tn.PostJSON("/v1/tasks", s.orch, map[string]any{"principal": "user:bob", "scope": "payroll:write",
		"audiences": []string{api}, "ttl_seconds": 600})
	require.Equal(t, http.StatusForbidden, resp.Status, string(resp.Body))

	b, _ := s.consoleAs(t, policy.RoleViewer)
	page := getOK(t, b, s.path(""))
	require.Equal(t, "2", statValue(page, "stat-live-agents"), "the root agent and its sub-agent")
	require.Equal(t, "3", statValue(page, "stat-active-tokens"), "their two tokens and the orchestrator's own")
	require.Equal(t, "2", statValue(page, "stat-active-tasks"), "the first two tasks; the third is completed")
	require.Equal(t, "1", statValue(page, "stat-denials"))
	require.Equal(t, "2", statValue(page, "stat-revocations"), "the agent's revocation and the completion")
	require.Equal(t, "1", statValue(page, "stat-completed-tasks"))
	require.Regexp(t, `^[0-9,]+\.[0-9]×$`, statValue(page, "stat-lifetime-ratio"))
	require.NotEqual(t, "—", statValue(page, "stat-time-left"), "the completed task's token had time left")

	top := page.TestID("top-check")
	require.Equal(t, 1, top.Length())
	require.Equal(t, "policy", top.AttrOr("data-check", ""))
	require.Equal(t, "1", strings.TrimSpace(top.Find("td.num").Text()))
	// The figures reload in place; the page works without that.
	require.Equal(t, s.path(""), page.TestID("overview").AttrOr("hx-get", ""))
}

func TestConsoleTaskPageShowsTheDelegationTree(t *testing.T) {
	t.Parallel()
	s := newCredScene(t, "acme")
	first := s.root.Token
	s.root.Renew("")
	b, _ := s.consoleAs(t, policy.RoleViewer)

	list := getOK(t, b, s.path("tasks"))
	require.Equal(t, []string{s.task.String()}, rowIDs(list, "task-row"))
	page := getOK(t, b, list.TestID("task-row").Find(`[data-testid="id"]`).AttrOr("href", ""))
	require.Equal(t, "user:alice", page.TestID("task-principal").Text())

	principal := treeRoots(page)
	require.Equal(t, 1, principal.Length())
	require.Equal(t, "principal", principal.AttrOr("data-kind", ""))
	require.Equal(t, "user:alice", nodeLabel(principal).Text())
	require.Equal(t, []string{"tickets:read", "tickets:write"}, nodeScopes(principal))

	root := childLinkedTo(t, principal, s.path("agents/"+s.root.ID.String()))
	require.Equal(t, "agent", root.AttrOr("data-kind", ""))
	require.Equal(t, "live", nodeStatus(root))
	require.Equal(t, []string{"tickets:read", "tickets:write"}, nodeScopes(root))

	sub := childLinkedTo(t, root, s.path("agents/"+s.sub.ID.String()))
	require.Equal(t, []string{"tickets:read"}, nodeScopes(sub), "the scope narrows at the hop")
	require.Contains(t, sub.ChildrenFiltered("div").Find(".tree-meta").Text(), "dropped tickets:write")

	// Tokens hang under their agent, live ones flagged.
	renewed := childLinkedTo(t, root, s.path("tokens/"+jtiOf(t, first)))
	require.Equal(t, "token", renewed.AttrOr("data-kind", ""))
	require.Equal(t, "renewed", nodeStatus(renewed))
	require.Equal(t, "live", nodeStatus(childLinkedTo(t, root, s.path("tokens/"+jtiOf(t, s.root.Token)))))
	require.Equal(t, "live", nodeStatus(childLinkedTo(t, sub, s.path("tokens/"+jtiOf(t, s.sub.Token)))))

	// After the root agent is revoked, the whole tree shows it.
	s.apiRevoke(t, "agent", s.root.ID.String(), "test")
	page = getOK(t, b, s.path("tasks/"+s.task.String()))
	root = childLinkedTo(t, treeRoots(page), s.path("agents/"+s.root.ID.String()))
	require.Equal(t, "revoked", nodeStatus(root))
	require.Equal(t, "revoked", nodeStatus(childLinkedTo(t, root, s.path("agents/"+s.sub.ID.String()))), "its sub-agent lost its authority")
	require.Equal(t, "revoked", nodeStatus(childLinkedTo(t, root, s.path("tokens/"+jtiOf(t, s.root.Token)))))
}

func TestConsoleAgentAndTokenPagesShowTheirLineage(t *testing.T) {
	t.Parallel()
	s := newCredScene(t, "acme")
	b, _ := s.consoleAs(t, policy.RoleViewer)
	jti := jtiOf(t, s.sub.Token)

	agents := getOK(t, b, s.path("agents"))
	require.ElementsMatch(t, []string{s.root.ID.String(), s.sub.ID.String()}, rowIDs(agents, "agent-row"))
	row := agents.Doc.Find(`[data-testid="agent-row"][data-id="` + s.sub.ID.String() + `"]`)
	require.Equal(t, "live", row.Find(`[data-testid="status"]`).AttrOr("data-kind", ""))
	require.Equal(t, "1", strings.TrimSpace(row.Find(`[data-testid="live-tokens"]`).Text()))
	require.NotEmpty(t, row.Find(`[data-testid="heartbeat"] [data-testid="age"]`).Text())

	page := getOK(t, b, s.path("agents/"+s.sub.ID.String()))
	require.Equal(t, "live", page.TestID("agent-status").Find(`[data-testid="status"]`).AttrOr("data-kind", ""))
	principal := treeRoots(page)
	require.Equal(t, "user:alice", nodeLabel(principal).Text())
	root := childLinkedTo(t, principal, s.path("agents/"+s.root.ID.String()))
	self := treeChildren(root)
	require.Equal(t, 1, self.Length())
	require.Equal(t, ui.ShortID(s.sub.ID.String()), nodeLabel(self).Text())
	require.Empty(t, nodeLabel(self).AttrOr("href", ""), "the page's own agent is not a link")
	require.Equal(t, []string{"tickets:read"}, nodeScopes(self))
	token := page.Doc.Find(`[data-testid="token-row"][data-id="` + jti + `"]`)
	require.Equal(t, "live", token.AttrOr("data-state", ""))

	page = getOK(t, b, token.Find(`[data-testid="id"]`).AttrOr("href", ""))
	require.Equal(t, "live", page.TestID("token-state").Find(`[data-testid="status"]`).AttrOr("data-kind", ""))
	agent := childLinkedTo(t, childLinkedTo(t, treeRoots(page), s.path("agents/"+s.root.ID.String())), s.path("agents/"+s.sub.ID.String()))
	self = treeChildren(agent)
	require.Equal(t, "token", self.AttrOr("data-kind", ""))
	require.Equal(t, ui.ShortID(jti), nodeLabel(self).Text())
}

func TestConsoleDenialsShowTheirWhyDeniedTrace(t *testing.T) {
	t.Parallel()
	s := newCredScene(t, "acme")
	// A task outside the orchestrator's grant, a sub-agent asking for more
	// than it holds, and a revoked agent asking for a token.
	resp := s.tn.PostJSON("/v1/tasks", s.orch, map[string]any{"principal": "user:bob", "scope": "payroll:write",
		"audiences": []string{api}, "ttl_seconds": 600})
	require.Equal(t, http.StatusForbidden, resp.Status, string(resp.Body))
	outside := denialIDOf(t, resp)
	resp = s.sub.Delegate("tickets:write")
	require.Equal(t, http.StatusForbidden, resp.Status, string(resp.Body))
	escalation := denialIDOf(t, resp)
	revocation := s.apiRevoke(t, "agent", s.root.ID.String(), "test")
	resp = s.tn.PostForm("/oauth2/token", s.root.ExchangeForm(""))
	require.Equal(t, http.StatusBadRequest, resp.Status, string(resp.Body))
	afterRevocation := denialIDOf(t, resp)

	b, _ := s.consoleAs(t, policy.RoleViewer)
	list := getOK(t, b, s.path("denials"))
	require.Equal(t, []string{afterRevocation.String(), escalation.String(), outside.String()}, rowIDs(list, "denial-row"), "newest first")

	page := getOK(t, b, list.Doc.Find(`[data-testid="denial-row"][data-id="`+outside.String()+`"] [data-testid="denial-link"]`).AttrOr("href", ""))
	require.Equal(t, "policy", page.TestID("denial-check").Text())
	require.NotEmpty(t, page.TestID("denial-reason").Text())
	require.Contains(t, page.TestID("denial-expected").Text(), "payroll:write")
	require.Contains(t, page.TestID("denial-presented").Text(), "payroll:write")
	require.Equal(t, s.path("policies")+"?client="+url.QueryEscape(s.tn.Orchestrator.ID), page.TestID("denial-rule").Find("a").AttrOr("href", ""))

	page = getOK(t, b, s.path("denials/"+escalation.String()))
	require.Equal(t, "scope", page.TestID("denial-check").Text())
	require.Contains(t, page.TestID("denial-presented").Text(), "tickets:write")
	require.Contains(t, page.TestID("denial-expected").Text(), "tickets:read")
	require.Equal(t, 0, page.TestID("denial-revocation").Length())

	page = getOK(t, b, s.path("denials/"+afterRevocation.String()))
	require.Equal(t, "revoked", page.TestID("denial-check").Text())
	link := page.TestID("denial-revocation").Find(`[data-testid="id"]`).AttrOr("href", "")
	require.Equal(t, s.path("revocations/"+revocation.String()), link)
	require.Equal(t, "test", getOK(t, b, link).TestID("revocation-reason").Text())

	// Filtered by check, by agent.
	require.Equal(t, []string{escalation.String()}, rowIDs(getOK(t, b, s.path("denials?check=scope")), "denial-row"))
	require.Equal(t, []string{afterRevocation.String()},
		rowIDs(getOK(t, b, s.path("denials?agent="+s.root.ID.String())), "denial-row"))
}

func TestConsoleListsPageThroughEveryItemExactlyOnce(t *testing.T) {
	t.Parallel()
	s := newCredScene(t, "acme")
	want := []string{s.task.String()}
	for range 4 {
		want = append(want, s.tn.CreateTask(s.orch, "tickets:read", []string{api}).String())
	}
	b, _ := s.consoleAs(t, policy.RoleViewer)

	var seen []string
	next, pages := s.path("tasks?limit=2"), 0
	for next != "" {
		page := getOK(t, b, next)
		pages++
		seen = append(seen, rowIDs(page, "task-row")...)
		if pages > 1 {
			require.Equal(t, s.path("tasks?limit=2"), page.TestID("first-page").AttrOr("href", ""))
		}
		next = page.TestID("next-page").AttrOr("href", "")
	}
	require.Equal(t, 3, pages)
	require.ElementsMatch(t, want, seen)
	require.Len(t, seen, len(want), "no task twice")

	// The filters carry over to the next page.
	page := getOK(t, b, s.path("agents?status=live&limit=1"))
	agents := rowIDs(page, "agent-row")
	next = page.TestID("next-page").AttrOr("href", "")
	require.Contains(t, next, "status=live")
	page = getOK(t, b, next)
	agents = append(agents, rowIDs(page, "agent-row")...)
	require.Empty(t, page.TestID("next-page").AttrOr("href", ""))
	require.ElementsMatch(t, []string{s.root.ID.String(), s.sub.ID.String()}, agents)

	require.Equal(t, http.StatusBadRequest, b.Get(s.path("tasks?cursor=not-a-cursor")).Status)
	require.Equal(t, http.StatusBadRequest, b.Get(s.path("tasks?limit=100000")).Status)
}

func TestConsoleFreshTenantShowsEmptyStates(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	tn := env.NewTenant("fresh", nil, nil)
	b := env.Browser()
	b.Login(tn.ConsoleUser(policy.RoleAdmin), chittest.ConsolePassword)

	for _, sub := range []string{"agents", "tasks", "denials", "revocations", "agents?status=revoked", "tasks?principal=nobody"} {
		page := getOK(t, b, ui.TenantPath("fresh", sub))
		require.Equal(t, 1, page.TestID("empty").Length(), sub)
		require.Equal(t, 0, page.TestID("pager").Length(), sub)
		require.Equal(t, 0, page.Doc.Find("table").Length(), sub)
	}
	require.Contains(t, getOK(t, b, ui.TenantPath("fresh", "agents?status=revoked")).TestID("empty").Text(), "match these filters")

	page := getOK(t, b, ui.TenantPath("fresh", ""))
	for _, id := range []string{"stat-live-agents", "stat-active-tokens", "stat-active-tasks", "stat-denials", "stat-revocations", "stat-completed-tasks"} {
		require.Equal(t, "0", statValue(page, id), id)
	}
	require.Equal(t, "—", statValue(page, "stat-lifetime-ratio"))
	require.Equal(t, 1, page.TestID("top-checks").Find(`[data-testid="empty"]`).Length())
}

func TestConsoleAdminRevokesAnAgentThroughTheConfirmStep(t *testing.T) {
	t.Parallel()
	s := newCredScene(t, "acme")
	b, email := s.consoleAs(t, policy.RoleAdmin)
	active := func() bool {
		return s.tn.Introspect(s.root.Token)["active"] == true && s.tn.Introspect(s.sub.Token)["active"] == true
	}

	page := getOK(t, b, s.path("agents/"+s.root.ID.String()))
	link := page.Doc.Find(`[data-testid="revoke"][data-level="agent"]`).AttrOr("href", "")
	require.NotEmpty(t, link)
	confirm := getOK(t, b, link)
	require.Equal(t, 1, confirm.TestID("confirm").Length())
	require.Equal(t, "2", confirm.TestID("revoke-agents").Text(), "it and its sub-agent")
	require.Equal(t, "2", confirm.TestID("revoke-tokens").Text())
	require.Equal(t, s.path("agents/"+s.root.ID.String()), confirm.TestID("confirm-cancel").AttrOr("href", ""))
	require.True(t, active(), "nothing is revoked before confirming")

	form := url.Values{}
	confirm.Doc.Find(`[data-testid="confirm-form"] input[type="hidden"]`).Each(func(_ int, in *goquery.Selection) {
		form.Set(in.AttrOr("name", ""), in.AttrOr("value", ""))
	})
	require.Equal(t, "agent", form.Get("level"))
	require.Equal(t, s.root.ID.String(), form.Get("target"))
	action := confirm.TestID("confirm-form").AttrOr("action", "")

	for name, csrf := range map[string]string{"missing": "", "forged": strings.Repeat("A", 43)} {
		refused := b.Post(action, url.Values{"csrf": {csrf}, "level": {"agent"}, "target": {s.root.ID.String()}, "reason": {"x"}})
		require.Equal(t, http.StatusForbidden, refused.Status, name)
	}
	require.True(t, active(), "a POST without the session's CSRF token revokes nothing")

	form.Set("reason", "  ")
	again := b.Post(action, form)
	require.Equal(t, http.StatusUnprocessableEntity, again.Status)
	require.NotEmpty(t, again.TestID("reason-error").Text())
	require.True(t, active(), "a revocation needs a reason")

	form.Set("reason", "leaked in a build log")
	done := b.Post(action, form)
	require.Equal(t, http.StatusSeeOther, done.Status, done.Body)
	require.False(t, s.tn.Introspect(s.root.Token)["active"].(bool))
	require.False(t, s.tn.Introspect(s.sub.Token)["active"].(bool), "the sub-agent's authority derived from it")

	location := done.Header.Get("Location")
	require.True(t, strings.HasPrefix(location, s.path("revocations/")), location)
	shown := getOK(t, b, location)
	require.Equal(t, "ok", shown.TestID("flash").AttrOr("data-kind", ""))
	require.Equal(t, "agent", shown.TestID("revocation-level").Text())
	require.Equal(t, "leaked in a build log", shown.TestID("revocation-reason").Text())
	user, err := s.env.Users.ByEmail(context.Background(), usersEmail(email))
	require.NoError(t, err)
	require.Contains(t, shown.TestID("revocation-by").Text(), "user:"+user.ID.String())
	require.Contains(t, shown.TestID("revocation-by").Text(), "(you)")
	require.Contains(t, shown.TestID("revocation-by").Text(), email, "a console user is shown by address")
	listed := getOK(t, b, s.path("revocations"))
	require.Contains(t, listed.TestID("revocation-by").First().Text(), email)

	revocationID := uuid.MustParse(shown.TestID("revocation").AttrOr("data-id", ""))
	events, err := audit.Query(context.Background(), s.env.DB, s.tn.T.ID, audit.Filter{Type: audit.Revoked})
	require.NoError(t, err)
	var actors []string
	for _, e := range events.Events {
		if e.RevocationID != nil && *e.RevocationID == revocationID {
			actors = append(actors, e.Actor)
		}
	}
	require.Equal(t, []string{"user:" + user.ID.String()}, actors, "the audit trail names the console user")

	page = getOK(t, b, s.path("agents/"+s.root.ID.String()))
	require.Equal(t, "revoked", page.TestID("agent-status").Find(`[data-testid="status"]`).AttrOr("data-kind", ""))
	require.Equal(t, 0, page.TestID("revoke").Length(), "nothing left to revoke")
	require.Equal(t, s.path("revocations/"+revocationID.String()), page.TestID("agent-revocation").Find(`[data-testid="id"]`).AttrOr("href", ""))
}

func TestConsoleViewerAndAuditorCannotRevoke(t *testing.T) {
	t.Parallel()
	s := newCredScene(t, "acme")
	resp := s.sub.Delegate("tickets:write")
	require.Equal(t, http.StatusForbidden, resp.Status)
	pages := []string{"agents", "agents/" + s.root.ID.String(), "tasks", "tasks/" + s.task.String(),
		"tokens/" + jtiOf(t, s.root.Token), "denials/" + denialIDOf(t, resp).String()}
	admin, _ := s.consoleAs(t, policy.RoleAdmin)
	for _, p := range pages {
		require.NotZero(t, getOK(t, admin, s.path(p)).TestID("revoke").Length(), "an admin sees revoke buttons on %s", p)
	}

	for _, role := range []policy.Role{policy.RoleViewer, policy.RoleAuditor} {
		b, _ := s.consoleAs(t, role)
		for _, p := range pages {
			require.Zero(t, getOK(t, b, s.path(p)).TestID("revoke").Length(), "%s sees no revoke button on %s", role, p)
		}
		require.Equal(t, http.StatusForbidden, b.Get(s.path("revoke?level=agent&target="+s.root.ID.String())).Status, role)
		refused := b.Post(s.path("revoke"), url.Values{"level": {"agent"}, "target": {s.root.ID.String()}, "reason": {"x"}})
		require.Equal(t, http.StatusForbidden, refused.Status, role)
	}
	require.Equal(t, true, s.tn.Introspect(s.root.Token)["active"])
}

func TestConsoleAnotherTenantsObjectsAreNotFound(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	acme := credSceneOn(t, env, "acme")
	beta := credSceneOn(t, env, "beta")
	resp := beta.sub.Delegate("tickets:write")
	require.Equal(t, http.StatusForbidden, resp.Status)
	betaDenial := denialIDOf(t, resp)
	betaRevocation := beta.apiRevoke(t, "token", jtiOf(t, beta.sub.Token), "test")
	b, _ := acme.consoleAs(t, policy.RoleAdmin)

	objects := []string{
		"tasks/" + beta.task.String(),
		"agents/" + beta.root.ID.String(),
		"tokens/" + jtiOf(t, beta.root.Token),
		"denials/" + betaDenial.String(),
		"revocations/" + betaRevocation.String(),
		"revoke?level=agent&target=" + beta.root.ID.String(),
		"revoke?level=task&target=" + beta.task.String(),
		"agents/not-an-id",
	}
	for _, o := range objects {
		require.Equal(t, http.StatusNotFound, b.Get(ui.TenantPath("acme", o)).Status, "through acme's URLs: %s", o)
		require.Equal(t, http.StatusNotFound, b.Get(ui.TenantPath("beta", o)).Status, "through beta's URLs: %s", o)
	}
	// The same pages of acme's own objects are there.
	require.Equal(t, http.StatusOK, b.Get(acme.path("tasks/"+acme.task.String())).Status)
	require.Equal(t, http.StatusOK, b.Get(acme.path("agents/"+acme.root.ID.String())).Status)

	for _, level := range []string{"agent", "chain", "task"} {
		target := beta.root.ID.String()
		if level == "task" {
			target = beta.task.String()
		}
		refused := b.Post(acme.path("revoke"), url.Values{"level": {level}, "target": {target}, "reason": {"x"}})
		require.Equal(t, http.StatusNotFound, refused.Status, level)
	}
	require.Equal(t, true, beta.tn.Introspect(beta.root.Token)["active"], "nothing of beta was revoked")
}

func TestConsoleEscapesWhatAgentsAndOrchestratorsWrote(t *testing.T) {
	t.Parallel()
	s := newCredScene(t, "acme")
	principal := `<script>alert(1)</script>`
	purpose := `"><img src=x onerror=alert(1)>`
	reason := `<b onmouseover=alert(1)>bad</b>`
	resp := s.tn.PostJSON("/v1/tasks", s.orch, map[string]any{"principal": principal, "purpose": purpose,
		"scope": "tickets:read", "audiences": []string{api}, "ttl_seconds": 600})
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var created struct {
		TaskID uuid.UUID `json:"task_id"`
	}
	resp.JSON(t, &created)
	agent := s.tn.Register(s.tn.LaunchToken(s.orch, created.TaskID, ""))
	agent.Exchange("")
	revocation := s.apiRevoke(t, "token", jtiOf(t, agent.Token), reason)
	// An agent's own words reach the denial trace as the scope it presented.
	resp = s.sub.Delegate(`tickets:read <img src=x onerror=alert(1)>`)
	require.Equal(t, http.StatusForbidden, resp.Status, string(resp.Body))
	denial := denialIDOf(t, resp)
	b, _ := s.consoleAs(t, policy.RoleAdmin)

	raw := []string{principal, purpose, reason, "<img", "<b onmouseover"}
	for _, p := range []string{
		"", "tasks", "tasks/" + created.TaskID.String(), "tasks?principal=" + url.QueryEscape(principal),
		"agents", "agents/" + agent.ID.String(), "tokens/" + jtiOf(t, agent.Token),
		"revocations", "revocations/" + revocation.String(),
		"denials", "denials/" + denial.String(),
		"revoke?level=task&target=" + created.TaskID.String(),
	} {
		page := getOK(t, b, s.path(p))
		for _, r := range raw {
			require.NotContains(t, page.Body, r, "%s shows markup from an orchestrator unescaped", p)
		}
	}
	task := getOK(t, b, s.path("tasks/"+created.TaskID.String()))
	require.Contains(t, task.Body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	require.Equal(t, principal, task.TestID("task-principal").Text(), "shown as text")
	require.Equal(t, purpose, task.TestID("task-purpose").Text())
	require.Equal(t, principal, nodeLabel(treeRoots(task)).Text())
	require.Contains(t, getOK(t, b, s.path("denials/"+denial.String())).TestID("denial-presented").Text(), "<img onerror=alert(1)>", "shown as text")
	shown := getOK(t, b, s.path("revocations/"+revocation.String()))
	require.Equal(t, reason, shown.TestID("revocation-reason").Text())
	list := getOK(t, b, s.path("tasks?principal="+url.QueryEscape(principal)))
	require.Equal(t, []string{created.TaskID.String()}, rowIDs(list, "task-row"))
}
