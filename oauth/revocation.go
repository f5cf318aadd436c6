package oauth

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/tenants"
)

// Revocation levels (SPEC §2).
const (
	LevelToken = "token" // one jti
	LevelAgent = "agent" // an agent instance and its tokens
	LevelTask  = "task"  // everything under a task; the task ends
	LevelChain = "chain" // an agent, every descendant, and all their tokens
)

// RevokeParams is the body of POST /v1/revocations.
type RevokeParams struct {
	Level  string `json:"level"`
	Target string `json:"target"`
	Reason string `json:"reason"`
}

// RevocationResult answers a revocation.
type RevocationResult struct {
	ID    uuid.UUID `json:"revocation_id"`
	Count int       `json:"revoked_count"` // tokens and agents revoked by this call
}

// RevokeLevel revokes at one of the four levels for an orchestrator, which
// may revoke what lives under its own tasks (and its own tokens); anything
// else does not exist for it. The revocation is durable before it answers.
func (s *Service) RevokeLevel(ctx context.Context, t *tenants.Tenant, caller *Caller, p RevokeParams) (*RevocationResult, error) {
	if caller.IsAgent() || caller.Kind != KindOrchestrator {
		return nil, apiDenial(http.StatusForbidden, CheckPolicy, "only orchestrators revoke through this API")
	}
	return s.revokeAt(ctx, t, p, caller.ClientID, "client:"+caller.ClientID)
}

// RevokeByUser revokes at one of the four levels for a console admin, who
// may revoke anything of the tenant; actor names them in the audit trail
// and the feed. Whether they hold the role is the caller's check.
func (s *Service) RevokeByUser(ctx context.Context, t *tenants.Tenant, actor string, p RevokeParams) (*RevocationResult, error) {
	if actor == "" {
		return nil, fault.New(fault.Internal, "revocation without an actor")
	}
	return s.revokeAt(ctx, t, p, "", actor)
}

// revokeAt revokes p's target when it exists in the tenant and, with owner
// set, belongs to that orchestrator; anything else does not exist for the
// caller.
func (s *Service) revokeAt(ctx context.Context, t *tenants.Tenant, p RevokeParams, owner, by string) (*RevocationResult, error) {
	if len(p.Reason) == 0 || len(p.Reason) > 256 {
		return nil, fault.InvalidField("reason", "must be 1 to 256 characters")
	}
	target, err := uuid.Parse(p.Target)
	if err != nil {
		return nil, fault.InvalidField("target", "must be a token jti, agent_id or task_id")
	}
	now := s.clock.Now()
	res := &RevocationResult{ID: uuid.Must(uuid.NewV7())}
	err = s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		var client *string
		var taskID *uuid.UUID
		var q string
		switch p.Level {
		case LevelToken:
			q = `SELECT coalesce(tk.client_id, t.client_id), t.task_id FROM tokens t
				LEFT JOIN tasks tk ON tk.tenant_id = t.tenant_id AND tk.id = t.task_id WHERE t.jti = $1`
		case LevelAgent, LevelChain:
			q = `SELECT tk.client_id, a.task_id FROM agents a JOIN tasks tk ON tk.tenant_id = a.tenant_id AND tk.id = a.task_id
				WHERE a.id = $1`
		case LevelTask:
			q = `SELECT client_id, id FROM tasks WHERE id = $1`
		default:
			return fault.InvalidField("level", "must be token, agent, task or chain")
		}
		if err := tx.QueryRow(ctx, q, target).Scan(&client, &taskID); err != nil || client == nil || (owner != "" && *client != owner) {
			if err != nil && err != pgx.ErrNoRows {
				return err
			}
			return errNotFound(p.Level)
		}
		n, err := revokeTargets(ctx, tx, p.Level, target, now, res.ID)
		if err != nil {
			return err
		}
		res.Count = n
		return s.recordRevocation(ctx, tx, t, revocation{ID: res.ID, Level: p.Level, Target: target.String(),
			TaskID: deref(taskID), Reason: p.Reason, Code: "requested", By: by, Count: n, At: now})
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// revokeTargets marks the credentials of one revocation and counts them.
func revokeTargets(ctx context.Context, tx pgx.Tx, level string, target uuid.UUID, now time.Time, revID uuid.UUID) (int, error) {
	var agents, tokens string
	switch level {
	case LevelToken:
		tokens = `jti = $1`
	case LevelAgent:
		agents, tokens = `id = $1`, `agent_id = $1`
	case LevelChain:
		// Descendants share the target's task: narrowing to it first lets the
		// agents_task index serve the scan (row-level security keeps the GIN
		// index on ancestors from being used for "= ANY").
		chain := `task_id = (SELECT task_id FROM agents WHERE id = $1) AND (id = $1 OR $1 = ANY (ancestors))`
		agents = chain
		tokens = `agent_id IN (SELECT id FROM agents WHERE ` + chain + `)`
	case LevelTask:
		agents, tokens = `task_id = $1`, `task_id = $1`
		if _, err := tx.Exec(ctx, `UPDATE tasks SET completed_at = $2 WHERE id = $1 AND completed_at IS NULL`, target, now); err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, `UPDATE launch_tokens SET consumed_at = $2 WHERE task_id = $1 AND consumed_at IS NULL`, target, now); err != nil {
			return 0, err
		}
	}
	count := 0
	if agents != "" {
		tag, err := tx.Exec(ctx, `UPDATE agents SET revoked_at = $2, revocation_id = $3 WHERE `+agents+` AND revoked_at IS NULL`, target, now, revID)
		if err != nil {
			return 0, err
		}
		count += int(tag.RowsAffected())
	}
	tag, err := tx.Exec(ctx, `UPDATE tokens SET revoked_at = $2, revocation_id = $3 WHERE `+tokens+` AND revoked_at IS NULL AND expires_at > $2`,
		target, now, revID)
	if err != nil {
		return 0, err
	}
	return count + int(tag.RowsAffected()), nil
}
