package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/tenants/policy"
)

const api = "https://api.acme.example"

// world is a tenant with real traffic: a task for user:alice with agents A
// and B, A's sub-agent C, each holding a token, and one denial: C asking to
// delegate a scope it does not hold.
type world struct {
	env     *chittest.Env
	tn      *chittest.Tenant
	admin   string // a console admin's email
	orch    string // the orchestrator's token
	task    uuid.UUID
	a, b, c *chittest.Agent
	denial  string // the denial's id
}

func newWorld(t *testing.T) *world {
	t.Helper()
	env := chittest.Start(t)
	tn := env.NewTenant("acme", []string{"tickets:*"}, []string{api})
	w := &world{env: env, tn: tn, admin: tn.ConsoleUser(policy.RoleAdmin), orch: tn.ClientToken(tn.Orchestrator)}
	w.task = tn.CreateTask(w.orch, "tickets:read tickets:write", []string{api})
	w.a = tn.Register(tn.LaunchToken(w.orch, w.task, ""))
	w.a.Exchange("")
	w.b = tn.Register(tn.LaunchToken(w.orch, w.task, ""))
	w.b.Exchange("")

	resp := w.a.Delegate("tickets:read")
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var launch struct {
		LaunchToken string `json:"launch_token"`
	}
	resp.JSON(t, &launch)
	w.c = tn.Register(launch.LaunchToken)
	w.c.Exchange("")

	resp = w.c.Delegate("tickets:write") // beyond C's own scope
	require.Equal(t, http.StatusForbidden, resp.Status, string(resp.Body))
	var refusal struct {
		DenialID string `json:"denial_id"`
	}
	resp.JSON(t, &refusal)
	require.NotEmpty(t, refusal.DenialID)
	w.denial = refusal.DenialID
	return w
}

// consolePath is a page of the tenant in the console.
func (w *world) consolePath(sub string) string {
	return "/console/t/" + w.tn.T.Slug.String() + "/" + sub
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tb := openTab(t, w.env)

	tb.visit("/console/login", http.StatusOK)
	tb.screenshot("login")
	tb.do(
		chromedp.SendKeys(testID("email"), w.admin),
		chromedp.SendKeys(testID("password"), "not the password"),
	)
	tb.follow(testID("login-submit"), http.StatusUnauthorized)
	require.NotEmpty(t, tb.text(testID("login-error")), "a failed sign-in says so")
	require.Equal(t, w.admin, value(tb, chromedp.Value(testID("email"))), "the address is kept")
	require.Empty(t, value(tb, chromedp.Value(testID("password"))), "the password never is")

	tb.do(chromedp.SendKeys(testID("password"), chittest.ConsolePassword))
	tb.follow(testID("login-submit"), http.StatusOK)
	require.Equal(t, w.consolePath(""), tb.path(), "signing in lands on the tenant's overview")
	require.Equal(t, "Overview", tb.title())
	require.Equal(t, w.admin, tb.text(testID("user-email")))
	require.Equal(t, "admin", tb.text(testID("role")))
	stat := func(id string) string { return tb.text(testID(id) + ` [data-testid="stat-value"]`) }
	require.Equal(t, "3", stat("stat-live-agents"), "A, B and C")
	require.Equal(t, "1", stat("stat-active-tasks"))
	require.Equal(t, "1", stat("stat-denials"), "C's refused delegation")
	tb.screenshot("overview")

	// Configuration: the orchestrator's grant and the tenant's signing key.
	tb.follow(testID("nav-policies"), http.StatusOK)
	require.Equal(t, "Policies", tb.title())
	client := chromedp.CSS(`[data-testid="policy-client"][data-client="` + w.tn.Orchestrator.ID + `"]`)
	require.Equal(t, 1, tb.count(client+` [data-testid="policy-rule"][data-value="tickets:*"]`),
		"the orchestrator's scope grant is shown")
	tb.screenshot("policies")
	tb.follow(testID("nav-keys"), http.StatusOK)
	require.Equal(t, "Signing keys", tb.title())
	require.Equal(t, 1, tb.count(testID("key")), "a new tenant has one signing key")
	tb.screenshot("keys")
}

// agentRow selects an agent's row in a list.
func agentRow(id uuid.UUID) chromedp.CSS {
	return chromedp.CSS(`[data-testid="agent-row"][data-id="` + id.String() + `"]`)
}

// tokenRow selects a token's row in a tokens table.
func tokenRow(jti string) chromedp.CSS {
	return chromedp.CSS(`[data-testid="token-row"][data-id="` + jti + `"]`)
}

