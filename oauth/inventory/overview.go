package inventory

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/oauth"
)

// Overview is the tenant at a glance.
type Overview struct {
	Now time.Time // the instant every count is taken at

	LiveAgents   int // agents holding authority, silent ones included
	SilentAgents int // of those, the ones not heard from for the liveness window
	// ActiveTokens are the tokens a resource server accepts now (agents'
	// and clients' own). Unlike the tokens-outstanding gauge, which counts
	// unrevoked unexpired rows, it leaves out the tokens of agents whose
	// delegation chain was revoked above them.
	ActiveTokens int
	ActiveTasks  int // tasks neither completed nor past their deadline

	CompletedTasks      int // tasks completed in the last 24 h
	DenialsLastHour     int
	RevocationsLastHour int // renewals left out, as in Revocations
	// TopDenialChecks are the checks that refused most in the last hour,
	// most first, at most five.
	TopDenialChecks []CheckCount

	// Completions measures the credentials of the tasks completed in the
	// last 24 h against the tasks' own duration.
	Completions Completions
}

// CheckCount is how many denials one check made.
type CheckCount struct {
	Check oauth.Check
	Count int
}

// Completions compares credential lifetimes with task durations over the
// tasks completed in a window. Tokens are kept oauth.TokenRetention past
// their expiry, so for a task longer than that only its kept tokens count.
type Completions struct {
	// Tasks is how many completed tasks had a token and a nonzero duration.
	Tasks int
	// MedianLifetimeRatio is, over those tasks, the median of
	//
	//	(last expires_at − first issued_at of the task's tokens) / (completed_at − created_at)
	//
	// how long credentials for the task were valid against how long the task
	// ran. Above 1, credentials were issued to outlive the work; completion
	// revoked the excess (TimeLeft). Zero when Tasks is zero.
	MedianLifetimeRatio float64
	// Tokens is how many of the tasks' tokens were still unrevoked when the
	// task completed (a renewed or revoked token had already ended).
	Tokens int
	// TimeLeftTotal and TimeLeftMedian are, over those tokens, the sum and
	// median of max(0, expires_at − completed_at): the validity that
	// completion's revocation cut off, which a stolen copy would otherwise
	// have kept.
	TimeLeftTotal  time.Duration
	TimeLeftMedian time.Duration
}

// Windows of the overview.
const (
	recentWindow     = time.Hour
	completionWindow = 24 * time.Hour
)

const (
	liveTokenSQL = `
	SELECT count(*) FROM tokens t
	  LEFT JOIN agents a ON a.tenant_id = t.tenant_id AND a.id = t.agent_id
	  LEFT JOIN tasks tk ON tk.tenant_id = t.tenant_id AND tk.id = t.task_id
	 WHERE t.revoked_at IS NULL AND t.expires_at > @now AND a.revoked_at IS NULL AND tk.completed_at IS NULL
	   AND NOT EXISTS (SELECT 1 FROM agents p WHERE p.tenant_id = a.tenant_id AND p.id = ANY (a.ancestors)
	                      AND p.revoked_at IS NOT NULL)`

	// completedSQL are the tasks completed in the window.
	completedSQL = `SELECT tk.id, tk.created_at, tk.completed_at FROM tasks tk
	 WHERE tk.completed_at >= @day_ago AND tk.completed_at <= @now`

	lifetimeRatioSQL = `
	WITH done AS (` + completedSQL + `),
	per_task AS (
	  SELECT extract(epoch FROM max(t.expires_at) - min(t.issued_at))::float8
	           / nullif(extract(epoch FROM d.completed_at - d.created_at)::float8, 0) AS ratio
	    FROM done d JOIN tokens t ON t.task_id = d.id AND t.task_id IS NOT NULL
	   GROUP BY d.id, d.created_at, d.completed_at)
	SELECT count(ratio), coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY ratio), 0) FROM per_task`

	timeLeftSQL = `
	WITH done AS (` + completedSQL + `),
	cut AS (
	  SELECT greatest(0, extract(epoch FROM t.expires_at - d.completed_at)::float8) AS left_s
	    FROM done d JOIN tokens t ON t.task_id = d.id AND t.task_id IS NOT NULL
	   WHERE t.revoked_at IS NULL OR t.revoked_at >= d.completed_at)
	SELECT count(*), coalesce(sum(left_s), 0), coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY left_s), 0) FROM cut`
)

