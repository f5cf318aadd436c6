// Package worker holds chit's background jobs on River: expiry sweeps,
// agent liveness, linking the audit hash chain and sealing it with signed
// checkpoints. Periodic jobs are scheduled by River's elected leader
// only, so several replicas never sweep twice at once; any replica works them.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/migrations"
	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/keyring"
	"github.com/chitdev/chit/tenants/users"
)

// Intervals of the periodic jobs.
const (
	SweepInterval    = 30 * time.Second
	LivenessInterval = 5 * time.Second
	ChainInterval    = 2 * time.Second
	SealInterval     = 10 * time.Second // SPEC: checkpoints every 10 s by default
)

// Deps are what the jobs work with.
type Deps struct {
	DB      *pgstore.DB
	Keys    *keyring.Keyring // signs checkpoints
	Pool    *pgxpool.Pool
	Tenants *tenants.Service
	OAuth   *oauth.Service
	// Users, when set, has its ended and expired console sessions swept.
	Users  *users.Service
	Logger *slog.Logger
}

// New builds the River client with chit's workers and periodic jobs.
// Start it with Start and stop it with Stop.
func New(d Deps) (*river.Client[pgx.Tx], error) {
	workers := river.NewWorkers()
	river.AddWorker(workers, NewSweepWorker(d))
	river.AddWorker(workers, NewLivenessWorker(d))
	river.AddWorker(workers, NewChainWorker(d))
	river.AddWorker(workers, NewSealWorker(d))
	client, err := river.NewClient[pgx.Tx](riverpgxv5.New(d.Pool), &river.Config{
		Schema:  migrations.RiverSchema,
		Logger:  slog.New(quiet{d.Logger.Handler()}),
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers: workers,
		PeriodicJobs: []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(SweepInterval),
				func() (river.JobArgs, *river.InsertOpts) { return SweepArgs{}, nil },
				&river.PeriodicJobOpts{ID: SweepArgs{}.Kind(), RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(LivenessInterval),
				func() (river.JobArgs, *river.InsertOpts) { return LivenessArgs{}, nil },
				&river.PeriodicJobOpts{ID: LivenessArgs{}.Kind(), RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(ChainInterval),
				func() (river.JobArgs, *river.InsertOpts) { return ChainArgs{}, nil },
				&river.PeriodicJobOpts{ID: ChainArgs{}.Kind(), RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(SealInterval),
				func() (river.JobArgs, *river.InsertOpts) { return SealArgs{}, nil },
				&river.PeriodicJobOpts{ID: SealArgs{}.Kind(), RunOnStart: true}),
		},
		JobTimeout: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return client, nil
}

// SweepArgs: purge expired challenges, launch tokens, assertion ids,
// long-expired tokens and old denials, for every tenant.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "chit.sweep_expired" }

// InsertOpts: one pending sweep at a time is enough.
func (SweepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: SweepInterval}}
}

// SweepWorker works SweepArgs.
type SweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	deps Deps
}

// NewSweepWorker returns the expiry sweep's worker.
func NewSweepWorker(d Deps) *SweepWorker { return &SweepWorker{deps: d} }

// Work sweeps every tenant in bounded batches.
func (w *SweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	if w.deps.Users != nil {
		n, err := w.deps.Users.SweepSessions(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			w.deps.Logger.InfoContext(ctx, "swept console sessions", "sessions", n)
		}
	}
	return forEachTenant(ctx, w.deps, func(t *tenants.Tenant) error {
		c, err := w.deps.OAuth.SweepExpired(ctx, t)
		if err != nil {
			return err
		}
		if c != (oauth.SweepCounts{}) {
			w.deps.Logger.InfoContext(ctx, "swept expired state", "tenant", t.Slug.String(), "challenges", c.Challenges,
				"launch_tokens", c.LaunchTokens, "assertions", c.Assertions, "tokens", c.Tokens, "denials", c.Denials)
		}
		return nil
	})
}

// LivenessArgs: revoke agents silent longer than their tenant's liveness window.
type LivenessArgs struct{}

// Kind implements river.JobArgs.
func (LivenessArgs) Kind() string { return "chit.liveness" }

