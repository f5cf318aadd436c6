package migrations_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/migrations"
)

// Resource servers created before introspection needed a rule keep
// introspecting after the upgrade: 00006 gives them introspect and feed.
func TestPolicyCapsMigrationBackfillsResourceServers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewEmptyDatabase(t))
	require.NoError(t, err)
	defer pool.Close()
	p, err := migrations.NewProvider(pool)
	require.NoError(t, err)
	_, err = p.UpTo(ctx, 5)
	require.NoError(t, err)

	tenant := uuid.New()
	_, err = pool.Exec(ctx, `INSERT INTO tenants (id, slug, trust_domain) VALUES ($1, 'acme', 'acme.example')`, tenant)
	require.NoError(t, err)
	for id, kind := range map[string]string{"rs-old": "resource-server", "orch-old": "orchestrator"} {
		_, err = pool.Exec(ctx, `INSERT INTO clients (tenant_id, id, kind, name, public_key, created_at)
			VALUES ($1, $2, $3, $2, $4, now())`, tenant, id, kind, make([]byte, 32))
		require.NoError(t, err)
	}
	_, err = p.UpTo(ctx, 6)
	require.NoError(t, err)
	rows, err := pool.Query(ctx, `SELECT client_id || ' ' || action FROM policy_grants ORDER BY 1`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		got = append(got, s)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"rs-old feed", "rs-old introspect"}, got)

	// Down removes the caps the older schema cannot hold.
	_, err = pool.Exec(ctx, `INSERT INTO policy_grants (tenant_id, client_id, action, object, granted_at, granted_by)
		VALUES ($1, 'orch-old', 'max_depth', '2', now(), 'test')`, tenant)
	require.NoError(t, err)
	_, err = p.DownTo(ctx, 5)
	require.NoError(t, err)
	var caps int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM policy_grants WHERE action = 'max_depth'`).Scan(&caps))
	require.Zero(t, caps)
}