func jti(t *testing.T, token string) string {
	t.Helper()
	id, _ := chittest.Claims(t, token)["jti"].(string)
	require.NotEmpty(t, id)
	return id
}

func TestLineageAndDenialTrace(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tb := openTab(t, w.env)
	tb.login(w.admin, chittest.ConsolePassword)

	tb.follow(testID("nav-agents"), http.StatusOK)
	for _, a := range []*chittest.Agent{w.a, w.b, w.c} {
		require.Equal(t, 1, tb.count(agentRow(a.ID)), "agent %s is listed", a.ID)
	}
	tb.screenshot("agents")

	tb.follow(testID("nav-tasks"), http.StatusOK)
	tb.follow(chromedp.CSS(`[data-testid="task-row"][data-id="`+w.task.String()+`"] a[data-testid="id"]`), http.StatusOK)
	require.Equal(t, w.consolePath("tasks/"+w.task.String()), tb.path())
	// The tree: user:alice → A → C, and B beside A.
	tree := value(tb, chromedp.Evaluate[struct {
		Principal        string
		A, B, C          bool
		AOverC, BOverC   bool
		PrincipalOverAll bool
		AgentNodes       int
	}](`(() => {
		const tree = document.querySelector('[data-testid="lineage-tree"]');
		const node = id => tree.querySelector('a[data-testid="lineage-label"][href$="/agents/' + id + '"]')?.closest('[data-testid="lineage-node"]');
		const root = tree.querySelector('[data-testid="lineage-node"][data-kind="principal"]');
		const a = node(`+jsString(w.a.ID.String())+`), b = node(`+jsString(w.b.ID.String())+`), c = node(`+jsString(w.c.ID.String())+`);
		return {
			Principal: root ? root.querySelector('[data-testid="lineage-label"]').textContent.trim() : "",
			A: !!a, B: !!b, C: !!c,
			AOverC: !!(a && c && a !== c && a.contains(c)),
			BOverC: !!(b && c && b.contains(c)),
			PrincipalOverAll: !!(root && a && b && root.contains(a) && root.contains(b)),
			AgentNodes: tree.querySelectorAll('[data-testid="lineage-node"][data-kind="agent"]').length,
		};
	})()`))
	require.Equal(t, "user:alice", tree.Principal, "the tree starts at the principal the task acts for")
	require.True(t, tree.A && tree.B && tree.C, "every agent of the task is in its tree: %+v", tree)
	require.Equal(t, 3, tree.AgentNodes)
	require.True(t, tree.AOverC, "C hangs under A, which delegated to it")
	require.False(t, tree.BOverC, "and not under its sibling B")
	require.True(t, tree.PrincipalOverAll)
	tb.screenshot("task-lineage")

	tb.follow(testID("nav-denials"), http.StatusOK)
	row := chromedp.CSS(`[data-testid="denial-row"][data-id="` + w.denial + `"]`)
	require.Equal(t, 1, tb.count(row), "the refused delegation is listed")
	tb.follow(row+` [data-testid="denial-link"]`, http.StatusOK)
	require.Equal(t, w.consolePath("denials/"+w.denial), tb.path())
	require.NotEmpty(t, tb.text(testID("denial-check")))
	require.NotEmpty(t, tb.text(testID("denial-reason")))
	require.Contains(t, tb.text(testID("denial-presented")), "tickets:write", "the trace shows what C asked for")
	require.Contains(t, tb.text(testID("denial-expected")), "tickets:read", "and what it holds")
	tb.screenshot("denial-trace")
}

