package oauth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/tenants"
)

// ChallengeTTL is how long a new agent has to sign its nonce.
const ChallengeTTL = 30 * time.Second

// Challenge is what POST /v1/agents/challenge answers.
type Challenge struct {
	ID        uuid.UUID `json:"challenge_id"`
	Nonce     string    `json:"nonce"`
	ExpiresIn int       `json:"expires_in"`
}

// ChallengeParams is the body of POST /v1/agents/challenge.
type ChallengeParams struct {
	LaunchToken string          `json:"launch_token"`
	PublicKey   json.RawMessage `json:"public_key"`
}

// StartRegistration consumes a launch token and answers with a nonce for
// the new agent's key to sign. The launch token is single-use: of any
// number of concurrent presentations exactly one wins.
func (s *Service) StartRegistration(ctx context.Context, t *tenants.Tenant, p ChallengeParams) (*Challenge, error) {
	if p.LaunchToken == "" || len(p.LaunchToken) > 128 {
		return nil, fault.InvalidField("launch_token", "is required")
	}
	pub, err := ParsePublicJWK(p.PublicKey)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	ch := &Challenge{ID: uuid.Must(uuid.NewV7()), ExpiresIn: int(ChallengeTTL / time.Second)}
	nonce := make([]byte, 32)
	_, _ = rand.Read(nonce)
	ch.Nonce = base64.RawURLEncoding.EncodeToString(nonce)
	hash := hashLaunch(p.LaunchToken)
	err = s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		var taskID uuid.UUID
		var parent *uuid.UUID
		var depth int
		var scope []string
		var notAfter *time.Time
		err := tx.QueryRow(ctx, `UPDATE launch_tokens SET consumed_at = $2
			WHERE token_hash = $1 AND consumed_at IS NULL AND expires_at > $2
			RETURNING task_id, parent_agent_id, depth, scope, not_after`, hash, now).
			Scan(&taskID, &parent, &depth, &scope, &notAfter)
		if err == pgx.ErrNoRows {
			return s.launchTokenRefusal(ctx, tx, hash, now)
		}
		if err != nil {
			return err
		}
		// The challenge and its audit event in one pipelined round trip.
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO challenges (tenant_id, id, task_id, parent_agent_id, depth, scope, not_after,
			public_key, nonce, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			t.ID, ch.ID, taskID, parent, depth, scope, notAfter, []byte(pub), nonce, now, now.Add(ChallengeTTL))
		if err := audit.Queue(b, t.ID, audit.Event{Time: now, Type: audit.ChallengeIssued, Actor: "anonymous",
			TaskID: taskID, AgentID: deref(parent), Detail: map[string]any{"challenge_id": ch.ID, "depth": depth,
				"launch_token_sha256": base64.RawURLEncoding.EncodeToString(hash)}}); err != nil {
			return err
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, err
	}
	return ch, nil
}

