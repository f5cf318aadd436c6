package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/tenants/policy"
)

func TestPolicyCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	code, _, stderr := b.run(t, "migrate")
	require.Equal(t, 0, code, stderr)
	code, out, stderr := b.run(t, "tenant", "create", "acme", "--trust-domain", "acme.example", "--json")
	require.Equal(t, 0, code, stderr)
	var tenant struct{ ID uuid.UUID }
	require.NoError(t, json.Unmarshal([]byte(out), &tenant))
	orch := b.createClient(t, "acme", "orchestrator")
	rs := b.createClient(t, "acme", "resource-server")

	// A running replica, to see the CLI's changes arrive.
	db, err := pgstore.Open(ctx, b.env["DATABASE_URL"], pgstore.Options{MaxConns: 4})
	require.NoError(t, err)
	defer db.Close()
	replica, err := policy.New(ctx, db, clock.System, nil)
	require.NoError(t, err)
	defer replica.Close()
	allowed := func(scopes []string, audiences ...string) bool {
		return replica.CheckTask(tenant.ID, orch, scopes, audiences).Allowed
	}
	require.False(t, allowed([]string{"tickets:read"}), "no grant: deny")

	code, out, stderr = b.run(t, "policy", "list", "--tenant", "acme")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "no scope or audience grants")
	require.Contains(t, out, rs+"  introspect", "a resource server is given introspect at creation")
	require.Contains(t, out, rs+"  feed")

	code, out, stderr = b.run(t, "policy", "grant", "--tenant", "acme", "--client", orch,
		"--scopes", "tickets:*  mail:send", "--audiences", "https://api.acme.example", "--json")
	require.Equal(t, 0, code, stderr)
	var change struct {
		Tenant    string   `json:"tenant"`
		ClientID  string   `json:"client_id"`
		Change    string   `json:"change"`
		Scopes    []string `json:"scopes"`
		Audiences []string `json:"audiences"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &change))
	require.Equal(t, "grant", change.Change)
	require.Equal(t, orch, change.ClientID)
	require.Equal(t, []string{"tickets:*", "mail:send"}, change.Scopes)
	require.Equal(t, []string{"https://api.acme.example"}, change.Audiences)
	start := time.Now()
	for !allowed([]string{"tickets:read", "mail:send"}, "https://api.acme.example") {
		require.Less(t, time.Since(start), time.Second, "a CLI change reaches a running replica within 1 s")
		time.Sleep(time.Millisecond)
	}
	t.Logf("CLI grant enforced by the running replica %s after the command returned", time.Since(start))
	require.False(t, allowed([]string{"ticketsx"}))

	code, out, stderr = b.run(t, "policy", "list", "--tenant", "acme", "--client", orch, "--json")
	require.Equal(t, 0, code, stderr)
	var rules []struct {
		ClientID  string    `json:"client_id"`
		Kind      string    `json:"kind"`
		Pattern   string    `json:"pattern"`
		GrantedAt time.Time `json:"granted_at"`
		GrantedBy string    `json:"granted_by"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rules))
	require.Len(t, rules, 3)
	require.Equal(t, "scope", rules[0].Kind)
	require.Equal(t, "mail:send", rules[0].Pattern)
	require.Equal(t, "cli", rules[0].GrantedBy)
	require.Equal(t, "audience", rules[2].Kind)

	code, out, _ = b.run(t, "policy", "list", "--tenant", "acme")
	require.Equal(t, 0, code)
	require.Contains(t, out, "tickets:*")
	require.Contains(t, out, "https://api.acme.example")
	code, out, _ = b.run(t, "policy", "list", "--tenant", "acme", "--client", rs, "--json")
	require.Equal(t, 0, code)
	var rsRules []struct {
		Kind    string `json:"kind"`
		Pattern string `json:"pattern"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rsRules))
	require.Len(t, rsRules, 2)
	require.ElementsMatch(t, []string{"introspect", "feed"}, []string{rsRules[0].Kind, rsRules[1].Kind})

	code, _, stderr = b.run(t, "policy", "grant", "--tenant", "acme", "--client", "nobody", "--scopes", "x")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no such client")
	code, _, stderr = b.run(t, "policy", "grant", "--tenant", "nowhere", "--client", orch, "--scopes", "x")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no such tenant")
	code, _, stderr = b.run(t, "policy", "grant", "--tenant", "acme", "--client", orch, "--scopes", "tick*ets")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "`*` is allowed only as the last character")
	code, _, stderr = b.run(t, "policy", "grant", "--tenant", "acme", "--client", orch, "--audiences", "api.acme.example")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "absolute http or https URI")
	code, _, stderr = b.run(t, "policy", "grant", "--tenant", "acme", "--client", rs, "--scopes", "x")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "granted to orchestrators")
	code, _, stderr = b.run(t, "policy", "grant", "--tenant", "acme", "--client", orch)
	require.Equal(t, 2, code, "nothing to grant is a usage error")
	require.Contains(t, stderr, "--scopes")

	code, out, stderr = b.run(t, "policy", "revoke", "--tenant", "acme", "--client", orch, "--scopes", "tickets:*")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "revoked from client "+orch)
	start = time.Now()
	for allowed([]string{"tickets:read"}) {
		require.Less(t, time.Since(start), time.Second, "a CLI revoke reaches a running replica within 1 s")
		time.Sleep(time.Millisecond)
	}
	require.True(t, allowed([]string{"mail:send"}, "https://api.acme.example"), "the rest stays")

	code, _, stderr = b.run(t, "policy", "revoke", "--tenant", "acme", "--client", orch, "--scopes", "tickets:*")
	require.Equal(t, 1, code, "revoking what is not granted says so")
	require.Contains(t, stderr, "not granted")

	code, out, _ = b.run(t, "policy", "list", "--tenant", "acme", "--client", orch, "--json")
	require.Equal(t, 0, code)
	require.NoError(t, json.Unmarshal([]byte(out), &rules))
	require.Len(t, rules, 2)
}

func TestPolicyAccessAndCapCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	code, _, stderr := b.run(t, "migrate")
	require.Equal(t, 0, code, stderr)
	code, out, stderr := b.run(t, "tenant", "create", "acme", "--trust-domain", "acme.example", "--json")
	require.Equal(t, 0, code, stderr)
	var tenant struct{ ID uuid.UUID }
	require.NoError(t, json.Unmarshal([]byte(out), &tenant))
	orch := b.createClient(t, "acme", "orchestrator")
	rs := b.createClient(t, "acme", "resource-server")

	db, err := pgstore.Open(ctx, b.env["DATABASE_URL"], pgstore.Options{MaxConns: 4})
	require.NoError(t, err)
	defer db.Close()
	replica, err := policy.New(ctx, db, clock.System, nil)
	require.NoError(t, err)
	defer replica.Close()
	require.True(t, replica.CheckClient(tenant.ID, rs, policy.ActIntrospect).Allowed, "a resource server may introspect from creation")
	require.False(t, replica.CheckClient(tenant.ID, orch, policy.ActIntrospect).Allowed)

	code, out, stderr = b.run(t, "policy", "revoke", "--tenant", "acme", "--client", rs, "--introspect")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "access        introspect")
	start := time.Now()
	for replica.CheckClient(tenant.ID, rs, policy.ActIntrospect).Allowed {
		require.Less(t, time.Since(start), time.Second, "a CLI revoke reaches a running replica within 1 s")
		time.Sleep(time.Millisecond)
	}
	require.True(t, replica.CheckClient(tenant.ID, rs, policy.ActFeed).Allowed, "feed stays")
	code, _, stderr = b.run(t, "policy", "revoke", "--tenant", "acme", "--client", rs, "--introspect")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "not granted")
	code, _, stderr = b.run(t, "policy", "grant", "--tenant", "acme", "--client", orch, "--introspect")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "granted to resource servers")
	code, _, stderr = b.run(t, "policy", "grant", "--tenant", "acme", "--client", rs, "--introspect", "--json")
	require.Equal(t, 0, code, stderr)
	start = time.Now()
	for !replica.CheckClient(tenant.ID, rs, policy.ActIntrospect).Allowed {
		require.Less(t, time.Since(start), time.Second, "a CLI grant reaches a running replica within 1 s")
		time.Sleep(time.Millisecond)
	}

	code, out, stderr = b.run(t, "policy", "grant", "--tenant", "acme", "--client", orch, "--max-task-ttl", "1h", "--max-depth", "2")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "max-task-ttl  1h0m0s")
	require.Contains(t, out, "max-depth     2")
	caps := func() policy.Caps { return replica.CheckTask(tenant.ID, orch, nil, nil).Caps }
	start = time.Now()
	for caps().MaxDepth != 2 || caps().MaxTaskTTL != time.Hour {
		require.Less(t, time.Since(start), time.Second, "caps reach a running replica within 1 s")
		time.Sleep(time.Millisecond)
	}
	code, out, _ = b.run(t, "policy", "list", "--tenant", "acme", "--client", orch)
	require.Equal(t, 0, code)
	require.Contains(t, out, "max_task_ttl  1h0m0s")
	require.Contains(t, out, "max_depth     2")
	code, _, stderr = b.run(t, "policy", "grant", "--tenant", "acme", "--client", rs, "--max-depth", "2")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "caps apply to orchestrators")
	code, _, stderr = b.run(t, "policy", "grant", "--tenant", "acme", "--client", orch, "--max-task-ttl", "1ms")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "max_task_ttl")

	code, _, stderr = b.run(t, "policy", "revoke", "--tenant", "acme", "--client", orch, "--max-depth")
	require.Equal(t, 0, code, stderr)
	start = time.Now()
	for caps().MaxDepth != 0 {
		require.Less(t, time.Since(start), time.Second, "a removed cap reaches a running replica within 1 s")
		time.Sleep(time.Millisecond)
	}
	require.Equal(t, time.Hour, caps().MaxTaskTTL, "the other cap stays")
	code, _, stderr = b.run(t, "policy", "revoke", "--tenant", "acme", "--client", orch, "--max-depth")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "not set")
}

// createClient registers a client through `chit client create` and returns
// its client_id.
func (b *testBundle) createClient(t *testing.T, tenant, kind string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	jwk := filepath.Join(t.TempDir(), "client.jwk")
	require.NoError(t, os.WriteFile(jwk, []byte(`{"kty":"OKP","crv":"Ed25519","x":"`+
		base64.RawURLEncoding.EncodeToString(pub)+`"}`), 0o600))
	code, out, stderr := b.run(t, "client", "create", "--tenant", tenant, "--kind", kind, "--name", kind, "--jwk", jwk)
	require.Equal(t, 0, code, stderr)
	return strings.TrimSpace(out)
}
