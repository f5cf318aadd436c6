package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/tenants/policy"
)

// auditActors lists the actors of the tenant's events of one type.
func auditActors(t *testing.T, env *chittest.Env, tenantID uuid.UUID, typ audit.Type) []string {
	t.Helper()
	var actors []string
	require.NoError(t, env.DB.InTenantTx(context.Background(), tenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(context.Background(), `SELECT actor FROM audit_events WHERE type = $1 ORDER BY occurred_at`, string(typ))
		if err != nil {
			return err
		}
		actors, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	}))
	return actors
}

func userActor(t *testing.T, env *chittest.Env, email string) string {
	t.Helper()
	u, err := env.Users.ByEmail(context.Background(), usersEmail(email))
	require.NoError(t, err)
	return u.Actor()
}

func TestAdminGrantsAndRevokesPolicyThroughTheConsole(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	acme := env.NewTenant("acme", []string{"tickets:read"}, []string{"https://tickets.example"})
	admin := acme.ConsoleUser(policy.RoleAdmin)
	b := env.Browser()
	b.Login(admin, chittest.ConsolePassword)
	orch := acme.Orchestrator.ID

	page := b.Get("/console/t/acme/policies")
	require.Equal(t, http.StatusOK, page.Status)
	client := page.Doc.Find(`[data-testid="policy-client"][data-client="` + orch + `"]`)
	require.Equal(t, 1, client.Length())
	require.Equal(t, 1, client.Find(`[data-testid="policy-rule"][data-kind="scope"][data-value="tickets:read"]`).Length())
	require.Equal(t, 1, page.TestID("grant-form").Length())

	// Without the session's CSRF token nothing changes.
	refused := b.Post("/console/t/acme/policies/grant", url.Values{"csrf": {"forged"}, "client": {orch}, "scopes": {"docs:*"}})
	require.Equal(t, http.StatusForbidden, refused.Status)
	require.False(t, env.Policy.CheckTask(acme.T.ID, orch, []string{"docs:write"}, nil).Allowed)

	done := b.Post("/console/t/acme/policies/grant", url.Values{"client": {orch}, "scopes": {"docs:* reports:read"}})
	require.Equal(t, http.StatusSeeOther, done.Status, done.Body)
	after := b.Get(done.Header.Get("Location"))
	require.Equal(t, "ok", after.TestID("flash").AttrOr("data-kind", ""))
	require.True(t, env.Policy.CheckTask(acme.T.ID, orch, []string{"docs:write", "reports:read"}, nil).Allowed)
	require.Contains(t, auditActors(t, env, acme.T.ID, audit.PolicyGranted), userActor(t, env, admin))

	// Revoking goes through a confirm step.
	link, ok := after.Doc.Find(`[data-testid="policy-rule"][data-value="docs:*"] [data-testid="revoke-rule"]`).Attr("href")
	require.True(t, ok)
	confirm := b.Get(link)
	require.Equal(t, http.StatusOK, confirm.Status)
	require.Equal(t, 1, confirm.TestID("confirm").Length())
	require.True(t, env.Policy.CheckTask(acme.T.ID, orch, []string{"docs:write"}, nil).Allowed, "nothing revoked before confirming")
	form := url.Values{}
	confirm.Doc.Find(`[data-testid="confirm-form"] input[type="hidden"]`).Each(func(_ int, s *goquerySelection) {
		form.Set(s.AttrOr("name", ""), s.AttrOr("value", ""))
	})
	revoked := b.Post("/console/t/acme/policies/revoke", form)
	require.Equal(t, http.StatusSeeOther, revoked.Status, revoked.Body)
	require.False(t, env.Policy.CheckTask(acme.T.ID, orch, []string{"docs:write"}, nil).Allowed)
	require.True(t, env.Policy.CheckTask(acme.T.ID, orch, []string{"reports:read"}, nil).Allowed)
	require.Contains(t, auditActors(t, env, acme.T.ID, audit.PolicyRevoked), userActor(t, env, admin))
}

