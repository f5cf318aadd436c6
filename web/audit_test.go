package web_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/oauth"
)

// An auditor exports the trail over HTTP and verifies it offline with the
// keys it fetched itself; the export holds no token or assertion.
func TestAuditorExportVerifiesOfflineAndHoldsNoSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := chittest.Start(t)
	tn := env.NewTenant("acme", []string{"tickets:*"}, []string{api})
	auditor := tn.ClientToken(tn.NewClient(oauth.KindAuditor))
	orch := tn.ClientToken(tn.Orchestrator)
	task := tn.CreateTask(orch, "tickets:read", []string{api})
	launch := tn.LaunchToken(orch, task, "")
	agent := tn.Register(launch)
	first := agent.Exchange("")
	assertion := agent.Assertion()
	renewed := agent.Renew("")
	secrets := []string{orch, auditor, first, renewed, launch, assertion}

	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := audit.ChainPending(ctx, env.DB, tn.T.ID, time.Now(), 1000)
		require.NoError(t, err)
		r, err := audit.Verify(ctx, env.DB, tn.T.ID)
		require.NoError(t, err)
		if r.Unchained == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline))
		time.Sleep(20 * time.Millisecond)
	}
	_, err := audit.Seal(ctx, env.DB, env.Keys, tn.T.ID, time.Now())
	require.NoError(t, err)

	resp := env.Do(http.MethodGet, tn.Issuer+"/v1/audit/keys", "", auditor, nil)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	var set struct{ Keys []struct{ Kid, X string } }
	resp.JSON(t, &set)
	require.NotEmpty(t, set.Keys)
	trusted := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		require.NoError(t, err)
		trusted[k.Kid] = x
	}

	resp = env.Do(http.MethodGet, tn.Issuer+"/v1/audit/export?format=jsonl", "", auditor, nil)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	export := string(resp.Body)
	r, err := audit.VerifyExport(strings.NewReader(export), trusted)
	require.NoError(t, err)
	require.Nil(t, r.Problem)
	require.Positive(t, r.Events)
	require.Equal(t, 1, r.Checkpoints)
	for _, s := range secrets {
		require.NotContains(t, export, s, "no token, launch token or assertion in the audit trail")
		require.NotContains(t, export, s[len(s)-40:], "not even a piece of one")
	}
	require.NotContains(t, export, "triage tickets", "no free-text purpose, only its hash")

	resp = env.Do(http.MethodGet, tn.Issuer+"/v1/audit/checkpoints", "", auditor, nil)
	require.Equal(t, http.StatusOK, resp.Status)
	require.Contains(t, string(resp.Body), `"head_hash"`)
	for _, path := range []string{"/v1/audit/export", "/v1/audit/keys", "/v1/audit/checkpoints"} {
		resp = env.Do(http.MethodGet, tn.Issuer+path, "", orch, nil)
		require.Equal(t, http.StatusForbidden, resp.Status, "only auditors read %s", path)
	}
	resp = env.Do(http.MethodGet, tn.Issuer+"/v1/audit/export?format=xml", "", auditor, nil)
	require.Equal(t, http.StatusBadRequest, resp.Status)
}

func TestAuditAttributionQueries(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	tn := env.NewTenant("acme", []string{"tickets:*"}, []string{api})
	auditor := tn.ClientToken(tn.NewClient(oauth.KindAuditor))
	orch := tn.ClientToken(tn.Orchestrator)
	task := tn.CreateTask(orch, "tickets:read", []string{api})
	a := tn.Register(tn.LaunchToken(orch, task, ""))
	a.Exchange("")
	a.Renew("")
	other := tn.Register(tn.LaunchToken(orch, tn.CreateTask(orch, "tickets:read", []string{api}), ""))
	other.Exchange("")

	list := func(query string) (events []map[string]any, next string) {
		resp := env.Do(http.MethodGet, tn.Issuer+"/v1/audit?"+query, "", auditor, nil)
		require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
		var page struct {
			Events     []map[string]any `json:"events"`
			NextCursor string           `json:"next_cursor"`
		}
		resp.JSON(t, &page)
		return page.Events, page.NextCursor
	}
	events, _ := list("agent_id=" + a.ID.String())
	types := map[string]bool{}
	for _, e := range events {
		require.Equal(t, a.ID.String(), e["agent_id"])
		types[e["type"].(string)] = true
	}
	require.True(t, types["token.issued"] && types["token.renewed"] && types["agent.registered"], types)

	events, _ = list("principal=user:alice&type=token.issued")
	require.Len(t, events, 2, "both agents' first tokens, on behalf of the same principal")

	events, _ = list("task_id=" + task.String())
	require.NotEmpty(t, events)
	for _, e := range events {
		require.Equal(t, task.String(), e["task_id"])
	}

	// Paging: newest first, every event once.
	all, _ := list("limit=500")
	var paged []map[string]any
	cursor := ""
	for {
		q := "limit=3"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		page, next := list(q)
		paged = append(paged, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	require.Equal(t, len(all), len(paged))
	for i := range all {
		require.Equal(t, all[i]["id"], paged[i]["id"])
	}

	resp := env.Do(http.MethodGet, tn.Issuer+"/v1/audit?agent=x", "", auditor, nil)
	require.Equal(t, http.StatusBadRequest, resp.Status, "unknown filters are refused")
	resp = env.Do(http.MethodGet, tn.Issuer+"/v1/audit", "", orch, nil)
	require.Equal(t, http.StatusForbidden, resp.Status)
}
