package web_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/tenants"
)

// The issuer remembers tokens whose signature verified; none of what a
// token's use depends on beyond its bytes may come from that memory.
func TestARememberedTokenIsStillCheckedForTimeRevocationAndTenant(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	clk := clock.NewManual(time.Now())
	env := chittest.StartWith(t, db, chittest.Options{Clock: clk})
	acme := env.NewTenant("acme", []string{"tickets:*"}, []string{"https://tickets.example"})
	ttl := 30 * time.Second
	_, err := env.Tenants.Update(context.Background(), "acme", tenants.SettingsChange{TokenTTL: &ttl})
	require.NoError(t, err)
	bravo := env.NewTenant("bravo", []string{"tickets:*"}, []string{"https://tickets.example"})
	orch := acme.ClientToken(acme.Orchestrator)
	task := acme.CreateTask(orch, "tickets:read", []string{"https://tickets.example"})
	agent := acme.Register(acme.LaunchToken(orch, task, "tickets:read"))
	token := agent.Exchange("tickets:read")

	// Seen twice: both by introspection and as a bearer token.
	for range 2 {
		require.Equal(t, true, acme.Introspect(token)["active"])
		hb := acme.PostJSON("/v1/agents/"+agent.ID.String()+"/heartbeat", token, nil)
		require.Equal(t, http.StatusNoContent, hb.Status, string(hb.Body))
	}

	// Another tenant does not take it for its own.
	require.Equal(t, false, bravo.Introspect(token)["active"])
	hb := bravo.PostJSON("/v1/agents/"+agent.ID.String()+"/heartbeat", token, nil)
	require.Equal(t, http.StatusUnauthorized, hb.Status)

	// Revocation is checked on every use.
	resp := acme.PostJSON("/v1/revocations", orch, map[string]string{"level": "token", "target": jtiOfToken(t, token), "reason": "test"})
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	require.Equal(t, false, acme.Introspect(token)["active"])
	hb = acme.PostJSON("/v1/agents/"+agent.ID.String()+"/heartbeat", token, nil)
	require.Equal(t, http.StatusUnauthorized, hb.Status)

	// So is expiry: a fresh token, remembered, then past its life (30 s + 30 s skew).
	token = agent.Exchange("tickets:read")
	for range 2 {
		hb = acme.PostJSON("/v1/agents/"+agent.ID.String()+"/heartbeat", token, nil)
		require.Equal(t, http.StatusNoContent, hb.Status, string(hb.Body))
	}
	clk.Advance(61 * time.Second)
	hb = acme.PostJSON("/v1/agents/"+agent.ID.String()+"/heartbeat", token, nil)
	require.Equal(t, http.StatusUnauthorized, hb.Status)
	require.Contains(t, hb.Map(t)["detail"], "expired")
}

func jtiOfToken(t *testing.T, token string) string {
	t.Helper()
	return chittest.Claims(t, token)["jti"].(string)
}