// launchTokenRefusal explains why a launch token could not be consumed.
func (s *Service) launchTokenRefusal(ctx context.Context, tx pgx.Tx, hash []byte, now time.Time) error {
	var consumed *time.Time
	var expires time.Time
	var taskID uuid.UUID
	err := tx.QueryRow(ctx, `SELECT consumed_at, expires_at, task_id FROM launch_tokens WHERE token_hash = $1`, hash).
		Scan(&consumed, &expires, &taskID)
	switch {
	case err == pgx.ErrNoRows:
		return apiDenial(http.StatusUnauthorized, CheckSignature, "unknown launch token")
	case err != nil:
		return err
	case consumed != nil:
		d := apiDenial(http.StatusConflict, CheckReplay, "launch token was already used")
		d.TaskID = taskID
		return d
	default:
		d := apiDenial(http.StatusUnauthorized, CheckExpired, "launch token has expired").with("before "+expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		d.TaskID = taskID
		return d
	}
}

// RegisterParams is the body of POST /v1/agents/register.
type RegisterParams struct {
	ChallengeID uuid.UUID `json:"challenge_id"`
	Signature   string    `json:"signature"`
}

// Registration is what a new agent learns about itself.
type Registration struct {
	AgentID       uuid.UUID `json:"agent_id"`
	SPIFFEID      string    `json:"spiffe_id"`
	TaskID        uuid.UUID `json:"task_id"`
	Scope         string    `json:"scope"`
	TokenEndpoint string    `json:"token_endpoint"`
	Depth         int       `json:"-"`
}

// Register completes registration: the signature over the nonce proves the
// agent holds the key it presented. The challenge is consumed either way;
// a failed signature needs a new launch token.
func (s *Service) Register(ctx context.Context, t *tenants.Tenant, p RegisterParams) (*Registration, error) {
	sig, err := base64.RawURLEncoding.DecodeString(p.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fault.InvalidField("signature", "must be the base64url Ed25519 signature of the nonce")
	}
	if p.ChallengeID == uuid.Nil {
		return nil, fault.InvalidField("challenge_id", "is required")
	}
	now := s.clock.Now()
	var (
		clientID   string
		task       uuid.UUID
		parent     *uuid.UUID
		depth      int
		scope      []string
		pub, nonce []byte
	)
	// One transaction: consume the challenge, check the signature, and only
	// when it verifies insert the agent. A wrong signature still commits the
	// consumption (the challenge is burnt either way), then is refused.
	var ref AgentRef
	var spiffe string
	var badSignature bool
	err = s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE challenges c SET consumed_at = $2
			 WHERE c.id = $1 AND c.consumed_at IS NULL AND c.expires_at > $2
			RETURNING c.task_id, c.parent_agent_id, c.depth, c.scope, c.public_key, c.nonce,
			          (SELECT client_id FROM tasks WHERE tenant_id = c.tenant_id AND id = c.task_id)`, p.ChallengeID, now).
			Scan(&task, &parent, &depth, &scope, &pub, &nonce, &clientID)
		if err == pgx.ErrNoRows {
			var consumed *time.Time
			if err := tx.QueryRow(ctx, `SELECT consumed_at FROM challenges WHERE id = $1`, p.ChallengeID).Scan(&consumed); err != nil {
				return apiDenial(http.StatusUnauthorized, CheckSignature, "unknown challenge")
			}
			if consumed != nil {
				return apiDenial(http.StatusConflict, CheckReplay, "challenge was already used")
			}
			return apiDenial(http.StatusUnauthorized, CheckExpired, "challenge has expired")
		}
		if err != nil {
			return err
		}
		if !ed25519.Verify(pub, nonce, sig) {
			badSignature = true
			return nil // commit the consumption
		}
		ref = AgentRef{TrustDomain: t.TrustDomain, ClientID: clientID, TaskID: task, AgentID: uuid.Must(uuid.NewV7())}
		id, err := ref.SPIFFEID()
		if err != nil {
			return fault.Wrap(err, fault.Internal, "build SPIFFE ID")
		}
		spiffe = id.String()
		// The agent and its audit event in one pipelined round trip; a
		// sub-agent's ancestors are its parent's plus the parent.
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO agents (tenant_id, id, task_id, parent_id, ancestors, depth, public_key, scope, created_at, last_seen_at)
			VALUES ($1, $2, $3, $4, coalesce((SELECT p.ancestors || p.id FROM agents p WHERE p.id = $4), '{}'), $5, $6, $7, $8, $8)`,
			t.ID, ref.AgentID, task, parent, depth, pub, scope, now)
		if err := audit.Queue(b, t.ID, audit.Event{Time: now, Type: audit.AgentRegistered, Actor: "agent:" + spiffe,
			ClientID: clientID, TaskID: task, AgentID: ref.AgentID,
			Detail: map[string]any{"spiffe_id": spiffe, "depth": depth, "parent_agent_id": parent, "scope": NewScope(scope...).String()}}); err != nil {
			return err
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, err
	}
	if badSignature {
		d := apiDenial(http.StatusUnauthorized, CheckSignature, "signature over the nonce does not verify with the presented key")
		d.TaskID, d.ClientID, d.AgentID = task, clientID, deref(parent)
		return nil, d
	}
	return &Registration{AgentID: ref.AgentID, SPIFFEID: spiffe, TaskID: task,
		Scope: NewScope(scope...).String(), TokenEndpoint: s.TokenEndpoint(t), Depth: depth}, nil
}
