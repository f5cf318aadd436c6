package oauth

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/tenants"
)

type revocation struct {
	ID      uuid.UUID
	Level   string
	Target  string
	TaskID  uuid.UUID
	AgentID uuid.UUID
	Reason  string // free text: in the feed, only hashed in the audit trail
	Code    string // why, as a fixed word: renewed, rfc7009, task_completed, liveness, requested
	By      string
	Count   int
	At      time.Time
	Detail  map[string]any // identifiers only
}

// recordRevocation appends the revocation to the feed (ordered by cursor)
// and its audit event. Deliberately no NOTIFY inside the transaction:
// PostgreSQL serialises the commits of notifying transactions, WAL flush
// included, which would cap renewals at one per fsync. Replicas follow the
// feed by cursor; a wake-up hint, if any, is sent after commit.
func (s *Service) recordRevocation(ctx context.Context, tx pgx.Tx, t *tenants.Tenant, r revocation) error {
	var b pgx.Batch
	if err := queueRevocation(&b, t, r); err != nil {
		return err
	}
	return tx.SendBatch(ctx, &b).Close()
}

// queueRevocation queues the feed row and the audit event of r on b.
func queueRevocation(b *pgx.Batch, t *tenants.Tenant, r revocation) error {
	b.Queue(`INSERT INTO revocations (tenant_id, id, level, target, task_id, reason, revoked_by, revoked_count, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, t.ID, r.ID, r.Level, r.Target, nullID(r.TaskID), r.Reason, r.By, r.Count, r.At)
	detail := map[string]any{"level": r.Level, "target": r.Target, "revoked_count": r.Count, "code": r.Code,
		"reason_sha256": audit.Hash("reason", r.Reason)}
	for k, v := range r.Detail {
		detail[k] = v
	}
	return audit.Queue(b, t.ID, audit.Event{Time: r.At, Type: audit.Revoked, Actor: r.By, TaskID: r.TaskID,
		AgentID: r.AgentID, RevocationID: r.ID, Detail: detail})
}

// RevokeToken is RFC 7009 revocation by the orchestrator that owns the
// token's task (or the client that holds it). An unknown or invalid token
// is not an error (RFC 7009 §2.2); someone else's token is a denial.
func (s *Service) RevokeToken(ctx context.Context, tx pgx.Tx, t *tenants.Tenant, c *Client, raw string) (*Denial, error) {
	claims, d := verifyAccessTokenSignature(raw, s.keyLookup(ctx, tx, t), s.Issuer(t))
	if d != nil {
		return nil, nil
	}
	if claims.ClientID != c.ID {
		d := &Denial{Check: CheckPolicy, Reason: "only the orchestrator owning the token's task may revoke it",
			OAuthError: ErrUnauthorizedClient, Status: http.StatusBadRequest, ClientID: c.ID}
		d.TaskID, _ = uuid.Parse(claims.TaskID)
		return d, nil
	}
	now := s.clock.Now()
	revID := uuid.Must(uuid.NewV7())
	tag, err := tx.Exec(ctx, `UPDATE tokens SET revoked_at = $2, revocation_id = $3 WHERE jti = $1 AND revoked_at IS NULL`,
		jtiOf(claims), now, revID)
	if err != nil || tag.RowsAffected() == 0 {
		return nil, err
	}
	taskID, _ := uuid.Parse(claims.TaskID)
	return nil, s.recordRevocation(ctx, tx, t, revocation{ID: revID, Level: "token", Target: claims.ID, TaskID: taskID,
		Reason: "revoked by its orchestrator (RFC 7009)", Code: "rfc7009", By: "client:" + c.ID, Count: 1, At: now})
}

// CompleteTask ends a task: every credential under it is revoked at once
// and no new exchange is accepted. The orchestrator or the task's root
// agent may complete it.
func (s *Service) CompleteTask(ctx context.Context, t *tenants.Tenant, caller *Caller, taskID uuid.UUID) (*Completion, error) {
	var count int
	done := &Completion{}
	err := s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		task, err := taskTx(ctx, tx, taskID)
		if err != nil {
			return err
		}
		allowed := !caller.IsAgent() && caller.Kind == KindOrchestrator && task.ClientID == caller.ClientID
		if caller.IsAgent() && caller.TaskID == taskID {
			var depth int
			if err := tx.QueryRow(ctx, `SELECT depth FROM agents WHERE id = $1`, caller.AgentID).Scan(&depth); err != nil {
				return err
			}
			allowed = depth == 1
			if !allowed {
				d := apiDenial(http.StatusForbidden, CheckPolicy, "only the orchestrator or the task's root agent completes it")
				d.TaskID, d.AgentID = taskID, caller.AgentID
				return d
			}
		}
		if !allowed {
			return errNotFound("task")
		}
		if task.CompletedAt != nil {
			return fault.New(fault.Conflict, "task is already completed")
		}
		now := s.clock.Now()
		revID := uuid.Must(uuid.NewV7())
		if _, err := tx.Exec(ctx, `UPDATE tasks SET completed_at = $2 WHERE id = $1`, taskID, now); err != nil {
			return err
		}
		// How long the task's credentials were good for, against how long
		// the task took, and how much validity completion cut off.
		var first, last *time.Time
		if err := tx.QueryRow(ctx, `SELECT min(issued_at), max(expires_at) FROM tokens WHERE task_id = $1`, taskID).Scan(&first, &last); err != nil {
			return err
		}
		done.Duration = now.Sub(task.CreatedAt)
		if first != nil && last != nil {
			done.CredentialSpan = last.Sub(*first)
		}
		var leftSeconds float64
		if err := tx.QueryRow(ctx, `WITH cut AS (
				UPDATE tokens SET revoked_at = $2, revocation_id = $3
				WHERE task_id = $1 AND revoked_at IS NULL AND expires_at > $2 RETURNING expires_at)
			SELECT count(*), coalesce(sum(extract(epoch FROM expires_at - $2)), 0)::float8 FROM cut`,
			taskID, now, revID).Scan(&count, &leftSeconds); err != nil {
			return err
		}
		done.TimeLeft = time.Duration(leftSeconds * float64(time.Second))
		if _, err := tx.Exec(ctx, `UPDATE agents SET revoked_at = $2, revocation_id = $3 WHERE task_id = $1 AND revoked_at IS NULL`,
			taskID, now, revID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE launch_tokens SET consumed_at = $2 WHERE task_id = $1 AND consumed_at IS NULL`, taskID, now); err != nil {
			return err
		}
		by := "client:" + caller.ClientID
		if caller.IsAgent() {
			by = "agent:" + caller.AgentID.String()
		}
		if err := audit.Append(ctx, tx, t.ID, audit.Event{Time: now, Type: audit.TaskCompleted, Actor: by, Principal: task.Principal,
			ClientID: task.ClientID, TaskID: taskID, RevocationID: revID, Detail: map[string]any{"revoked_tokens": count}}); err != nil {
			return err
		}
		return s.recordRevocation(ctx, tx, t, revocation{ID: revID, Level: "task", Target: taskID.String(), TaskID: taskID,
			Reason: "task completed", Code: "task_completed", By: by, Count: count, At: now})
	})
	if err != nil {
		return nil, err
	}
	done.Revoked = count
	return done, nil
}

// Completion is what completing a task ended.
type Completion struct {
	Revoked int // tokens revoked
	// Duration is the task's life, creation to completion; CredentialSpan
	// from its first token's issue to its last token's expiry; TimeLeft the
	// validity its live tokens still had when completion revoked them.
	Duration, CredentialSpan, TimeLeft time.Duration
}
