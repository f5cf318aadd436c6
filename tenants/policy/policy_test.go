package policy_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/tenants/policy"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// newTenant inserts a tenant directly: policy needs only its row.
func newTenant(t *testing.T, db *pgstore.DB) uuid.UUID {
	t.Helper()
	id := uuid.New()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	slug := "t" + hex.EncodeToString(b)
	require.NoError(t, db.InTenantTx(context.Background(), id, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(),
			`INSERT INTO tenants (id, slug, trust_domain) VALUES ($1, $2, $3)`, id, slug, slug+".example")
		return err
	}))
	return id
}

// newClient registers a client of the tenant directly (client creation is
// another package's business).
func newClient(t *testing.T, db *pgstore.DB, tenantID uuid.UUID, id, kind string) {
	t.Helper()
	require.NoError(t, db.InTenantTx(context.Background(), tenantID, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `
			INSERT INTO clients (tenant_id, id, kind, name, public_key, created_at)
			VALUES ($1, $2, $3, $2, $4, now())`, tenantID, id, kind, make([]byte, 32))
		return err
	}))
}

func newService(t *testing.T, db *pgstore.DB) *policy.Service {
	t.Helper()
	s, err := policy.New(context.Background(), db, clock.NewManual(t0), nil)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// within polls cond until it holds or the deadline passes, and returns how
// long it took. A replica applies changes asynchronously; this waits for
// that event, bounded, and never for a fixed time.
func within(t *testing.T, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("condition not reached within %s", limit)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func TestTaskInsideTheGrantIsAcceptedOutsideExplained(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pgtest.Open(t)
	tenant := newTenant(t, db)
	newClient(t, db, tenant, "orch", "orchestrator")
	s := newService(t, db)

	d := s.CheckTask(tenant, "orch", []string{"tickets:read"}, nil)
	require.False(t, d.Allowed, "no grant: deny")
	require.Equal(t, "policy", d.Check)
	require.Equal(t, policy.RuleNone, d.Rule)
	require.Equal(t, []string{"tickets:read"}, d.Missing)
	require.Empty(t, d.Closest)

	require.NoError(t, s.Grant(ctx, tenant, "orch",
		[]string{"tickets:*", "mail:send", "calendar:read"}, []string{"https://api.acme.example", "https://mail.acme.example/v1"}, "cli"))

	d = s.CheckTask(tenant, "orch", []string{"tickets:read", "mail:send"}, []string{"https://api.acme.example"})
	require.True(t, d.Allowed, d.Reason)
	require.Empty(t, d.Missing)
	require.Equal(t, "p, client:orch, "+tenant.String()+", tickets:*, scope; "+
		"p, client:orch, "+tenant.String()+", mail:send, scope; "+
		"p, client:orch, "+tenant.String()+", https://api.acme.example, audience", d.Rule)

	d = s.CheckTask(tenant, "orch", []string{"tickets:read", "mail:read", "drive:write"}, []string{"https://api.acme.example"})
	require.False(t, d.Allowed)
	require.Equal(t, "policy", d.Check)
	require.Equal(t, []string{"mail:read", "drive:write"}, d.Missing)
	require.Equal(t, policy.RuleNone, d.Rule)
	require.Equal(t, "p, client:orch, "+tenant.String()+", mail:send, scope", d.Closest)
	require.Contains(t, d.Reason, `scope "mail:read" is not granted to client orch`)

	d = s.CheckTask(tenant, "orch", []string{"tickets:read"}, []string{"https://mail.acme.example/v2"})
	require.False(t, d.Allowed, "an audience must equal a granted one")
	require.Equal(t, []string{"https://mail.acme.example/v2"}, d.Missing)
	require.Equal(t, "p, client:orch, "+tenant.String()+", https://mail.acme.example/v1, audience", d.Closest)

	d = s.CheckTask(tenant, "other", []string{"tickets:read"}, nil)
	require.False(t, d.Allowed, "another client of the tenant holds nothing")
	require.Empty(t, d.Closest, "another client's rules are never named")

	d = s.CheckTask(tenant, "orch", nil, nil)
	require.True(t, d.Allowed, "nothing asked of a client with grants")
}

func TestTrailingStarMatchesAnySuffix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pgtest.Open(t)
	tenant := newTenant(t, db)
	newClient(t, db, tenant, "orch", "orchestrator")
	s := newService(t, db)
	require.NoError(t, s.Grant(ctx, tenant, "orch", []string{"tickets:*", "repo:acme/*", "exact"}, nil, "cli"))

	for scope, want := range map[string]bool{
		"tickets:read":       true,
		"tickets:":           true, // the empty suffix
		"tickets:read:all":   true,
		"tickets:*":          true,
		"tickets":            false,
		"ticketsx":           false,
		"ticketsx:read":      false,
		"tickets;read":       false,
		"Tickets:read":       false,
		"repo:acme/web":      true,
		"repo:acme":          false,
		"repo:acmex/web":     false,
		"exact":              true,
		"exactly":            false,
		"exac":               false,
		"*":                  false,
		"x:tickets:read":     false,
		"repo:acme/web/pull": true,
	} {
		d := s.CheckTask(tenant, "orch", []string{scope}, nil)
		require.Equal(t, want, d.Allowed, "scope %q", scope)
		// keyMatch agrees with chit's own definition of a pattern.
		require.Equal(t, want, matchesAny(scope, "tickets:*", "repo:acme/*", "exact"), "scope %q", scope)
	}
}

// matchesAny is SPEC §4.3's definition: a trailing `*` matches any suffix.
func matchesAny(tok string, patterns ...string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(tok, prefix) || p == tok {
			return true
		}
	}
	return false
}

func TestRevokeTakesEffectForTheNextCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pgtest.Open(t)
	tenant := newTenant(t, db)
	newClient(t, db, tenant, "orch", "orchestrator")
	s := newService(t, db)
	require.NoError(t, s.Grant(ctx, tenant, "orch", []string{"tickets:*", "mail:send"}, []string{"https://api.acme.example"}, "cli"))
	require.True(t, s.CheckTask(tenant, "orch", []string{"tickets:read"}, []string{"https://api.acme.example"}).Allowed)

	require.NoError(t, s.Revoke(ctx, tenant, "orch", []string{"tickets:*"}, nil, "cli"))
	d := s.CheckTask(tenant, "orch", []string{"tickets:read"}, nil)
	require.False(t, d.Allowed)
	require.Equal(t, []string{"tickets:read"}, d.Missing)
	require.True(t, s.CheckTask(tenant, "orch", []string{"mail:send"}, []string{"https://api.acme.example"}).Allowed,
		"the other grants stay")

	// Revoking what is not granted changes nothing and says so.
	err := s.Revoke(ctx, tenant, "orch", []string{"mail:send", "mail:*"}, nil, "cli")
	require.ErrorIs(t, err, fault.ErrNotFound)
	require.Contains(t, fault.Message(err), "scope mail:*")
	require.True(t, s.CheckTask(tenant, "orch", []string{"mail:send"}, nil).Allowed, "a refused revoke removed nothing")

	require.NoError(t, s.Revoke(ctx, tenant, "orch", []string{"mail:send"}, []string{"https://api.acme.example"}, "cli"))
	d = s.CheckTask(tenant, "orch", nil, []string{"https://api.acme.example"})
	require.False(t, d.Allowed, "no grant left: deny")
	rules, err := s.List(ctx, tenant)
	require.NoError(t, err)
	require.Empty(t, rules)
}

func TestTenantRulesNeverApplyToAnotherTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pgtest.Open(t)
	a, b := newTenant(t, db), newTenant(t, db)
	newClient(t, db, a, "orch", "orchestrator")
	newClient(t, db, b, "orch", "orchestrator")
	s := newService(t, db)

	require.NoError(t, s.Grant(ctx, a, "orch", []string{"*"}, []string{"https://api.a.example"}, "cli"))
	require.True(t, s.CheckTask(a, "orch", []string{"anything"}, []string{"https://api.a.example"}).Allowed)
	d := s.CheckTask(b, "orch", []string{"anything"}, []string{"https://api.a.example"})
	require.False(t, d.Allowed, "same client id, other tenant")
	require.Empty(t, d.Closest)

	require.NoError(t, s.Grant(ctx, b, "orch", []string{"b:read"}, nil, "cli"))
	d = s.CheckTask(b, "orch", []string{"anything"}, nil)
	require.False(t, d.Allowed, "B's client holds B's grant only")
	require.Equal(t, "p, client:orch, "+b.String()+", b:read, scope", d.Closest)
	require.False(t, s.CheckTask(b, "orch", nil, []string{"https://api.a.example"}).Allowed)
	require.True(t, s.CheckTask(a, "orch", []string{"b:read", "a:x"}, []string{"https://api.a.example"}).Allowed,
		"A's grants are unchanged by B's")

	listA, err := s.List(ctx, a)
	require.NoError(t, err)
	require.Len(t, listA, 2)
	listB, err := s.List(ctx, b)
	require.NoError(t, err)
	require.Len(t, listB, 1)
	require.Equal(t, "b:read", listB[0].Pattern)

	// A grant cannot name another tenant's client.
	newClient(t, db, a, "only-a", "orchestrator")
	require.ErrorIs(t, s.Grant(ctx, b, "only-a", []string{"x"}, nil, "cli"), fault.ErrNotFound)
}

