package web_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/tenants"
)

// Two replicas share one database and one issuer: a revocation answered by
// one is refused by the other at once (revocation state is read from the
// database on every validation; no replica trusts a cache of it).
func TestRevocationOnOneReplicaIsRefusedByTheOther(t *testing.T) {
	t.Parallel()
	one := chittest.Start(t)
	two := chittest.StartWith(t, one.DB, chittest.Options{BaseURL: one.URL})
	tn := one.NewTenant("acme", []string{"tickets:*"}, []string{api})
	renewals := 100 // one exchange per try
	_, err := one.Tenants.Update(context.Background(), "acme", tenants.SettingsChange{MaxRenewals: &renewals})
	require.NoError(t, err)
	orch := tn.ClientToken(tn.Orchestrator)
	task := tn.CreateTask(orch, "tickets:read", []string{api})
	agent := tn.Register(tn.LaunchToken(orch, task, ""))

	introspectAtTwo := func(token string) bool {
		form := tn.ClientAssertionForm(tn.Resource)
		form.Set("token", token)
		resp := two.Do(http.MethodPost, two.Addr+"/t/acme/oauth2/introspect", "application/x-www-form-urlencoded", "", []byte(form.Encode()))
		require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
		return resp.Map(t)["active"] == true
	}

	var lags []time.Duration
	for range 50 {
		tok := agent.Exchange("")
		require.True(t, introspectAtTwo(tok))
		jti := chittest.Claims(t, tok)["jti"].(string)
		resp := tn.PostJSON("/v1/revocations", orch, map[string]string{"level": "token", "target": jti, "reason": "test"})
		require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
		answered := time.Now()
		for introspectAtTwo(tok) {
			require.Less(t, time.Since(answered), time.Second, "replica two still accepts a revoked token")
			time.Sleep(5 * time.Millisecond)
		}
		lags = append(lags, time.Since(answered))
	}
	slices.Sort(lags)
	t.Logf("revocation on replica one refused by replica two after: p50 %s, p99 %s (50 tries, incl. one introspection round trip)",
		lags[len(lags)/2], lags[len(lags)*99/100])
}