func TestRevokeAgentEndsItsTokens(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tb := openTab(t, w.env)
	tb.login(w.admin, chittest.ConsolePassword)
	aToken, cToken := jti(t, w.a.Token), jti(t, w.c.Token)

	tb.visit(w.consolePath("agents/"+w.a.ID.String()), http.StatusOK)
	require.Equal(t, "live", tb.attr(testID("agent-status")+` [data-testid="status"]`, "data-kind"))
	require.Equal(t, "live", tb.attr(tokenRow(aToken), "data-state"))
	tb.follow(testID("revoke")+`[data-level="agent"]`, http.StatusOK)
	require.Equal(t, w.consolePath("revoke?level=agent&target="+w.a.ID.String()), tb.path())
	require.Contains(t, tb.text(testID("confirm-title")), "Revoke agent")
	tb.screenshot("revoke-confirm")
	require.True(t, w.tn.Introspect(w.a.Token)["active"] == true, "nothing is revoked before the confirm")

	tb.do(chromedp.SendKeys(testID("revoke-reason"), "key leaked in a ticket (e2e)"))
	tb.follow(testID("confirm-submit"), http.StatusOK)
	require.Contains(t, tb.path(), w.consolePath("revocations/"), "the confirm leads to the revocation it made")
	require.Contains(t, tb.text(testID("flash")), "Revoked")
	require.Equal(t, "agent", tb.text(testID("revocation-level")))
	require.Equal(t, "key leaked in a ticket (e2e)", tb.text(testID("revocation-reason")))
	require.Contains(t, tb.text(testID("revocation-by")), "(you)", "made by the signed-in user")
	require.Equal(t, "2", tb.text(testID("revocation-count")), "the agent and its token")
	tb.screenshot("revocation")

	tb.visit(w.consolePath("agents/"+w.a.ID.String()), http.StatusOK)
	require.Equal(t, "revoked", tb.attr(testID("agent-status")+` [data-testid="status"]`, "data-kind"))
	require.Equal(t, "revoked", tb.attr(tokenRow(aToken), "data-state"), "the agent's token shows revoked")
	tb.visit(w.consolePath("tokens/"+cToken), http.StatusOK)
	require.Equal(t, "revoked", tb.attr(testID("token-state")+` [data-testid="status"]`, "data-kind"),
		"the sub-agent's token lost its authority with A")

	// And the server agrees: A's and C's tokens are refused, B's is not.
	require.Equal(t, map[string]bool{"a": false, "b": true, "c": false}, map[string]bool{
		"a": w.tn.Introspect(w.a.Token)["active"] == true,
		"b": w.tn.Introspect(w.b.Token)["active"] == true,
		"c": w.tn.Introspect(w.c.Token)["active"] == true,
	})
}

func TestAuditExportVerifiesOffline(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	chained := w.env.SealChain(w.tn.T.ID)
	require.Positive(t, chained)

	tb := openTab(t, w.env)
	tb.login(w.admin, chittest.ConsolePassword)
	tb.follow(testID("nav-audit"), http.StatusOK)
	require.Equal(t, "Audit trail", tb.title())
	require.NotZero(t, tb.count(testID("audit-event")), "the trail lists events")
	tb.screenshot("audit")

	dir := t.TempDir()
	export := filepath.Join(dir, "export.jsonl")
	keys := filepath.Join(dir, "keys.json")
	require.NoError(t, os.WriteFile(export, tb.download(testID("export-submit")), 0o600))
	require.NoError(t, os.WriteFile(keys, tb.download(testID("checkpoint-keys")), 0o600))

	out, code := chit(t, "audit", "verify", "--file", export, "--jwks", keys)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, fmt.Sprintf("verifies: %d events (links 1–%d), 1 checkpoints valid, 0 events after the last checkpoint", chained, chained))

	// One byte of one event changed, a digit of the year it occurred: the
	// verification fails and names the link.
	data, err := os.ReadFile(export)
	require.NoError(t, err)
	lines := bytes.Split(data, []byte("\n"))
	const victim = 3 // line 0 is the header, line n link n
	require.Contains(t, string(lines[victim]), `"seq":3,`)
	var link struct {
		Event []any `json:"event"`
	}
	require.NoError(t, json.Unmarshal(lines[victim], &link))
	eventID := link.Event[2].(string) // chit-audit-v1, tenant, id, time, type, ...
	at := bytes.Index(lines[victim], []byte(`"`+eventID+`","`))
	require.Positive(t, at, string(lines[victim]))
	at += len(`"`+eventID+`","`) + 3 // the last digit of the year
	if lines[victim][at] == '0' {
		lines[victim][at] = '1'
	} else {
		lines[victim][at]--
	}
	tampered := filepath.Join(dir, "tampered.jsonl")
	require.NoError(t, os.WriteFile(tampered, bytes.Join(lines, []byte("\n")), 0o600))
	out, code = chit(t, "audit", "verify", "--file", tampered, "--jwks", keys)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "audit chain broken at link 3 (event "+eventID+")")
	require.Contains(t, out, "event content does not match its hash")
}

// chit runs the CLI built from this checkout and returns its output and
// exit code.
func chit(t *testing.T, args ...string) (string, int) {
	t.Helper()
	select {
	case <-cliBuilt:
		require.NoError(t, cliErr)
	case <-time.After(5 * time.Minute):
		t.Fatal("building the chit CLI took more than 5 minutes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cliPath, args...).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	require.NoError(t, err, string(out))
	return string(out), 0
}