func TestViewersAndAuditorsCannotChangePolicyOrKeys(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	acme := env.NewTenant("acme", []string{"tickets:read"}, nil)
	orch := acme.Orchestrator.ID
	for _, role := range []policy.Role{policy.RoleViewer, policy.RoleAuditor} {
		b := env.Browser()
		b.Login(acme.ConsoleUser(role), chittest.ConsolePassword)
		page := b.Get("/console/t/acme/policies")
		require.Equal(t, http.StatusOK, page.Status)
		require.Zero(t, page.TestID("grant-form").Length(), role)
		require.Zero(t, page.TestID("revoke-rule").Length(), role)
		keys := b.Get("/console/t/acme/keys")
		require.Equal(t, http.StatusOK, keys.Status)
		require.Zero(t, keys.TestID("rotate-key").Length(), role)

		require.Equal(t, http.StatusForbidden, b.Post("/console/t/acme/policies/grant", url.Values{"client": {orch}, "scopes": {"admin:*"}}).Status)
		require.Equal(t, http.StatusForbidden, b.Get("/console/t/acme/policies/revoke?client="+orch+"&kind=scope&value=tickets:read").Status)
		require.Equal(t, http.StatusForbidden, b.Post("/console/t/acme/policies/revoke", url.Values{"client": {orch}, "kind": {"scope"}, "value": {"tickets:read"}}).Status)
		require.Equal(t, http.StatusForbidden, b.Get("/console/t/acme/keys/rotate").Status)
		require.Equal(t, http.StatusForbidden, b.Post("/console/t/acme/keys/rotate", nil).Status)
	}
	require.False(t, env.Policy.CheckTask(acme.T.ID, orch, []string{"admin:all"}, nil).Allowed)
	require.True(t, env.Policy.CheckTask(acme.T.ID, orch, []string{"tickets:read"}, nil).Allowed)
	keys, err := env.Keys.All(context.Background(), acme.T.ID)
	require.NoError(t, err)
	require.Len(t, keys, 1, "no rotation")
}

func TestAdminRotatesTheSigningKeyAfterConfirming(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	acme := env.NewTenant("acme", nil, nil)
	admin := acme.ConsoleUser(policy.RoleAdmin)
	b := env.Browser()
	b.Login(admin, chittest.ConsolePassword)

	before := b.Get("/console/t/acme/keys")
	require.Equal(t, 1, before.TestID("key").Length())
	oldKID := before.TestID("key").AttrOr("data-kid", "")

	confirm := b.Get("/console/t/acme/keys/rotate")
	require.Equal(t, 1, confirm.TestID("confirm").Length())
	done := b.Post("/console/t/acme/keys/rotate", nil)
	require.Equal(t, http.StatusSeeOther, done.Status, done.Body)

	after := b.Get(done.Header.Get("Location"))
	rows := after.TestID("key")
	require.Equal(t, 2, rows.Length())
	require.NotEqual(t, oldKID, rows.First().AttrOr("data-kid", ""), "newest first")
	require.Equal(t, "active", rows.First().Find(`[data-testid="status"]`).AttrOr("data-kind", ""))
	require.Equal(t, "pending", rows.Last().Find(`[data-testid="status"]`).AttrOr("data-kind", ""), "the old key is still published")
	require.Equal(t, []string{userActor(t, env, admin)}, auditActors(t, env, acme.T.ID, audit.KeyRotated))
}

