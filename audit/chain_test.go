package audit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/internal/pgtest"
)

func newTenant(t *testing.T, db *pgstore.DB, slug string) uuid.UUID {
	t.Helper()
	id := uuid.New()
	require.NoError(t, db.InTenantTx(context.Background(), id, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `INSERT INTO tenants (id, slug, trust_domain) VALUES ($1, $2, $2 || '.example')`, id, slug)
		return err
	}))
	return id
}

func appendEvents(t *testing.T, db *pgstore.DB, tenant uuid.UUID, n int) {
	t.Helper()
	for i := range n {
		require.NoError(t, db.InTenantTx(context.Background(), tenant, func(tx pgx.Tx) error {
			return audit.Append(context.Background(), tx, tenant, audit.Event{Time: time.Now(), Type: audit.TokenIssued,
				Actor: "agent:test", TokenID: uuid.New(), Detail: map[string]any{"n": i, "scope": "a b", "big": 12345678901234567}})
		}))
	}
}

// chainAll links every event. Transactions anywhere in the cluster (other
// tests) can hold the horizon back for a moment, so it waits, bounded.
func chainAll(t *testing.T, db *pgstore.DB, tenant uuid.UUID) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := audit.ChainPending(context.Background(), db, tenant, time.Now(), 500); err != nil {
			t.Fatal(err)
		}
		r, err := audit.Verify(context.Background(), db, tenant)
		require.NoError(t, err)
		if r.Unchained == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("events stayed unchained for 15 s")
}

// Several writers and two chainers (as two replicas would run) leave one
// valid chain per tenant, with no gap and nothing left out.
func TestConcurrentAppendsMakeOneValidChain(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	ctx := context.Background()
	a, b := newTenant(t, db, "tenant-a"), newTenant(t, db, "tenant-b")

	var writers, chainers sync.WaitGroup
	stop := make(chan struct{})
	for _, tenant := range []uuid.UUID{a, b} {
		for range 4 {
			writers.Add(1)
			go func() {
				defer writers.Done()
				appendEvents(t, db, tenant, 40)
			}()
		}
		for range 2 {
			chainers.Add(1)
			go func() {
				defer chainers.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, err := audit.ChainPending(ctx, db, tenant, time.Now(), 50)
					require.NoError(t, err)
				}
			}()
		}
	}
	writers.Wait()
	close(stop)
	chainers.Wait()

	for _, tenant := range []uuid.UUID{a, b} {
		chainAll(t, db, tenant)
		r, err := audit.Verify(ctx, db, tenant)
		require.NoError(t, err)
		require.Nil(t, r.Problem)
		require.EqualValues(t, 160, r.Links, "every event linked once")
		require.Zero(t, r.Unchained)
	}
}

func TestTamperingIsDetected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name, sql, want string
	}{
		{"edit", `UPDATE audit_events SET actor = 'agent:someone-else' WHERE id = (SELECT event_id FROM audit_chain WHERE seq = 3)`, "edited"},
		{"delete", `DELETE FROM audit_events WHERE id = (SELECT event_id FROM audit_chain WHERE seq = 4)`, "deleted"},
		{"drop a link", `DELETE FROM audit_chain WHERE seq = 2`, "link missing"},
		{"reorder", `UPDATE audit_chain SET seq = 1000 WHERE seq = 2; UPDATE audit_chain SET seq = 2 WHERE seq = 3;
			UPDATE audit_chain SET seq = 3 WHERE seq = 1000`, "does not follow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, ownerURL := pgtest.Open(t)
			tenant := newTenant(t, db, "acme")
			appendEvents(t, db, tenant, 6)
			chainAll(t, db, tenant)
			r, err := audit.Verify(ctx, db, tenant)
			require.NoError(t, err)
			require.Nil(t, r.Problem)

			// A superuser bypassing the append-only triggers.
			su, err := pgx.Connect(ctx, ownerURL)
			require.NoError(t, err)
			defer su.Close(ctx)
			_, err = su.Exec(ctx, `SET session_replication_role = replica`)
			require.NoError(t, err)
			tag, err := su.Exec(ctx, tc.sql)
			require.NoError(t, err)
			require.Positive(t, tag.RowsAffected(), "the tamper changed something")

			r, err = audit.Verify(ctx, db, tenant)
			require.NoError(t, err)
			require.NotNil(t, r.Problem, "tampering must be detected")
			require.Contains(t, r.Problem.What, tc.want)
		})
	}
}

func TestAppRoleCannotChangeTheTrail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, ownerURL := pgtest.Open(t)
	tenant := newTenant(t, db, "acme")
	appendEvents(t, db, tenant, 2)
	chainAll(t, db, tenant)
	for _, sql := range []string{
		`UPDATE audit_events SET actor = 'x'`, `DELETE FROM audit_events`, `TRUNCATE audit_events`,
		`UPDATE audit_chain SET hash = prev_hash`, `DELETE FROM audit_chain`,
	} {
		err := db.InTenantTx(ctx, tenant, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql)
			return err
		})
		require.Equal(t, fault.Forbidden, fault.KindOf(err), sql)
	}
	// The triggers refuse even the owner.
	owner, err := pgx.Connect(ctx, ownerURL)
	require.NoError(t, err)
	defer owner.Close(ctx)
	_, err = owner.Exec(ctx, `DELETE FROM audit_events`)
	require.ErrorContains(t, err, "append-only")
}
