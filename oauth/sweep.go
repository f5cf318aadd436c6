package oauth

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/tenants"
)

// Retention of expired state before it is purged. Audit events are never
// purged here.
const (
	TokenRetention  = 24 * time.Hour
	DenialRetention = 30 * 24 * time.Hour
	SweepBatch      = 1000
	maxSweepBatches = 50 // per table and run: a sweep never holds the database for long
)

// SweepCounts says what one sweep purged.
type SweepCounts struct {
	Challenges, LaunchTokens, Assertions, Tokens, Denials int
}

// SweepExpired purges tenant t's expired challenges, launch tokens,
// assertion ids, long-expired tokens and old denials, in bounded batches.
func (s *Service) SweepExpired(ctx context.Context, t *tenants.Tenant) (SweepCounts, error) {
	now := s.clock.Now()
	var c SweepCounts
	steps := []struct {
		n     *int
		query string
		arg   time.Time
	}{
		{&c.Challenges, `DELETE FROM challenges WHERE ctid IN (SELECT ctid FROM challenges WHERE expires_at < $1 LIMIT $2)`, now},
		{&c.LaunchTokens, `DELETE FROM launch_tokens WHERE ctid IN (SELECT ctid FROM launch_tokens WHERE expires_at < $1 LIMIT $2)`, now},
		{&c.Assertions, `DELETE FROM used_assertions WHERE ctid IN (SELECT ctid FROM used_assertions WHERE expires_at < $1 LIMIT $2)`, now},
		{&c.Tokens, `DELETE FROM tokens WHERE ctid IN (SELECT ctid FROM tokens WHERE expires_at < $1 LIMIT $2)`, now.Add(-TokenRetention)},
		{&c.Denials, `DELETE FROM denials WHERE ctid IN (SELECT ctid FROM denials WHERE occurred_at < $1 LIMIT $2)`, now.Add(-DenialRetention)},
	}
	for _, st := range steps {
		for range maxSweepBatches {
			var n int64
			err := s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, st.query, st.arg, SweepBatch)
				n = tag.RowsAffected()
				return err
			})
			if err != nil {
				return c, err
			}
			*st.n += int(n)
			if n < SweepBatch {
				break
			}
		}
	}
	return c, nil
}

// RevokeSilentAgents revokes every agent of t that has not been heard from
// for the tenant's liveness window, with its tokens, one revocation each.
func (s *Service) RevokeSilentAgents(ctx context.Context, t *tenants.Tenant) (int, error) {
	now := s.clock.Now()
	cutoff := now.Add(-t.Settings.Liveness)
	revoked := 0
	err := s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT a.id, a.task_id, a.last_seen_at FROM agents a
			  JOIN tasks tk ON tk.tenant_id = a.tenant_id AND tk.id = a.task_id
			 WHERE a.revoked_at IS NULL AND a.last_seen_at < $1 AND tk.completed_at IS NULL
			 ORDER BY a.last_seen_at LIMIT $2 FOR UPDATE OF a SKIP LOCKED`, cutoff, SweepBatch)
		if err != nil {
			return err
		}
		type silent struct {
			id, task uuid.UUID
			seen     time.Time
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (silent, error) {
			var x silent
			return x, r.Scan(&x.id, &x.task, &x.seen)
		})
		if err != nil {
			return err
		}
		for _, a := range list {
			revID := uuid.Must(uuid.NewV7())
			if _, err := tx.Exec(ctx, `UPDATE agents SET revoked_at = $2, revocation_id = $3 WHERE id = $1`, a.id, now, revID); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `UPDATE tokens SET revoked_at = $2, revocation_id = $3
				WHERE agent_id = $1 AND revoked_at IS NULL AND expires_at > $2`, a.id, now, revID)
			if err != nil {
				return err
			}
			if err := s.recordRevocation(ctx, tx, t, revocation{ID: revID, Level: "agent", Target: a.id.String(), TaskID: a.task,
				AgentID: a.id, Reason: "no heartbeat for " + t.Settings.Liveness.String(), Code: "liveness", By: "system:liveness",
				Count: int(tag.RowsAffected()), At: now,
				Detail: map[string]any{"last_seen_at": a.seen.UTC(), "liveness_seconds": int(t.Settings.Liveness / time.Second)}}); err != nil {
				return err
			}
			revoked++
		}
		return nil
	})
	return revoked, err
}

// OutstandingIn totals Outstanding over the tenants list returns: the
// gauges' count.
func (s *Service) OutstandingIn(list func(context.Context) ([]*tenants.Tenant, error)) func(context.Context) (int, int, error) {
	return func(ctx context.Context) (agents, tokens int, err error) {
		all, err := list(ctx)
		if err != nil {
			return 0, 0, err
		}
		for _, t := range all {
			a, tk, err := s.Outstanding(ctx, t)
			if err != nil {
				return 0, 0, err
			}
			agents, tokens = agents+a, tokens+tk
		}
		return agents, tokens, nil
	}
}

// Outstanding counts tenant t's live agents and its tokens neither revoked
// nor expired.
func (s *Service) Outstanding(ctx context.Context, t *tenants.Tenant) (agents, tokens int, err error) {
	now := s.clock.Now()
	b := pgstore.NewTenantBatch(t.ID)
	b.Queue(`SELECT count(*) FROM agents a JOIN tasks tk ON tk.tenant_id = a.tenant_id AND tk.id = a.task_id
		WHERE a.revoked_at IS NULL AND tk.completed_at IS NULL`).QueryRow(func(r pgx.Row) error { return r.Scan(&agents) })
	b.Queue(`SELECT count(*) FROM tokens WHERE revoked_at IS NULL AND expires_at > $1`, now).
		QueryRow(func(r pgx.Row) error { return r.Scan(&tokens) })
	err = s.db.SendBatch(ctx, b)
	return agents, tokens, err
}
