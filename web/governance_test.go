package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/tenants/policy"
)

// Governance at request time (issue 4): every path that grants authority
// asks the policy again, so a revoked grant refuses the next request, also
// for tasks created before it.

// requirePolicyTrace checks a policy denial's trace: check policy, the
// missing rule and the closest rule that exists.
func requirePolicyTrace(t *testing.T, w *world, bearer, id, missing, closest string, secrets ...string) map[string]any {
	t.Helper()
	trace := requireTrace(t, w.tn, bearer, id, oauth.CheckPolicy, secrets...)
	rule, _ := trace["rule"].(string)
	require.Contains(t, rule, "missing: p, client:"+w.tn.Orchestrator.ID+", "+w.tn.T.ID.String()+", "+missing)
	require.Contains(t, rule, "closest: "+closest)
	require.Equal(t, "a grant covering "+strings.TrimSuffix(strings.Fields(missing)[0], ","), trace["expected"])
	return trace
}

func TestTaskOutsideGrantRefusedWithPolicyTrace(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	before := snapshot(t, w.tn)
	resp := w.tn.PostJSON("/v1/tasks", w.orch, map[string]any{"principal": "user:alice", "purpose": "p",
		"scope": "tickets:read ticketsx", "audiences": []string{api}, "ttl_seconds": 600})
	id := requireRefusal(t, resp, http.StatusForbidden)
	requireUnchanged(t, w.tn, before)
	trace := requirePolicyTrace(t, w, w.orch, id, "ticketsx, scope", "p, client:"+w.tn.Orchestrator.ID+", "+w.tn.T.ID.String()+", tickets:*, scope")
	require.Equal(t, "ticketsx", trace["presented"])
}

func TestRevokedScopeRefusesExistingTask(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	tok := w.agent.Exchange("") // the full task scope, before the revoke
	second := w.tn.Register(w.tn.LaunchToken(w.orch, w.task, ""))

	require.NoError(t, w.env.Policy.Revoke(ctx, w.tn.T.ID, w.tn.Orchestrator.ID, []string{"kb:read"}, nil, "test"))
	closest := "p, client:" + w.tn.Orchestrator.ID + ", " + w.tn.T.ID.String() + ", tickets:*, scope"
	before := snapshot(t, w.tn)

	// The orchestrator's launch token for the task it created earlier.
	resp := w.tn.PostJSON("/v1/tasks/"+w.task.String()+"/launch-tokens", w.orch, nil)
	id := requireRefusal(t, resp, http.StatusForbidden)
	trace := requirePolicyTrace(t, w, w.orch, id, "kb:read, scope", closest)
	require.Equal(t, w.task.String(), trace["task_id"])

	// A first exchange of an agent registered before the revoke.
	resp = w.token(second.ExchangeForm(""))
	id = requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidScope)
	requirePolicyTrace(t, w, w.orch, id, "kb:read, scope", closest)

	// A renewal of a token that holds the revoked scope.
	resp = w.token(w.agent.RenewForm(""))
	id = requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidScope, tok)
	requirePolicyTrace(t, w, w.orch, id, "kb:read, scope", closest, tok)

	// A delegation of the revoked scope.
	resp = w.agent.Delegate("kb:read")
	id = requireRefusal(t, resp, http.StatusForbidden, tok)
	requirePolicyTrace(t, w, w.orch, id, "kb:read, scope", closest, tok)

	requireUnchanged(t, w.tn, before)
	requireActive(t, w.tn, true, tok) // not revoked: it simply cannot be renewed as is

	// What is still granted keeps working on every path.
	w.tn.LaunchToken(w.orch, w.task, "tickets:read")
	second.Exchange("tickets:read")
	w.agent.Renew("tickets:read tickets:write")
	resp = w.agent.Delegate("tickets:read")
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
}

