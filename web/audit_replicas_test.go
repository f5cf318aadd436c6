package web_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/tenants"
)

// Several goroutines on two replicas issue credentials (each an audit event
// in its own transaction) while both replicas chain: one valid chain per
// tenant, every event linked once, no gap.
func TestTwoReplicasAppendOneValidChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	one := chittest.Start(t)
	two := chittest.StartWith(t, one.DB, chittest.Options{BaseURL: one.URL})
	tn := one.NewTenant("acme", []string{"tickets:*"}, []string{api})
	renewals := 100
	_, err := one.Tenants.Update(ctx, "acme", tenants.SettingsChange{MaxRenewals: &renewals})
	require.NoError(t, err)
	orch := tn.ClientToken(tn.Orchestrator)
	task := tn.CreateTask(orch, "tickets:read", []string{api})

	// The same tenant seen through replica two (same issuer, other address).
	viaTwo := *tn
	envTwo := *two
	envTwo.URL = one.URL
	viaTwo.Env = &envTwo
	viaTwo.Issuer = two.Addr + "/t/acme"

	stop := make(chan struct{})
	var chainers sync.WaitGroup
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
				_, err := audit.ChainPending(ctx, one.DB, tn.T.ID, time.Now(), 50)
				require.NoError(t, err)
			}
		}()
	}
	var writers sync.WaitGroup
	for i := range 6 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			via := tn
			if i%2 == 1 {
				via = &viaTwo
			}
			a := tn.Register(tn.LaunchToken(orch, task, ""))
			a.Tenant = via // exchanges go to this replica
			for range 8 {
				resp := via.PostForm("/oauth2/token", a.ExchangeForm(""))
				require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
			}
		}()
	}
	writers.Wait()
	close(stop)
	chainers.Wait()

	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := audit.ChainPending(ctx, one.DB, tn.T.ID, time.Now(), 1000)
		require.NoError(t, err)
		r, err := audit.Verify(ctx, one.DB, tn.T.ID)
		require.NoError(t, err)
		require.Nil(t, r.Problem)
		if r.Unchained == 0 {
			var events int
			require.NoError(t, one.DB.InTenantTx(ctx, tn.T.ID, func(tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM audit_events`).Scan(&events)
			}))
			require.EqualValues(t, events, r.Links, "every event linked exactly once")
			return
		}
		require.True(t, time.Now().Before(deadline), "events stayed unchained")
		time.Sleep(20 * time.Millisecond)
	}
}