// overviewQueries are the statements of Overview, in the order Overview reads them.
func overviewQueries(v *tenantView, now time.Time) []query {
	args := statusArgs(v, now)
	args["hour_ago"], args["day_ago"] = now.Add(-recentWindow), now.Add(-completionWindow)
	return []query{
		{`SELECT count(*) FILTER (WHERE a.last_seen_at >= @quiet_before), count(*) FILTER (WHERE a.last_seen_at < @quiet_before)` +
			agentFrom + ` WHERE ` + holdingSQL, args},
		{liveTokenSQL, args},
		{`SELECT count(*) FROM tasks tk WHERE tk.completed_at IS NULL AND tk.deadline > @now AND tk.created_at > @oldest_live`, args},
		{`SELECT count(*) FROM (` + completedSQL + `) done`, args},
		{`SELECT count(*) FROM denials d WHERE d.occurred_at >= @hour_ago`, args},
		{`SELECT d.check_name, count(*) FROM denials d WHERE d.occurred_at >= @hour_ago
			GROUP BY d.check_name ORDER BY count(*) DESC, d.check_name LIMIT 5`, args},
		{`SELECT count(*) FROM revocations r WHERE ` + listedRevocationSQL + ` AND r.revoked_at >= @hour_ago`, args},
		{lifetimeRatioSQL, args},
		{timeLeftSQL, args},
	}
}

// Overview counts what the tenant has out now and what happened lately.
func (s *Service) Overview(ctx context.Context, tenantID uuid.UUID) (Overview, error) {
	now := s.clock.Now()
	o := Overview{Now: now, TopDenialChecks: []CheckCount{}}
	err := s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		v, err := readTenant(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		qs := overviewQueries(v, now)
		b := &pgx.Batch{}
		for _, q := range qs {
			b.Queue(q.sql, q.args)
		}
		var live int
		var leftTotal, leftMedian float64
		scans := []func(pgx.Row) error{
			func(r pgx.Row) error { return r.Scan(&live, &o.SilentAgents) },
			func(r pgx.Row) error { return r.Scan(&o.ActiveTokens) },
			func(r pgx.Row) error { return r.Scan(&o.ActiveTasks) },
			func(r pgx.Row) error { return r.Scan(&o.CompletedTasks) },
			func(r pgx.Row) error { return r.Scan(&o.DenialsLastHour) },
			nil, // the top checks are rows, read below
			func(r pgx.Row) error { return r.Scan(&o.RevocationsLastHour) },
			func(r pgx.Row) error { return r.Scan(&o.Completions.Tasks, &o.Completions.MedianLifetimeRatio) },
			func(r pgx.Row) error { return r.Scan(&o.Completions.Tokens, &leftTotal, &leftMedian) },
		}
		results := tx.SendBatch(ctx, b)
		defer results.Close()
		for _, scan := range scans {
			if scan != nil {
				if err := scan(results.QueryRow()); err != nil {
					return err
				}
				continue
			}
			rows, err := results.Query()
			if err != nil {
				return err
			}
			top, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CheckCount, error) {
				var c CheckCount
				var check string
				err := r.Scan(&check, &c.Count)
				c.Check = oauth.Check(check)
				return c, err
			})
			if err != nil {
				return err
			}
			o.TopDenialChecks = append(o.TopDenialChecks, top...)
		}
		o.LiveAgents = live + o.SilentAgents
		o.Completions.TimeLeftTotal, o.Completions.TimeLeftMedian = seconds(leftTotal), seconds(leftMedian)
		return results.Close()
	})
	if err != nil {
		return Overview{}, err
	}
	return o, nil
}
