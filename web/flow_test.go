package web_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
)

const api = "https://api.acme.example"

// TestAgentLifeOverHTTP walks an agent's whole life over real HTTP:
// orchestrator → task → launch token → register → exchange → introspect →
// renew narrower → delegate two levels → revoke.
func TestAgentLifeOverHTTP(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	tn := env.NewTenant("acme", []string{"tickets:*", "kb:read"}, []string{api, "https://mcp.acme.example"})

	orch := tn.ClientToken(tn.Orchestrator)
	require.Equal(t, "at+jwt", chittest.Header(t, orch)["typ"])
	require.Equal(t, "EdDSA", chittest.Header(t, orch)["alg"])

	task := tn.CreateTask(orch, "tickets:read tickets:write kb:read", []string{api, "https://mcp.acme.example"})
	launch := tn.LaunchToken(orch, task, "")
	agent := tn.Register(launch)
	require.Equal(t, "spiffe://acme.example/agent/"+tn.Orchestrator.ID+"/"+task.String()+"/"+agent.ID.String(), agent.SPIFFEID)

	tok := agent.Exchange("tickets:read tickets:write")
	claims := chittest.Claims(t, tok)
	require.Equal(t, tn.Issuer, claims["iss"])
	require.Equal(t, "user:alice", claims["sub"])
	require.Equal(t, tn.Orchestrator.ID, claims["client_id"])
	require.Equal(t, "tickets:read tickets:write", claims["scope"])
	require.Equal(t, task.String(), claims["task_id"])
	require.Equal(t, agent.ID.String(), claims["agent_id"])
	require.Equal(t, map[string]any{"sub": agent.SPIFFEID}, claims["act"])
	require.ElementsMatch(t, []any{api, "https://mcp.acme.example"}, claims["aud"])
	require.InDelta(t, 300, claims["exp"].(float64)-claims["iat"].(float64), 1)
	hdr := chittest.Header(t, tok)
	require.Equal(t, "at+jwt", hdr["typ"])
	require.NotEmpty(t, hdr["kid"])

	intro := tn.Introspect(tok)
	require.Equal(t, true, intro["active"])
	require.Equal(t, map[string]any{"sub": agent.SPIFFEID}, intro["act"])

	// Renewal: narrower scope; the old token is inactive at once.
	old := tok
	renewed := agent.Renew("tickets:read")
	require.Equal(t, "tickets:read", chittest.Claims(t, renewed)["scope"])
	require.Equal(t, false, tn.Introspect(old)["active"])
	require.Equal(t, true, tn.Introspect(renewed)["active"])

	// Delegation, two levels, scope attenuated at each hop.
	resp := agent.Delegate("tickets:read")
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var lt struct {
		LaunchToken string `json:"launch_token"`
	}
	resp.JSON(t, &lt)
	child := tn.Register(lt.LaunchToken)
	childTok := child.Exchange("")
	cc := chittest.Claims(t, childTok)
	require.Equal(t, "tickets:read", cc["scope"])
	require.Equal(t, map[string]any{"sub": child.SPIFFEID, "act": map[string]any{"sub": agent.SPIFFEID}}, cc["act"])
	require.LessOrEqual(t, cc["exp"].(float64), chittest.Claims(t, renewed)["exp"].(float64))

	resp = child.Delegate("tickets:read")
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	resp.JSON(t, &lt)
	grandchild := tn.Register(lt.LaunchToken)
	gcTok := grandchild.Exchange("tickets:read")
	require.Equal(t, map[string]any{"sub": grandchild.SPIFFEID, "act": map[string]any{"sub": child.SPIFFEID,
		"act": map[string]any{"sub": agent.SPIFFEID}}}, chittest.Claims(t, gcTok)["act"])

	// Depth 3 is the tenant's maximum: a fourth level is refused when asked for.
	resp = grandchild.Delegate("tickets:read")
	require.Equal(t, http.StatusForbidden, resp.Status, string(resp.Body))
	require.Contains(t, string(resp.Body), "depth")

	// RFC 7009 revocation by the owning orchestrator.
	form := tn.ClientAssertionForm(tn.Orchestrator)
	form.Set("token", gcTok)
	resp = tn.PostForm("/oauth2/revoke", form)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	require.Equal(t, false, tn.Introspect(gcTok)["active"])
	require.Equal(t, true, tn.Introspect(childTok)["active"], "revoking one token revokes no other")

	// Completing the task leaves no valid credential behind.
	resp = tn.PostJSON("/v1/tasks/"+task.String()+"/complete", orch, nil)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	for _, tk := range []string{renewed, childTok} {
		require.Equal(t, false, tn.Introspect(tk)["active"])
	}
	resp = tn.PostForm("/oauth2/token", agent.ExchangeForm(""))
	require.Equal(t, http.StatusBadRequest, resp.Status)
	require.Equal(t, "invalid_request", resp.Map(t)["error"])
	_ = url.Values{}
}
