package policy_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/tenants/policy"
)

func TestClientAccessRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pgtest.Open(t)
	a, b := newTenant(t, db), newTenant(t, db)
	newClient(t, db, a, "rs", "resource-server")
	newClient(t, db, a, "orch", "orchestrator")
	newClient(t, db, b, "rs", "resource-server")
	s := newService(t, db)
	replica := newService(t, db)

	require.False(t, s.CheckClient(a, "rs", policy.ActIntrospect).Allowed, "no rule: deny")
	// What client creation does, in its own transaction.
	require.NoError(t, db.InTenantTx(ctx, a, func(tx pgx.Tx) error {
		return policy.GrantDefaultsTx(ctx, tx, a, "rs", "resource-server", "test", t0)
	}))
	within(t, time.Second, func() bool { return replica.CheckClient(a, "rs", policy.ActIntrospect).Allowed })
	s.Refresh(ctx, a)
	d := s.CheckClient(a, "rs", policy.ActFeed)
	require.True(t, d.Allowed)
	require.Equal(t, "p, client:rs, "+a.String()+", *, feed", d.Rule)
	require.False(t, s.CheckClient(b, "rs", policy.ActIntrospect).Allowed, "tenant A's rules never apply to tenant B")

	require.NoError(t, s.RevokeAccess(ctx, a, "rs", []policy.Action{policy.ActIntrospect}, "test"))
	d = s.CheckClient(a, "rs", policy.ActIntrospect)
	require.False(t, d.Allowed)
	require.Equal(t, policy.CheckPolicy, d.Check)
	require.Equal(t, "p, client:rs, "+a.String()+", *, introspect", d.MissingRule)
	require.Equal(t, "p, client:rs, "+a.String()+", *, feed", d.Closest)
	within(t, time.Second, func() bool { return !replica.CheckClient(a, "rs", policy.ActIntrospect).Allowed })

	err := s.RevokeAccess(ctx, a, "rs", []policy.Action{policy.ActIntrospect}, "test")
	require.Equal(t, fault.NotFound, fault.KindOf(err))
	err = s.GrantAccess(ctx, a, "orch", []policy.Action{policy.ActIntrospect}, "test")
	require.Equal(t, fault.Invalid, fault.KindOf(err))
	require.NoError(t, s.GrantAccess(ctx, a, "rs", []policy.Action{policy.ActIntrospect}, "test"))
	require.True(t, s.CheckClient(a, "rs", policy.ActIntrospect).Allowed)
}

func TestCaps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pgtest.Open(t)
	a, b := newTenant(t, db), newTenant(t, db)
	newClient(t, db, a, "orch", "orchestrator")
	newClient(t, db, b, "orch", "orchestrator")
	newClient(t, db, a, "rs", "resource-server")
	s := newService(t, db)
	require.NoError(t, s.Grant(ctx, a, "orch", []string{"tickets:*"}, nil, "test"))

	require.Equal(t, policy.Caps{}, s.CheckTask(a, "orch", nil, nil).Caps)
	require.NoError(t, s.SetCaps(ctx, a, "orch", time.Hour, 2, "test"))
	d := s.CheckTask(a, "orch", []string{"tickets:read"}, nil)
	require.True(t, d.Allowed)
	require.Equal(t, time.Hour, d.Caps.MaxTaskTTL)
	require.Equal(t, "p, client:orch, "+a.String()+", 3600, max_task_ttl", d.Caps.MaxTaskTTLRule)
	require.Equal(t, 2, d.Caps.MaxDepth)
	require.Equal(t, 2, s.CheckTask(a, "orch", []string{"nope"}, nil).Caps.MaxDepth, "caps are reported on a denial too")
	require.Equal(t, policy.Caps{}, s.CheckTask(b, "orch", nil, nil).Caps, "tenant A's caps never apply to tenant B")

	// A new cap replaces the old one.
	require.NoError(t, s.SetCaps(ctx, a, "orch", 0, 3, "test"))
	d = s.CheckTask(a, "orch", nil, nil)
	require.Equal(t, 3, d.Caps.MaxDepth)
	require.Equal(t, time.Hour, d.Caps.MaxTaskTTL)
	rules, err := s.List(ctx, a)
	require.NoError(t, err)
	require.Len(t, rules, 3)

	require.Equal(t, fault.Invalid, fault.KindOf(s.SetCaps(ctx, a, "rs", time.Hour, 0, "test")))
	require.Equal(t, fault.Invalid, fault.KindOf(s.SetCaps(ctx, a, "orch", time.Millisecond, 0, "test")))
	require.Equal(t, fault.Invalid, fault.KindOf(s.SetCaps(ctx, a, "orch", 0, -1, "test")))
	require.NoError(t, s.ClearCaps(ctx, a, "orch", true, true, "test"))
	require.Equal(t, policy.Caps{}, s.CheckTask(a, "orch", nil, nil).Caps)
	require.Equal(t, fault.NotFound, fault.KindOf(s.ClearCaps(ctx, a, "orch", false, true, "test")))
	require.True(t, s.CheckTask(a, "orch", []string{"tickets:read"}, nil).Allowed, "grants stay")
}