func TestRevokedAudienceRefusesExchangeAsInvalidTarget(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	require.NoError(t, w.env.Policy.Grant(ctx, w.tn.T.ID, w.tn.Orchestrator.ID, nil, []string{"https://other.acme.example"}, "test"))
	require.NoError(t, w.env.Policy.Revoke(ctx, w.tn.T.ID, w.tn.Orchestrator.ID, nil, []string{api}, "test"))
	before := snapshot(t, w.tn)
	resp := w.token(w.agent.ExchangeForm("tickets:read"))
	id := requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidTarget)
	trace := requireTrace(t, w.tn, w.orch, id, oauth.CheckPolicy)
	require.Contains(t, trace["rule"], "missing: p, client:"+w.tn.Orchestrator.ID+", "+w.tn.T.ID.String()+", "+api+", audience")
	require.Contains(t, trace["rule"], "closest: p, client:"+w.tn.Orchestrator.ID+", "+w.tn.T.ID.String()+", https://other.acme.example, audience")
	require.Equal(t, api, trace["presented"])
	requireUnchanged(t, w.tn, before)
}

func TestRevokeOnOneReplicaEnforcedByAnother(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	second := chittest.StartOn(t, w.env.DB)
	w.tn.LaunchToken(w.orch, w.task, "")

	require.NoError(t, second.Policy.Revoke(context.Background(), w.tn.T.ID, w.tn.Orchestrator.ID, []string{"kb:read"}, nil, "test"))
	start := time.Now()
	var resp *chittest.Response
	for {
		resp = w.tn.PostJSON("/v1/tasks/"+w.task.String()+"/launch-tokens", w.orch, nil)
		if resp.Status != http.StatusCreated {
			break
		}
		require.Less(t, time.Since(start), time.Second, "a change on one replica is enforced by another within 1 s")
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("revoke on replica 2 enforced by replica 1 after %s", time.Since(start))
	id := requireRefusal(t, resp, http.StatusForbidden)
	requireTrace(t, w.tn, w.orch, id, oauth.CheckPolicy)

	// And a grant made there is enforced here too.
	require.NoError(t, second.Policy.Grant(context.Background(), w.tn.T.ID, w.tn.Orchestrator.ID, []string{"kb:*"}, nil, "test"))
	start = time.Now()
	for w.tn.PostJSON("/v1/tasks/"+w.task.String()+"/launch-tokens", w.orch, nil).Status != http.StatusCreated {
		require.Less(t, time.Since(start), time.Second, "a grant on one replica is enforced by another within 1 s")
		time.Sleep(5 * time.Millisecond)
	}
}

func TestIntrospectionNeedsTheIntrospectRule(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	tok := w.agent.Exchange("")
	requireActive(t, w.tn, true, tok) // a new resource server may introspect

	rs := w.tn.Resource.ID
	require.NoError(t, w.env.Policy.RevokeAccess(ctx, w.tn.T.ID, rs, []policy.Action{policy.ActIntrospect}, "test"))
	rsToken := w.tn.ClientToken(w.tn.Resource)
	form := w.tn.ClientAssertionForm(w.tn.Resource)
	form.Set("token", tok)
	before := snapshot(t, w.tn)
	resp := w.tn.PostForm("/oauth2/introspect", form)
	id := requireOAuthError(t, resp, http.StatusForbidden, oauth.ErrUnauthorizedClient, tok)
	require.NotContains(t, string(resp.Body), `"active"`)
	trace := requireTrace(t, w.tn, rsToken, id, oauth.CheckPolicy, tok)
	require.Contains(t, trace["rule"], "missing: p, client:"+rs+", "+w.tn.T.ID.String()+", *, introspect")
	require.Contains(t, trace["rule"], "closest: p, client:"+rs+", "+w.tn.T.ID.String()+", *, feed")

	// Its bearer token is refused the same way.
	resp = w.env.Do(http.MethodPost, w.tn.Issuer+"/oauth2/introspect", "application/x-www-form-urlencoded", rsToken,
		[]byte("token="+tok))
	requireOAuthError(t, resp, http.StatusForbidden, oauth.ErrUnauthorizedClient, tok)
	requireUnchanged(t, w.tn, before)

	require.NoError(t, w.env.Policy.GrantAccess(ctx, w.tn.T.ID, rs, []policy.Action{policy.ActIntrospect}, "test"))
	requireActive(t, w.tn, true, tok)
}

func TestTaskTTLCap(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	require.NoError(t, w.env.Policy.SetCaps(context.Background(), w.tn.T.ID, w.tn.Orchestrator.ID, time.Hour, 0, "test"))
	task := func(ttl int) *chittest.Response {
		return w.tn.PostJSON("/v1/tasks", w.orch, map[string]any{"principal": "user:alice", "purpose": "p",
			"scope": "tickets:read", "audiences": []string{api}, "ttl_seconds": ttl})
	}
	before := snapshot(t, w.tn)
	id := requireRefusal(t, task(3601), http.StatusForbidden)
	requireUnchanged(t, w.tn, before)
	trace := requireTrace(t, w.tn, w.orch, id, oauth.CheckPolicy)
	require.Equal(t, "ttl_seconds ≤ 3600", trace["expected"])
	require.Equal(t, "ttl_seconds 3601", trace["presented"])
	require.Equal(t, "p, client:"+w.tn.Orchestrator.ID+", "+w.tn.T.ID.String()+", 3600, max_task_ttl", trace["rule"])
	require.Equal(t, http.StatusCreated, task(3600).Status)

	require.NoError(t, w.env.Policy.ClearCaps(context.Background(), w.tn.T.ID, w.tn.Orchestrator.ID, true, false, "test"))
	require.Equal(t, http.StatusCreated, task(7200).Status)
}

func TestDepthCapTightensOnly(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	require.NoError(t, w.env.Policy.SetCaps(ctx, w.tn.T.ID, w.tn.Orchestrator.ID, 0, 2, "test"))
	w.agent.Exchange("")
	child := w.child(t, w.agent, "tickets:read") // depth 2 ≤ the cap
	childTok := child.Exchange("")

	before := snapshot(t, w.tn)
	id := requireRefusal(t, child.Delegate("tickets:read"), http.StatusForbidden, childTok)
	requireUnchanged(t, w.tn, before)
	trace := requireTrace(t, w.tn, childTok, id, oauth.CheckDepth, childTok)
	require.Equal(t, "depth ≤ 2", trace["expected"])
	require.Equal(t, "depth 3", trace["presented"])
	require.Equal(t, "p, client:"+w.tn.Orchestrator.ID+", "+w.tn.T.ID.String()+", 2, max_depth", trace["rule"])

	// A cap above the tenant's maximum (3) changes nothing: the tenant's wins.
	require.NoError(t, w.env.Policy.SetCaps(ctx, w.tn.T.ID, w.tn.Orchestrator.ID, 0, 10, "test"))
	grandchild := w.child(t, child, "tickets:read")
	gcTok := grandchild.Exchange("")
	id = requireRefusal(t, grandchild.Delegate("tickets:read"), http.StatusForbidden, gcTok)
	trace = requireTrace(t, w.tn, gcTok, id, oauth.CheckDepth, gcTok)
	require.Equal(t, "depth ≤ 3", trace["expected"])
	require.Equal(t, "depth 4", trace["presented"])
	require.Nil(t, trace["rule"], "the tenant's maximum decided, not the cap")

	// A cap lowered later binds existing agents at their next exchange.
	require.NoError(t, w.env.Policy.SetCaps(ctx, w.tn.T.ID, w.tn.Orchestrator.ID, 0, 1, "test"))
	resp := w.token(child.RenewForm(""))
	id = requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest, childTok)
	trace = requireTrace(t, w.tn, w.orch, id, oauth.CheckDepth)
	require.Equal(t, "depth ≤ 1", trace["expected"])
	require.Contains(t, trace["rule"], "1, max_depth")
}
