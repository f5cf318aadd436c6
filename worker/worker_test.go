package worker_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/keyring"
	"github.com/chitdev/chit/tenants/policy"
	"github.com/chitdev/chit/worker"
)

const api = "https://api.acme.example"

type testBundle struct {
	env   *chittest.Env
	clock *clock.Manual
	tn    *chittest.Tenant
	orch  string
	deps  worker.Deps
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db, _ := pgtest.Open(t)
	clk := clock.NewManual(time.Now())
	env := chittest.StartWith(t, db, chittest.Options{Clock: clk})
	tn := env.NewTenant("acme", []string{"tickets:*"}, []string{api})
	liveness := 10 * time.Second
	_, err := env.Tenants.Update(context.Background(), "acme", tenants.SettingsChange{Liveness: &liveness})
	require.NoError(t, err)
	return &testBundle{env: env, clock: clk, tn: tn, orch: tn.ClientToken(tn.Orchestrator),
		deps: worker.Deps{DB: db, Keys: env.Keys, Pool: db.Pool, Tenants: env.Tenants, OAuth: env.OAuth, Users: env.Users, Logger: slog.New(slog.DiscardHandler)}}
}

func (b *testBundle) agent(t *testing.T) *chittest.Agent {
	task := b.tn.CreateTask(b.orch, "tickets:read", []string{api})
	a := b.tn.Register(b.tn.LaunchToken(b.orch, task, ""))
	a.Exchange("")
	return a
}

func TestSilentAgentIsRevokedHeartbeatingOneIsNot(t *testing.T) {
	t.Parallel()
	b := setup(t)
	silent, alive := b.agent(t), b.agent(t)

	b.clock.Advance(8 * time.Second)
	resp := b.tn.PostJSON("/v1/agents/"+alive.ID.String()+"/heartbeat", alive.Token, nil)
	require.Equal(t, http.StatusNoContent, resp.Status, string(resp.Body))
	b.clock.Advance(5 * time.Second) // silent: 13 s > 10 s; alive: 5 s

	w := worker.NewLivenessWorker(b.deps)
	require.NoError(t, w.Work(context.Background(), &river.Job[worker.LivenessArgs]{}))

	require.Equal(t, false, b.tn.Introspect(silent.Token)["active"], "a silent agent's token is revoked")
	require.Equal(t, true, b.tn.Introspect(alive.Token)["active"], "a heartbeating agent stays valid")
	resp = b.tn.PostForm("/oauth2/token", silent.ExchangeForm(""))
	require.Equal(t, http.StatusBadRequest, resp.Status, "a revoked agent gets no new token")

	var code, actor string
	err := b.env.DB.InTenantTx(context.Background(), b.tn.T.ID, func(tx pgx.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT detail->>'code', actor FROM audit_events
			WHERE type = 'credential.revoked' AND agent_id = $1`, silent.ID).Scan(&code, &actor)
	})
	require.NoError(t, err)
	require.Equal(t, "liveness", code, "the audit event says why")
	require.Equal(t, "system:liveness", actor)
}

func TestSweepPurgesExpiredStateNotAudit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	task := b.tn.CreateTask(b.orch, "tickets:read", []string{api})
	_ = b.tn.LaunchToken(b.orch, task, "") // never used: expires
	b.agent(t)                             // leaves a used assertion id, a consumed challenge and launch token

	count := func(table string) int {
		var n int
		require.NoError(t, b.env.DB.InTenantTx(ctx, b.tn.T.ID, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n)
		}))
		return n
	}
	email := b.tn.ConsoleUser(policy.RoleViewer)
	_, err := b.env.Users.Login(ctx, email, chittest.ConsolePassword)
	require.NoError(t, err)
	sessions := func() int {
		var n int
		require.NoError(t, b.env.DB.InTx(ctx, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT count(*) FROM console_sessions").Scan(&n)
		}))
		return n
	}
	auditBefore, tokensBefore := count("audit_events"), count("tokens")
	require.Positive(t, count("launch_tokens"))
	require.Positive(t, count("challenges"))
	require.Positive(t, count("used_assertions"))

	b.clock.Advance(3 * time.Minute) // past launch token, challenge and assertion lifetimes
	w := worker.NewSweepWorker(b.deps)
	require.NoError(t, w.Work(ctx, &river.Job[worker.SweepArgs]{}))
	require.Zero(t, count("launch_tokens"))
	require.Zero(t, count("challenges"))
	require.Zero(t, count("used_assertions"))
	require.Equal(t, tokensBefore, count("tokens"), "a token is kept until a day after it expired")
	require.Equal(t, 1, sessions(), "a live console session is kept")
	require.Equal(t, auditBefore, count("audit_events"), "the audit trail is never swept")

	b.clock.Advance(25 * time.Hour)
	require.NoError(t, w.Work(ctx, &river.Job[worker.SweepArgs]{}))
	require.Zero(t, count("tokens"), "a day after expiry, tokens are purged")
	require.Equal(t, 1, sessions(), "a session past its 12 h lifetime is kept a day")
	b.clock.Advance(12 * time.Hour)
	require.NoError(t, w.Work(ctx, &river.Job[worker.SweepArgs]{}))
	require.Zero(t, sessions(), "a day after it expired, a console session is purged")
	require.Equal(t, auditBefore, count("audit_events"))
}

// The River client, as chit serve runs it, works the periodic liveness job
// as the application role.
func TestRiverRunsTheJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	silent := b.agent(t)
	b.clock.Advance(11 * time.Second)

	client, err := worker.New(b.deps)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() { _ = client.Stop(context.Background()) })

	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b.tn.Introspect(silent.Token)["active"] == false {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the liveness job did not revoke the silent agent within 20 s")
}

func TestChainWorkerLinksTheTrail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.agent(t) // several credential operations, each with its event
	ctx := context.Background()
	w := worker.NewChainWorker(b.deps)
	deadline := time.Now().Add(15 * time.Second)
	for {
		require.NoError(t, w.Work(ctx, &river.Job[worker.ChainArgs]{}))
		r, err := audit.Verify(ctx, b.env.DB, b.tn.T.ID)
		require.NoError(t, err)
		require.Nil(t, r.Problem)
		if r.Unchained == 0 {
			require.Positive(t, r.Links)
			return
		}
		require.True(t, time.Now().Before(deadline), "events stayed unchained")
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSealWorkerSignsTheChainHead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.agent(t)
	ctx := context.Background()
	w := worker.NewSealWorker(b.deps)
	deadline := time.Now().Add(15 * time.Second)
	for {
		require.NoError(t, w.Work(ctx, &river.Job[worker.SealArgs]{}))
		var sealed int
		require.NoError(t, b.env.DB.InTenantTx(ctx, b.tn.T.ID, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM audit_checkpoints`).Scan(&sealed)
		}))
		if sealed > 0 {
			keys, err := b.env.Keys.All(ctx, b.tn.T.ID)
			require.NoError(t, err)
			p, err := audit.VerifyCheckpoints(ctx, b.env.DB, b.tn.T.ID, keyring.ByKID(keys))
			require.NoError(t, err)
			require.Nil(t, p)
			return
		}
		require.True(t, time.Now().Before(deadline), "no checkpoint within 15 s")
		time.Sleep(20 * time.Millisecond)
	}
}