func TestChangeOnOneReplicaIsEnforcedByAnother(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db1, dbURL := pgtest.Open(t)
	db2, err := pgstore.Open(ctx, dbURL, pgstore.Options{MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(db2.Close)
	tenant := newTenant(t, db1)
	newClient(t, db1, tenant, "orch", "orchestrator")
	r1, r2 := newService(t, db1), newService(t, db2)

	// Latency is measured from the start of the change on one replica to
	// the first check on the other that sees it.
	start := time.Now()
	require.NoError(t, r1.Grant(ctx, tenant, "orch", []string{"tickets:*"}, []string{"https://api.acme.example"}, "cli"))
	within(t, time.Second, func() bool {
		return r2.CheckTask(tenant, "orch", []string{"tickets:read"}, []string{"https://api.acme.example"}).Allowed
	})
	granted := time.Since(start)
	start = time.Now()
	require.NoError(t, r2.Revoke(ctx, tenant, "orch", []string{"tickets:*"}, nil, "cli"))
	within(t, time.Second, func() bool {
		return !r1.CheckTask(tenant, "orch", []string{"tickets:read"}, nil).Allowed
	})
	revoked := time.Since(start)
	require.Less(t, granted, time.Second)
	require.Less(t, revoked, time.Second)
	t.Logf("replica propagation (change started on one replica → enforced by the other): grant %s, revoke %s", granted, revoked)

	// A replica started now loads every tenant's rules.
	other := newTenant(t, db1)
	newClient(t, db1, other, "orch", "orchestrator")
	require.NoError(t, r1.Grant(ctx, other, "orch", []string{"o:*"}, nil, "cli"))
	r3 := newService(t, db2)
	require.True(t, r3.CheckTask(other, "orch", []string{"o:x"}, nil).Allowed)
	require.True(t, r3.CheckTask(tenant, "orch", nil, []string{"https://api.acme.example"}).Allowed)
	require.False(t, r3.CheckTask(tenant, "orch", []string{"tickets:read"}, nil).Allowed)
}

func TestWatcherConvergesAfterItsConnectionIsKilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db1, dbURL := pgtest.Open(t)
	db2, err := pgstore.Open(ctx, dbURL, pgstore.Options{MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(db2.Close)
	tenant := newTenant(t, db1)
	newClient(t, db1, tenant, "orch", "orchestrator")
	r1, r2 := newService(t, db1), newService(t, db2)

	// Hold r2's reconnection until r1 has changed the policy, so the
	// notification is certainly lost and only the reload after reconnecting
	// can bring the change.
	disconnected, release := make(chan struct{}), make(chan struct{})
	r2.HoldReconnects(func(ctx context.Context) {
		close(disconnected)
		select {
		case <-release:
		case <-ctx.Done():
		}
	})
	admin, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer admin.Close(ctx)
	pid := r2.WatcherPID()
	var killed bool
	require.NoError(t, admin.QueryRow(ctx, "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&killed))
	require.True(t, killed)
	select {
	case <-disconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not notice its connection was killed")
	}

	require.NoError(t, r1.Grant(ctx, tenant, "orch", []string{"tickets:*"}, nil, "cli"))
	require.True(t, r1.CheckTask(tenant, "orch", []string{"tickets:read"}, nil).Allowed)
	require.False(t, r2.CheckTask(tenant, "orch", []string{"tickets:read"}, nil).Allowed, "r2 is deaf for now")

	close(release)
	took := within(t, 5*time.Second, func() bool {
		return r2.CheckTask(tenant, "orch", []string{"tickets:read"}, nil).Allowed
	})
	t.Logf("converged %s after the watcher was allowed to reconnect", took)
	require.EqualValues(t, 1, r2.WatcherReconnects())
	require.NotEqual(t, pid, r2.WatcherPID())

	// And it listens again.
	require.NoError(t, r1.Revoke(ctx, tenant, "orch", []string{"tickets:*"}, nil, "cli"))
	within(t, time.Second, func() bool {
		return !r2.CheckTask(tenant, "orch", []string{"tickets:read"}, nil).Allowed
	})
}

func TestEveryChangeIsAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pgtest.Open(t)
	tenant := newTenant(t, db)
	newClient(t, db, tenant, "orch", "orchestrator")
	s := newService(t, db)

	require.NoError(t, s.Grant(ctx, tenant, "orch", []string{"tickets:*"}, []string{"https://api.acme.example"}, "cli"))
	require.NoError(t, s.Revoke(ctx, tenant, "orch", nil, []string{"https://api.acme.example"}, "console:u1"))
	require.Error(t, s.Revoke(ctx, tenant, "orch", []string{"nope"}, nil, "cli"), "a refused change")
	require.Error(t, s.Grant(ctx, tenant, "ghost", []string{"x"}, nil, "cli"), "a refused change")
	require.NoError(t, s.AssignRole(ctx, tenant, "u-42", policy.RoleAuditor, "cli"))
	require.NoError(t, s.RevokeRole(ctx, tenant, "u-42", policy.RoleAuditor, "cli"))

	type event struct {
		Type, Actor string
		ClientID    *string
		Detail      map[string]any
		At          time.Time
	}
	var events []event
	require.NoError(t, db.InTenantTx(ctx, tenant, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT type, actor, client_id, detail, occurred_at FROM audit_events ORDER BY xid, id`)
		if err != nil {
			return err
		}
		events, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (event, error) {
			var e event
			var detail []byte
			err := r.Scan(&e.Type, &e.Actor, &e.ClientID, &detail, &e.At)
			if err == nil {
				err = json.Unmarshal(detail, &e.Detail)
			}
			return e, err
		})
		return err
	}))
	require.Len(t, events, 4, "one event per change, none for refused ones")
	require.Equal(t, "policy.granted", events[0].Type)
	require.Equal(t, "cli", events[0].Actor)
	require.Equal(t, "orch", *events[0].ClientID)
	require.Equal(t, []any{"tickets:*"}, events[0].Detail["scopes"])
	require.Equal(t, []any{"https://api.acme.example"}, events[0].Detail["audiences"])
	require.True(t, events[0].At.Equal(t0))
	require.Equal(t, "policy.revoked", events[1].Type)
	require.Equal(t, "console:u1", events[1].Actor)
	require.Equal(t, []any{"https://api.acme.example"}, events[1].Detail["audiences"])
	require.Equal(t, "policy.granted", events[2].Type)
	require.Equal(t, "u-42", events[2].Detail["user"])
	require.Equal(t, "auditor", events[2].Detail["role"])
	require.Equal(t, "policy.revoked", events[3].Type)
}

func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pgtest.Open(t)
	tenant := newTenant(t, db)
	newClient(t, db, tenant, "orch", "orchestrator")
	newClient(t, db, tenant, "rs", "resource-server")
	s := newService(t, db)

	for _, p := range []string{"", "tick*ets", "*x", "a b", `a"b`, `a\b`, "é", strings.Repeat("a", 129), "a\tb"} {
		err := s.Grant(ctx, tenant, "orch", []string{p}, nil, "cli")
		require.ErrorIs(t, err, fault.ErrInvalid, "pattern %q", p)
	}
	require.NoError(t, s.Grant(ctx, tenant, "orch", []string{strings.Repeat("a", 127) + "*"}, nil, "cli"))
	for _, a := range []string{"", "api.acme.example", "/v1", "ftp://acme.example", "https://", "https://acme.example/#x",
		"https://acme.example/*", "https://acme example", "urn:acme:api", "https://acme.example/" + strings.Repeat("a", 512)} {
		err := s.Grant(ctx, tenant, "orch", nil, []string{a}, "cli")
		require.ErrorIs(t, err, fault.ErrInvalid, "audience %q", a)
	}
	require.NoError(t, s.Grant(ctx, tenant, "orch", nil, []string{"http://localhost:8081/mcp?x=1"}, "cli"))

	err := s.Grant(ctx, tenant, "nobody", []string{"x"}, nil, "cli")
	require.ErrorIs(t, err, fault.ErrNotFound)
	require.Equal(t, "no such client", fault.Message(err))
	require.ErrorIs(t, s.Grant(ctx, tenant, "Not A Client!", []string{"x"}, nil, "cli"), fault.ErrNotFound)
	require.ErrorIs(t, s.Grant(ctx, uuid.New(), "orch", []string{"x"}, nil, "cli"), fault.ErrNotFound, "unknown tenant")
	require.ErrorIs(t, s.Grant(ctx, tenant, "rs", []string{"x"}, nil, "cli"), fault.ErrInvalid, "not an orchestrator")
	require.ErrorIs(t, s.Grant(ctx, tenant, "orch", nil, nil, "cli"), fault.ErrInvalid, "nothing to grant")
	require.ErrorIs(t, s.Grant(ctx, tenant, "orch", []string{"x", "y y"}, nil, "cli"), fault.ErrInvalid)
	require.Error(t, s.Grant(ctx, tenant, "orch", []string{"x"}, nil, ""), "an actor is required")

	rules, err := s.List(ctx, tenant)
	require.NoError(t, err)
	require.Len(t, rules, 2, "only the two valid grants")
	require.False(t, s.CheckTask(tenant, "orch", []string{"x"}, nil).Allowed)

	// Granting twice is harmless.
	require.NoError(t, s.Grant(ctx, tenant, "orch", []string{"x", "x"}, nil, "cli"))
	require.NoError(t, s.Grant(ctx, tenant, "orch", []string{"x"}, nil, "cli"))
	rules, err = s.List(ctx, tenant)
	require.NoError(t, err)
	require.Len(t, rules, 3)
	require.Equal(t, policy.Rule{ClientID: "orch", Action: policy.ActScope, Pattern: "x", GrantedAt: t0, GrantedBy: "cli"},
		normalizeRule(rules[1]), "scopes first, then audiences")
}

func normalizeRule(r policy.Rule) policy.Rule {
	r.GrantedAt = r.GrantedAt.UTC()
	return r
}

func TestConsoleRoles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, dbURL := pgtest.Open(t)
	a, b := newTenant(t, db), newTenant(t, db)
	s := newService(t, db)

	require.False(t, s.HasRole(a, "u-1", policy.RoleAdmin))
	require.NoError(t, s.AssignRole(ctx, a, "u-1", policy.RoleAdmin, "cli"))
	require.True(t, s.HasRole(a, "u-1", policy.RoleAdmin))
	require.False(t, s.HasRole(a, "u-1", policy.RoleViewer), "roles are distinct")
	require.False(t, s.HasRole(b, "u-1", policy.RoleAdmin), "and per tenant")

	// A role does not leak into client checks, even under a colliding name.
	newClient(t, db, a, "admin", "orchestrator")
	require.NoError(t, s.Grant(ctx, a, "admin", []string{"*"}, nil, "cli"))
	newClient(t, db, a, "u-1", "orchestrator")
	require.False(t, s.CheckTask(a, "u-1", []string{"x"}, nil).Allowed)

	// Another replica sees roles too.
	db2, err := pgstore.Open(ctx, dbURL, pgstore.Options{MaxConns: 2})
	require.NoError(t, err)
	t.Cleanup(db2.Close)
	r2 := newService(t, db2)
	require.True(t, r2.HasRole(a, "u-1", policy.RoleAdmin))

	require.ErrorIs(t, s.AssignRole(ctx, a, "alice@acme.example", policy.RoleViewer, "cli"), fault.ErrInvalid,
		"an e-mail address is not an id")
	require.ErrorIs(t, s.AssignRole(ctx, a, "u-1", policy.Role("root"), "cli"), fault.ErrInvalid)
	require.ErrorIs(t, s.RevokeRole(ctx, a, "u-1", policy.RoleViewer, "cli"), fault.ErrNotFound)
	require.NoError(t, s.RevokeRole(ctx, a, "u-1", policy.RoleAdmin, "cli"))
	require.False(t, s.HasRole(a, "u-1", policy.RoleAdmin))
	within(t, time.Second, func() bool { return !r2.HasRole(a, "u-1", policy.RoleAdmin) })
}

func TestAdapterLoadsOneTenantAndRefusesWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pgtest.Open(t)
	a, b := newTenant(t, db), newTenant(t, db)
	newClient(t, db, a, "orch", "orchestrator")
	newClient(t, db, b, "orch", "orchestrator")
	s := newService(t, db)
	require.NoError(t, s.Grant(ctx, a, "orch", []string{"a:*"}, nil, "cli"))
	require.NoError(t, s.Grant(ctx, b, "orch", []string{"b:*"}, nil, "cli"))

	m, err := model.NewModelFromString(`
[request_definition]
r = sub, dom, obj, act
[policy_definition]
p = sub, dom, obj, act
[role_definition]
g = _, _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && keyMatch(r.obj, p.obj) && r.act == p.act`)
	require.NoError(t, err)
	e, err := casbin.NewEnforcer(m, policy.NewAdapter(db, a))
	require.NoError(t, err)
	lines, err := e.GetPolicy()
	require.NoError(t, err)
	require.Equal(t, [][]string{{"client:orch", a.String(), "a:*", "scope"}}, lines, "only tenant A's rules")
	ok, err := e.Enforce("client:orch", a.String(), "a:read", "scope")
	require.NoError(t, err)
	require.True(t, ok)

	_, err = e.AddPolicy("client:orch", a.String(), "c:*", "scope")
	require.ErrorIs(t, err, policy.ErrReadOnly)
	require.ErrorIs(t, e.SavePolicy(), policy.ErrReadOnly)
}

func TestChecksRunConcurrentlyWithChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pgtest.Open(t)
	tenant := newTenant(t, db)
	newClient(t, db, tenant, "orch", "orchestrator")
	s := newService(t, db)
	require.NoError(t, s.Grant(ctx, tenant, "orch", []string{"base:*"}, nil, "cli"))
	require.NoError(t, s.AssignRole(ctx, tenant, "u-1", policy.RoleViewer, "cli"))

	stop := make(chan struct{})
	errs := make(chan string, 4)
	for g := range 4 {
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					errs <- ""
					return
				default:
				}
				// Ever new scopes: the enforcer itself answers, concurrently.
				scope := "base:" + strings.Repeat("x", g) + string(rune('a'+i%26)) + time.Now().Format("150405.000000")
				if !s.CheckTask(tenant, "orch", []string{scope}, nil).Allowed || !s.HasRole(tenant, "u-1", policy.RoleViewer) {
					errs <- "a standing grant was refused during a change of another one"
					return
				}
			}
		}()
	}
	for i := range 20 {
		p := "extra" + string(rune('a'+i)) + ":*"
		require.NoError(t, s.Grant(ctx, tenant, "orch", []string{p}, nil, "cli"))
		require.True(t, s.CheckTask(tenant, "orch", []string{strings.TrimSuffix(p, "*") + "read"}, nil).Allowed)
		require.NoError(t, s.Revoke(ctx, tenant, "orch", []string{p}, nil, "cli"))
	}
	close(stop)
	for range 4 {
		require.Empty(t, <-errs)
	}
}