func TestAuditPageFiltersPagesVerifiesAndExports(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := chittest.Start(t)
	acme := env.NewTenant("acme", []string{"tickets:*"}, []string{"https://tickets.example"})
	orch := acme.ClientToken(acme.Orchestrator)
	const tasks = 12
	for range tasks {
		task := acme.CreateTask(orch, "tickets:read", []string{"https://tickets.example"})
		acme.Register(acme.LaunchToken(orch, task, "tickets:read")).Exchange("tickets:read")
	}
	auditor := acme.ConsoleUser(policy.RoleAuditor)
	viewer := acme.ConsoleUser(policy.RoleViewer)

	vb := env.Browser()
	vb.Login(viewer, chittest.ConsolePassword)
	require.Equal(t, http.StatusForbidden, vb.Get("/console/t/acme/audit").Status)
	require.Equal(t, http.StatusForbidden, vb.Get("/console/t/acme/audit/export").Status)

	b := env.Browser()
	b.Login(auditor, chittest.ConsolePassword)
	page := b.Get("/console/t/acme/audit?type=token.issued")
	require.Equal(t, http.StatusOK, page.Status)
	require.Equal(t, tasks+1, page.TestID("audit-event").Length(), "one token per agent and the orchestrator's own")
	page.TestID("audit-event").Each(func(_ int, s *goquerySelection) {
		require.Equal(t, "token.issued", s.AttrOr("data-type", ""))
	})
	require.Equal(t, "unverified", page.TestID("chain-status").AttrOr("data-state", ""))
	logins := b.Get("/console/t/acme/audit?type=console.login")
	require.Equal(t, auditor, logins.TestID("audit-actor").First().Text(), "a console user is shown by address")

	bad := b.Get("/console/t/acme/audit?task_id=not-a-uuid")
	require.Equal(t, http.StatusOK, bad.Status)
	require.Contains(t, bad.TestID("flash").Text(), "UUID")

	// Every event exactly once over the pages.
	seen := map[string]bool{}
	next := "/console/t/acme/audit"
	for pages := 0; next != ""; pages++ {
		require.Less(t, pages, 20)
		p := b.Get(next)
		p.TestID("audit-event").Each(func(_ int, s *goquerySelection) {
			id := s.AttrOr("data-id", "")
			require.False(t, seen[id], "event %s listed twice", id)
			seen[id] = true
		})
		next = ""
		if href, ok := p.TestID("next-page").Attr("href"); ok {
			next = "/console/t/acme/audit" + href
		}
	}
	var total int
	require.NoError(t, env.DB.InTenantTx(ctx, acme.T.ID, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM audit_events`).Scan(&total)
	}))
	require.Greater(t, total, auditPageSizeForTest, "the trail spans more than one page")
	require.GreaterOrEqual(t, len(seen), total-2, "every event listed (sign-ins of this test may land after the first page)")

	env.SealChain(acme.T.ID)
	verified := b.Get("/console/t/acme/audit?verify=1")
	require.Equal(t, "ok", verified.TestID("chain-status").AttrOr("data-state", ""), verified.TestID("chain-status").Text())
	require.Contains(t, verified.TestID("checkpoint").Text(), "#")
	require.Equal(t, 1, verified.TestID("checkpoint").Find("time[datetime]").Length(), "the seal time is shown as a time")
	require.Contains(t, verified.TestID("chain-summary").Text(), "links verified")

	export := b.Get("/console/t/acme/audit/export?format=jsonl")
	require.Equal(t, http.StatusOK, export.Status)
	require.Contains(t, export.Header.Get("Content-Disposition"), "attachment")
	keys := b.Get("/console/t/acme/audit/keys.json")
	require.Equal(t, http.StatusOK, keys.Status)
	var set struct {
		Keys []struct{ Kty, Crv, X, Kid string } `json:"keys"`
	}
	require.NoError(t, json.Unmarshal([]byte(keys.Body), &set))
	trusted := map[string][]byte{}
	for _, k := range set.Keys {
		trusted[k.Kid] = mustB64(t, k.X)
	}
	rep, err := audit.VerifyExport(strings.NewReader(export.Body), toEd25519(trusted))
	require.NoError(t, err)
	require.Nil(t, rep.Problem)
	require.Positive(t, rep.Checkpoints)
	require.Contains(t, auditActors(t, env, acme.T.ID, audit.Exported), userActor(t, env, auditor), "the export is recorded")

	// One flipped byte in an event and the export no longer verifies.
	tampered := bytes.Replace([]byte(export.Body), []byte(`"token.issued"`), []byte(`"token.issuex"`), 1)
	rep, err = audit.VerifyExport(bytes.NewReader(tampered), toEd25519(trusted))
	require.NoError(t, err)
	require.NotNil(t, rep.Problem)
}

func TestPoliciesPageThroughEveryClientOnce(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	acme := env.NewTenant("acme", []string{"tickets:read"}, nil)
	for range 23 {
		acme.NewClient(oauth.KindOrchestrator)
	}
	b := env.Browser()
	b.Login(acme.ConsoleUser(policy.RoleViewer), chittest.ConsolePassword)

	seen := map[string]bool{}
	next, pages := "/console/t/acme/policies", 0
	for next != "" {
		pages++
		require.LessOrEqual(t, pages, 3)
		p := b.Get(next)
		require.Equal(t, http.StatusOK, p.Status)
		require.LessOrEqual(t, p.TestID("policy-client").Length(), 20)
		p.TestID("policy-client").Each(func(_ int, s *goquerySelection) {
			id := s.AttrOr("data-client", "")
			require.False(t, seen[id], "client %s shown twice", id)
			seen[id] = true
		})
		next = ""
		if href, ok := p.TestID("next-page").Attr("href"); ok {
			next = "/console/t/acme/policies" + href
		}
	}
	require.Equal(t, 2, pages)
	require.Len(t, seen, 25, "23 new clients, the orchestrator and the resource server")

	// A filter shows that client alone.
	one := b.Get("/console/t/acme/policies?client=" + url.QueryEscape(acme.Orchestrator.ID))
	require.Equal(t, 1, one.TestID("policy-client").Length())
	require.Zero(t, one.TestID("next-page").Length())
}

func TestKeysPageThroughEveryKeyOnce(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	acme := env.NewTenant("acme", nil, nil)
	for range 22 {
		_, _, err := env.Tenants.RotateKey(context.Background(), "acme")
		require.NoError(t, err)
	}
	b := env.Browser()
	b.Login(acme.ConsoleUser(policy.RoleViewer), chittest.ConsolePassword)

	var kids []string
	next := "/console/t/acme/keys"
	for pages := 1; next != ""; pages++ {
		require.LessOrEqual(t, pages, 2)
		p := b.Get(next)
		require.Equal(t, http.StatusOK, p.Status)
		p.TestID("key").Each(func(_ int, s *goquerySelection) { kids = append(kids, s.AttrOr("data-kid", "")) })
		next = ""
		if href, ok := p.TestID("next-page").Attr("href"); ok {
			next = "/console/t/acme/keys" + href
		}
	}
	require.Len(t, kids, 23)
	seen := map[string]bool{}
	for _, k := range kids {
		require.False(t, seen[k], "key %s listed twice", k)
		seen[k] = true
	}
}

func TestAdminSetsConsoleRolesButNotTheirOwn(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	acme := env.NewTenant("acme", nil, nil)
	bravo := env.NewTenant("bravo", nil, nil)
	admin := acme.ConsoleUser(policy.RoleAdmin)
	viewer := acme.ConsoleUser(policy.RoleViewer)
	outsider := bravo.ConsoleUser(policy.RoleViewer)
	idOf := func(email string) string {
		u, err := env.Users.ByEmail(context.Background(), usersEmail(email))
		require.NoError(t, err)
		return u.ID.String()
	}

	vb := env.Browser()
	vb.Login(viewer, chittest.ConsolePassword)
	require.Equal(t, http.StatusForbidden, vb.Get("/console/t/acme/audit").Status)
	require.Equal(t, http.StatusForbidden, vb.Post("/console/t/acme/policies/users/role", url.Values{"user": {idOf(admin)}, "role": {"viewer"}}).Status,
		"a viewer changes no role")

	b := env.Browser()
	b.Login(admin, chittest.ConsolePassword)
	page := b.Get("/console/t/acme/policies")
	rows := page.TestID("console-user")
	require.Equal(t, 2, rows.Length())
	self := page.Doc.Find(`[data-testid="console-user"][data-user="` + idOf(admin) + `"]`)
	require.Equal(t, "admin", self.AttrOr("data-role", ""))
	require.Zero(t, self.Find(`[data-testid="role-form"]`).Length(), "no form to change one's own role")

	require.Equal(t, http.StatusForbidden, b.Post("/console/t/acme/policies/users/role", url.Values{"csrf": {"x"}, "user": {idOf(viewer)}, "role": {"auditor"}}).Status)
	done := b.Post("/console/t/acme/policies/users/role", url.Values{"user": {idOf(viewer)}, "role": {"auditor"}})
	require.Equal(t, http.StatusSeeOther, done.Status, done.Body)
	require.Equal(t, http.StatusOK, vb.Get("/console/t/acme/audit").Status, "the new role applies to the next page")
	role, _ := env.Policy.ConsoleRole(acme.T.ID, idOf(viewer))
	require.Equal(t, policy.RoleAuditor, role)
	require.Contains(t, auditActors(t, env, acme.T.ID, audit.PolicyGranted), userActor(t, env, admin))

	done = b.Post("/console/t/acme/policies/users/role", url.Values{"user": {idOf(viewer)}, "role": {""}})
	require.Equal(t, http.StatusSeeOther, done.Status, done.Body)
	require.Equal(t, http.StatusNotFound, vb.Get("/console/t/acme/").Status, "no role, no tenant")

	require.Equal(t, http.StatusForbidden, b.Post("/console/t/acme/policies/users/role", url.Values{"user": {idOf(admin)}, "role": {"viewer"}}).Status,
		"an admin does not demote themselves")
	require.Equal(t, http.StatusNotFound, b.Post("/console/t/acme/policies/users/role", url.Values{"user": {idOf(outsider)}, "role": {"admin"}}).Status,
		"another tenant's user is not found")
	_, ok := env.Policy.ConsoleRole(acme.T.ID, idOf(outsider))
	require.False(t, ok)
	role, _ = env.Policy.ConsoleRole(acme.T.ID, idOf(admin))
	require.Equal(t, policy.RoleAdmin, role)
}
