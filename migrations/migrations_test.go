package migrations_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/migrations"
)

func TestConcurrentMigrateRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewEmptyDatabase(t)

	const replicas = 4
	results := make([]*migrations.Result, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(ctx, dbURL)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			results[i], errs[i] = migrations.Up(ctx, pool, nil)
		}()
	}
	wg.Wait()

	applied, riverApplied := 0, 0
	for i := range replicas {
		require.NoError(t, errs[i], "replica %d", i)
		require.Equal(t, migrations.Latest(), results[i].Version)
		applied += len(results[i].Applied)
		riverApplied += len(results[i].RiverApplied)
	}
	require.EqualValues(t, migrations.Latest(), applied, "each migration applied exactly once across all runs")
	require.Positive(t, riverApplied)

	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	var versions, distinct int
	require.NoError(t, pool.QueryRow(ctx,
		`SELECT count(*), count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`).Scan(&versions, &distinct))
	require.Equal(t, versions, distinct, "no migration recorded twice")
	require.EqualValues(t, migrations.Latest(), versions)

	var riverRows, riverDistinct int
	require.NoError(t, pool.QueryRow(ctx,
		`SELECT count(*), count(DISTINCT version) FROM river.river_migration`).Scan(&riverRows, &riverDistinct))
	require.Equal(t, riverRows, riverDistinct)
	require.Equal(t, riverApplied, riverRows)

	pending, err := migrations.Pending(ctx, pool)
	require.NoError(t, err)
	require.False(t, pending)

	t.Run("a later run is a no-op", func(t *testing.T) {
		res, err := migrations.Up(ctx, pool, nil)
		require.NoError(t, err)
		require.Empty(t, res.Applied)
		require.Empty(t, res.RiverApplied)
	})
}

func TestPendingOnEmptyDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewEmptyDatabase(t))
	require.NoError(t, err)
	defer pool.Close()
	pending, err := migrations.Pending(ctx, pool)
	require.Error(t, err, "an unmigrated database has no version table")
	require.True(t, pending)
}

func TestFingerprintIsStable(t *testing.T) {
	t.Parallel()
	require.Equal(t, migrations.Fingerprint(), migrations.Fingerprint())
	require.Len(t, migrations.Fingerprint(), 16)
}
