package web_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/web"
)

// A flood of unauthenticated, failing requests is answered, counted in
// metrics, but recorded (trace + audit event) only within a per-tenant
// budget: it cannot grow the audit trail without bound.
func TestFloodOfBadRequestsIsBudgeted(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	env := chittest.StartWith(t, db, chittest.Options{DenialBudget: web.DenialBudget{PerSecond: 20, Burst: 50}})
	tn := env.NewTenant("acme", nil, nil)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)

	const flood = 600
	start := time.Now()
	var wg sync.WaitGroup
	statuses := make(chan int, flood)
	for w := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < flood; i += 24 {
				resp := tn.Challenge(fmt.Sprintf("chl_forged-%d", i), pub)
				statuses <- resp.Status
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(statuses)
	for s := range statuses {
		require.Equal(t, http.StatusUnauthorized, s, "every forged launch token is refused")
	}

	var denials, events int
	err := env.DB.InTenantTx(context.Background(), tn.T.ID, func(tx pgx.Tx) error {
		if err := tx.QueryRow(context.Background(), `SELECT count(*) FROM denials`).Scan(&denials); err != nil {
			return err
		}
		return tx.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE type = 'request.denied'`).Scan(&events)
	})
	require.NoError(t, err)
	budget := 50 + int(20*elapsed.Seconds()) + 1
	require.LessOrEqual(t, denials, budget, "recorded denials stay within the budget")
	require.Less(t, denials, flood)
	require.Equal(t, denials, events, "each recorded denial has its audit event")

	resp, err := http.Get(env.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^chit_denials_unrecorded_total (\d+)`).FindSubmatch(body)
	require.NotNil(t, m, "the unrecorded refusals are counted")
	unrecorded, _ := strconv.Atoi(string(m[1]))
	require.Equal(t, flood-denials, unrecorded)
	require.Contains(t, string(body), fmt.Sprintf(`chit_denials_total{check="signature"} %d`, flood))
}
