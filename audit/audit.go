// Package audit is chit's one audit appender. Every credential operation and
// every denial is appended here, inside the transaction of the change it
// records, so an issued token never exists without its event.
//
// Events carry identifiers and hashes only: never a token, assertion, key,
// password or free text such as a task's purpose (use Hash for those).
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
)

// Type names what happened.
type Type string

// Event types.
const (
	TenantCreated   Type = "tenant.created"
	TenantUpdated   Type = "tenant.updated"
	KeyRotated      Type = "key.rotated"
	ClientCreated   Type = "client.created"
	PolicyGranted   Type = "policy.granted"
	PolicyRevoked   Type = "policy.revoked"
	TaskCreated     Type = "task.created"
	TaskCompleted   Type = "task.completed"
	LaunchIssued    Type = "launch_token.issued"
	ChallengeIssued Type = "challenge.issued"
	AgentRegistered Type = "agent.registered"
	TokenIssued     Type = "token.issued"
	TokenRenewed    Type = "token.renewed"
	Revoked         Type = "credential.revoked"
	Introspected    Type = "token.introspected"
	Denied          Type = "request.denied"
	// Console users: a user added to a tenant, a sign-in (success or
	// refusal, with lockout) and a sign-out. Roles are policy events.
	ConsoleUserAdded Type = "console.user_added"
	ConsoleLogin     Type = "console.login"
	ConsoleLogout    Type = "console.logout"
	// An operator disabled a console user, or set a new password for one;
	// either ends every session of the user.
	ConsoleUserDisabled Type = "console.user_disabled"
	ConsolePasswordSet  Type = "console.password_set"
	// Exported: a console user downloaded part of the trail.
	Exported Type = "audit.exported"
)

// Types lists every event type, for filters.
var Types = []Type{TenantCreated, TenantUpdated, KeyRotated, ClientCreated, PolicyGranted, PolicyRevoked,
	TaskCreated, TaskCompleted, LaunchIssued, ChallengeIssued, AgentRegistered, TokenIssued, TokenRenewed,
	Revoked, Introspected, Denied, ConsoleUserAdded, ConsoleLogin, ConsoleLogout, ConsoleUserDisabled, ConsolePasswordSet, Exported}

// Outcome of the operation.
type Outcome string

// Outcomes.
const (
	Success Outcome = "success"
	Denial  Outcome = "denied"
)

// Event is one audit record. Zero-valued optional fields are stored as NULL.
type Event struct {
	Time         time.Time
	Type         Type
	Outcome      Outcome
	Actor        string // who acted: "client:{id}", "agent:{spiffe id}", "cli", "system"
	Principal    string // on whose behalf
	ClientID     string
	TaskID       uuid.UUID
	AgentID      uuid.UUID
	TokenID      uuid.UUID
	DenialID     uuid.UUID
	RevocationID uuid.UUID
	Detail       map[string]any // identifiers, counts and hashes only
}

// Append writes e in tx, which must be scoped to tenantID.
func Append(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID, e Event) error {
	sql, args, err := Statement(tenantID, e)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, sql, args...)
	return pgstore.Interpret(err)
}

// Queue adds e to a batch that runs as one transaction scoped to tenantID,
// for paths that send all their writes in a single round trip.
func Queue(b *pgx.Batch, tenantID uuid.UUID, e Event) error {
	sql, args, err := Statement(tenantID, e)
	if err != nil {
		return err
	}
	b.Queue(sql, args...)
	return nil
}

// Statement is the INSERT that appends e: the one way an event is written.
func Statement(tenantID uuid.UUID, e Event) (string, []any, error) {
	if e.Time.IsZero() || e.Type == "" || e.Actor == "" {
		return "", nil, fault.New(fault.Internal, "audit event without time, type or actor")
	}
	if e.Outcome == "" {
		e.Outcome = Success
	}
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return "", nil, fault.Wrap(err, fault.Internal, "encode audit detail")
		}
	}
	return insertEvent, []any{tenantID, uuid.Must(uuid.NewV7()), e.Time, string(e.Type), string(e.Outcome), e.Actor,
		nullString(e.Principal), nullString(e.ClientID), nullUUID(e.TaskID), nullUUID(e.AgentID),
		nullUUID(e.TokenID), nullUUID(e.DenialID), nullUUID(e.RevocationID), detail}, nil
}

const insertEvent = `
	INSERT INTO audit_events (tenant_id, id, occurred_at, type, outcome, actor, principal, client_id,
	                          task_id, agent_id, token_id, denial_id, revocation_id, detail)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`

// Hash is how free text and secrets appear in an event: hex SHA-256, with
// a label so equal inputs of different kinds do not collide.
func Hash(label, value string) string {
	sum := sha256.Sum256([]byte(label + "\x00" + value))
	return hex.EncodeToString(sum[:])
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullUUID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}