// InsertOpts: one pending liveness check at a time.
func (LivenessArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: LivenessInterval}}
}

// LivenessWorker works LivenessArgs.
type LivenessWorker struct {
	river.WorkerDefaults[LivenessArgs]
	deps Deps
}

// NewLivenessWorker returns the liveness check's worker.
func NewLivenessWorker(d Deps) *LivenessWorker { return &LivenessWorker{deps: d} }

// Work revokes silent agents of every tenant.
func (w *LivenessWorker) Work(ctx context.Context, _ *river.Job[LivenessArgs]) error {
	return forEachTenant(ctx, w.deps, func(t *tenants.Tenant) error {
		n, err := w.deps.OAuth.RevokeSilentAgents(ctx, t)
		if n > 0 {
			w.deps.Logger.InfoContext(ctx, "revoked silent agents", "tenant", t.Slug.String(), "agents", n)
		}
		return err
	})
}

// ChainArgs: link new audit events into each tenant's hash chain.
type ChainArgs struct{}

// Kind implements river.JobArgs.
func (ChainArgs) Kind() string { return "chit.audit_chain" }

// InsertOpts: one pending chaining at a time.
func (ChainArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: ChainInterval}}
}

// ChainWorker works ChainArgs.
type ChainWorker struct {
	river.WorkerDefaults[ChainArgs]
	deps Deps
}

// NewChainWorker returns the audit chainer's worker.
func NewChainWorker(d Deps) *ChainWorker { return &ChainWorker{deps: d} }

// chainBatch and maxChainBatches bound one run; the next run continues.
const (
	chainBatch      = 5000
	maxChainBatches = 20
)

// Work links every tenant's pending events, in bounded batches.
func (w *ChainWorker) Work(ctx context.Context, _ *river.Job[ChainArgs]) error {
	return forEachTenant(ctx, w.deps, func(t *tenants.Tenant) error {
		for range maxChainBatches {
			n, err := audit.ChainPending(ctx, w.deps.DB, t.ID, clock.System.Now(), chainBatch)
			if err != nil || n < chainBatch {
				return err
			}
		}
		return nil
	})
}

// SealArgs: sign each tenant's chain head (a checkpoint).
type SealArgs struct{}

// Kind implements river.JobArgs.
func (SealArgs) Kind() string { return "chit.audit_seal" }

// InsertOpts: one pending sealing at a time.
func (SealArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: SealInterval}}
}

// SealWorker works SealArgs.
type SealWorker struct {
	river.WorkerDefaults[SealArgs]
	deps Deps
}

// NewSealWorker returns the checkpoint worker.
func NewSealWorker(d Deps) *SealWorker { return &SealWorker{deps: d} }

// Work links what is pending, then seals every tenant's chain head.
func (w *SealWorker) Work(ctx context.Context, _ *river.Job[SealArgs]) error {
	return forEachTenant(ctx, w.deps, func(t *tenants.Tenant) error {
		if _, err := audit.ChainPending(ctx, w.deps.DB, t.ID, clock.System.Now(), chainBatch); err != nil {
			return err
		}
		_, err := audit.Seal(ctx, w.deps.DB, w.deps.Keys, t.ID, clock.System.Now())
		return err
	})
}

// forEachTenant runs fn per tenant; one tenant's failure does not stop the others.
func forEachTenant(ctx context.Context, d Deps, fn func(*tenants.Tenant) error) error {
	list, err := d.Tenants.List(ctx)
	if err != nil {
		return err
	}
	var first error
	for _, t := range list {
		if err := fn(t); err != nil {
			d.Logger.ErrorContext(ctx, "background job failed for tenant", "tenant", t.Slug.String(), "error", err)
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// quiet passes on River's warnings and errors only; its routine
// bookkeeping would drown chit's own logs.
type quiet struct{ slog.Handler }

func (q quiet) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && q.Handler.Enabled(ctx, l)
}

func (q quiet) WithAttrs(attrs []slog.Attr) slog.Handler { return quiet{q.Handler.WithAttrs(attrs)} }
func (q quiet) WithGroup(name string) slog.Handler       { return quiet{q.Handler.WithGroup(name)} }
