package web_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
)

// lineage is a task with agent A, its child C and grandchild G, a sibling
// B, and a second task with agent D — each holding a token.
type lineage struct {
	tn            *chittest.Tenant
	orch          string
	task, task2   string
	a, b, c, g, d *chittest.Agent
}

func newLineage(t *testing.T) *lineage {
	t.Helper()
	env := chittest.Start(t)
	tn := env.NewTenant("acme", []string{"tickets:*"}, []string{api})
	l := &lineage{tn: tn, orch: tn.ClientToken(tn.Orchestrator)}
	task := tn.CreateTask(l.orch, "tickets:read tickets:write", []string{api})
	task2 := tn.CreateTask(l.orch, "tickets:read", []string{api})
	l.task, l.task2 = task.String(), task2.String()
	l.a = tn.Register(tn.LaunchToken(l.orch, task, ""))
	l.a.Exchange("")
	l.b = tn.Register(tn.LaunchToken(l.orch, task, ""))
	l.b.Exchange("")
	delegate := func(parent *chittest.Agent) *chittest.Agent {
		resp := parent.Delegate("tickets:read")
		require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
		var lt struct {
			LaunchToken string `json:"launch_token"`
		}
		resp.JSON(t, &lt)
		child := tn.Register(lt.LaunchToken)
		child.Exchange("")
		return child
	}
	l.c = delegate(l.a)
	l.g = delegate(l.c)
	l.d = tn.Register(tn.LaunchToken(l.orch, task2, ""))
	l.d.Exchange("")
	return l
}

func (l *lineage) revoke(t *testing.T, level, target string) int {
	t.Helper()
	resp := l.tn.PostJSON("/v1/revocations", l.orch, map[string]string{"level": level, "target": target, "reason": "test"})
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var out struct {
		RevocationID string `json:"revocation_id"`
		Count        int    `json:"revoked_count"`
	}
	resp.JSON(t, &out)
	require.NotEmpty(t, out.RevocationID)
	return out.Count
}

func (l *lineage) active(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for name, a := range map[string]*chittest.Agent{"a": l.a, "b": l.b, "c": l.c, "g": l.g, "d": l.d} {
		out[name] = l.tn.Introspect(a.Token)["active"] == true
	}
	return out
}

func TestEachRevocationLevelRevokesExactlyItsCredentials(t *testing.T) {
	t.Parallel()
	t.Run("token", func(t *testing.T) {
		t.Parallel()
		l := newLineage(t)
		jti := chittest.Claims(t, l.a.Token)["jti"].(string)
		require.Equal(t, 1, l.revoke(t, "token", jti))
		require.Equal(t, map[string]bool{"a": false, "b": true, "c": true, "g": true, "d": true}, l.active(t))
		// The agent itself may still get a new token: only that token was revoked.
		l.a.Exchange("")
	})
	t.Run("agent", func(t *testing.T) {
		t.Parallel()
		l := newLineage(t)
		require.Equal(t, 2, l.revoke(t, "agent", l.c.ID.String()), "the agent and its token")
		// A sub-agent's authority derives from its delegator: G's lineage is broken too.
		require.Equal(t, map[string]bool{"a": true, "b": true, "c": false, "g": false, "d": true}, l.active(t))
		resp := l.tn.PostForm("/oauth2/token", l.c.ExchangeForm(""))
		require.Equal(t, http.StatusBadRequest, resp.Status, "a revoked agent gets no new token")
	})
	t.Run("chain", func(t *testing.T) {
		t.Parallel()
		l := newLineage(t)
		require.Equal(t, 6, l.revoke(t, "chain", l.a.ID.String()), "A, C, G and their tokens")
		require.Equal(t, map[string]bool{"a": false, "b": true, "c": false, "g": false, "d": true}, l.active(t))
	})
	t.Run("task", func(t *testing.T) {
		t.Parallel()
		l := newLineage(t)
		require.Equal(t, 8, l.revoke(t, "task", l.task), "four agents and their tokens")
		require.Equal(t, map[string]bool{"a": false, "b": false, "c": false, "g": false, "d": true}, l.active(t))
		resp := l.tn.PostJSON("/v1/tasks/"+l.task+"/launch-tokens", l.orch, nil)
		require.Equal(t, http.StatusForbidden, resp.Status, "a revoked task gets no new launch token")
	})
}

func TestRevocationRefusals(t *testing.T) {
	t.Parallel()
	l := newLineage(t)
	other := l.tn.NewClient("orchestrator")
	otherTok := l.tn.ClientToken(other)
	resp := l.tn.PostJSON("/v1/revocations", otherTok, map[string]string{"level": "task", "target": l.task, "reason": "x"})
	require.Equal(t, http.StatusNotFound, resp.Status, "another orchestrator's task does not exist for it")
	resp = l.tn.PostJSON("/v1/revocations", l.a.Token, map[string]string{"level": "agent", "target": l.b.ID.String(), "reason": "x"})
	require.Equal(t, http.StatusForbidden, resp.Status, "agents do not revoke through this API")
	for _, body := range []map[string]string{
		{"level": "everything", "target": l.task, "reason": "x"},
		{"level": "task", "target": "not-a-uuid", "reason": "x"},
		{"level": "task", "target": l.task, "reason": ""},
	} {
		resp = l.tn.PostJSON("/v1/revocations", l.orch, body)
		require.Equal(t, http.StatusBadRequest, resp.Status, body)
	}
	require.Equal(t, map[string]bool{"a": true, "b": true, "c": true, "g": true, "d": true}, l.active(t), "refusals revoke nothing")
}
