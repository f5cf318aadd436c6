package inventory

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Token is one access token as the console shows it (never the token
// itself: chit does not keep it).
type Token struct {
	JTI       uuid.UUID
	ClientID  string
	AgentID   *uuid.UUID // nil for a client's own token
	TaskID    *uuid.UUID
	Subject   string // the task's principal, or the client for its own token
	Scope     []string
	Audiences []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// RenewedFrom is the token this one replaced, when it came from a renewal.
	RenewedFrom *uuid.UUID
	State       TokenState
	// RevokedAt and RevocationID say what ended it when State is revoked or
	// renewed: its own revocation, or (Inherited) its agent's, an agent's
	// above it or its task's completion.
	RevokedAt    *time.Time
	RevocationID *uuid.UUID
	Inherited    bool
}

// TokenDetail is a token with the lineage it belongs to.
type TokenDetail struct {
	Token
	// RenewedTo is the token that replaced it, when it was renewed.
	RenewedTo *uuid.UUID
	// Task, Agent and Chain are nil for a client's own token. Chain is the
	// agent's delegation lineage, root first, the token's agent last.
	Task  *Task
	Agent *Agent
	Chain []Hop
}

// renewalSQL tells a renewal (a token revoked by its own agent when it
// renewed it: no other revocation is made by an agent at token level) from
// every other revocation, over `r` (revocations).
const renewalSQL = `(r.level = 'token' AND r.revoked_by LIKE 'agent:%')`

const tokenSelect = `
	SELECT t.jti, t.client_id, t.agent_id, t.task_id, t.subject, t.scope, t.audiences, t.issued_at, t.expires_at,
	       t.renewed_from, t.revoked_at, t.revocation_id, coalesce(` + renewalSQL + `, false)
	  FROM tokens t
	  LEFT JOIN revocations r ON r.tenant_id = t.tenant_id AND r.id = t.revocation_id`

// tokenRow is a token as read, before its state is settled.
type tokenRow struct {
	Token
	renewal bool
}

func collectTokens(ctx context.Context, tx pgx.Tx, sql string, args pgx.NamedArgs) ([]tokenRow, error) {
	rows, err := tx.Query(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (tokenRow, error) {
		var t tokenRow
		err := r.Scan(&t.JTI, &t.ClientID, &t.AgentID, &t.TaskID, &t.Subject, &t.Scope, &t.Audiences, &t.IssuedAt,
			&t.ExpiresAt, &t.RenewedFrom, &t.RevokedAt, &t.RevocationID, &t.renewal)
		t.IssuedAt, t.ExpiresAt, t.RevokedAt = t.IssuedAt.UTC(), t.ExpiresAt.UTC(), utc(t.RevokedAt)
		if t.Scope == nil {
			t.Scope = []string{}
		}
		return t, err
	})
}

// settle decides the token's state now. holder is its agent (nil for a
// client token): when the agent's authority ended (its revocation, its
// chain's or its task's completion) before the token expired, that ended
// the token too, as the live check has it.
func (t *tokenRow) settle(holder *Agent, now time.Time) Token {
	tok := t.Token
	switch {
	case tok.RevokedAt != nil && t.renewal:
		tok.State = TokenRenewed
	case tok.RevokedAt != nil:
		tok.State = TokenRevoked
	case holder != nil && holder.RevokedAt != nil && holder.RevokedAt.Before(tok.ExpiresAt):
		tok.State, tok.Inherited = TokenRevoked, true
		tok.RevokedAt, tok.RevocationID = holder.RevokedAt, holder.RevocationID
	case !now.Before(tok.ExpiresAt):
		tok.State = TokenExpired
	default:
		tok.State = TokenLive
	}
	return tok
}

// agentTokens reads an agent's kept tokens, newest first.
func agentTokens(ctx context.Context, tx pgx.Tx, agent *Agent, now time.Time) ([]Token, bool, error) {
	rows, err := collectTokens(ctx, tx, tokenSelect+` WHERE t.agent_id = @agent ORDER BY t.issued_at DESC, t.jti DESC LIMIT @limit`,
		pgx.NamedArgs{"agent": agent.ID, "limit": MaxAgentTokens + 1})
	if err != nil {
		return nil, false, err
	}
	truncated := len(rows) > MaxAgentTokens
	if truncated {
		rows = rows[:MaxAgentTokens]
	}
	out := make([]Token, len(rows))
	for i := range rows {
		out[i] = rows[i].settle(agent, now)
	}
	return out, truncated, nil
}

// Token returns one token with the agent lineage it belongs to. Returns a
// NotFound fault for a token the tenant does not have, or no longer keeps
// (tokens are purged oauth.TokenRetention after they expire).
func (s *Service) Token(ctx context.Context, tenantID, jti uuid.UUID) (TokenDetail, error) {
	now := s.clock.Now()
	var d TokenDetail
	err := s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		rows, err := collectTokens(ctx, tx, tokenSelect+` WHERE t.jti = @jti`, pgx.NamedArgs{"jti": jti})
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return notFound("token")
		}
		row := rows[0]
		if row.AgentID == nil {
			d.Token = row.settle(nil, now)
			return nil
		}
		v, err := readTenant(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		agent, ancestors, err := agentWithAncestors(ctx, tx, v, now, *row.AgentID)
		if err != nil {
			return err
		}
		task, err := taskByID(ctx, tx, now, agent.TaskID)
		if err != nil {
			return err
		}
		d.Token, d.Agent, d.Task = row.settle(agent, now), agent, &task
		d.Chain = chainOf(task.Scope, append(ancestors, *agent))
		// A renewal's successor is the agent's token renewed from this one.
		var next uuid.UUID
		err = tx.QueryRow(ctx, `SELECT jti FROM tokens WHERE agent_id = $1 AND renewed_from = $2`, agent.ID, jti).Scan(&next)
		switch {
		case err == nil:
			d.RenewedTo = &next
		case err != pgx.ErrNoRows:
			return err
		}
		return nil
	})
	if err != nil {
		return TokenDetail{}, err
	}
	return d, nil
}

// sortTokens orders tokens newest first.
func sortTokens(list []Token) {
	slices.SortFunc(list, func(a, b Token) int {
		if c := b.IssuedAt.Compare(a.IssuedAt); c != 0 {
			return c
		}
		return slices.Compare(b.JTI[:], a.JTI[:])
	})
}
