package oauth

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/tenants"
)

// The first exchange is chit's hottest path. Here it costs one round trip:
// the agent's identity (immutable once registered) comes from memory, the
// assertion is verified, the token signed, and then every live check and
// every write goes to PostgreSQL as one pipelined batch — one implicit
// transaction that chit_require aborts, leaving nothing behind, when the
// assertion was replayed, the agent, an ancestor or the task was revoked,
// or the cap was reached. Any refusal falls back to the full path, which
// finds and records exactly which check failed.

// agentIdentity is what never changes about a registered agent.
type agentIdentity struct {
	PublicKey ed25519.PublicKey
	Scope     Scope
	Depth     int
	ClientID  string
	Principal string
	Audiences []string
	Deadline  time.Time
	Ancestors []uuid.UUID
}

type agentKey struct{ tenant, agent uuid.UUID }

// identities caches agent identities; bounded, it starts over when full.
type identities struct {
	mu sync.RWMutex
	m  map[agentKey]*agentIdentity
}

const maxCachedIdentities = 100_000

func (c *identities) get(k agentKey) *agentIdentity {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[k]
}

func (c *identities) put(k agentKey, id *agentIdentity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedIdentities {
		c.m = make(map[agentKey]*agentIdentity)
	}
	c.m[k] = id
}

// identity returns the agent's immutable facts, from memory when it can.
func (s *Service) identity(ctx context.Context, t *tenants.Tenant, ref AgentRef) (*agentIdentity, error) {
	k := agentKey{t.ID, ref.AgentID}
	if id := s.identities.get(k); id != nil {
		return id, nil
	}
	var a *agentRow
	err := s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		var err error
		a, err = agentTx(ctx, tx, ref)
		return err
	})
	if err != nil {
		return nil, err
	}
	id := &agentIdentity{PublicKey: a.PublicKey, Scope: a.Scope, Depth: a.Depth, ClientID: a.task.ClientID,
		Principal: a.task.Principal, Audiences: a.task.Audiences, Deadline: a.task.Deadline, Ancestors: a.Ancestors}
	s.identities.put(k, id)
	return id, nil
}

// fastAgent is an agent whose assertion verified against its cached identity.
type fastAgent struct {
	ref       AgentRef
	id        *agentIdentity
	assertion *VerifiedAssertion
	now       time.Time
}

// fastVerify verifies an agent assertion on the fast path; nil means the
// full path must decide (a refusal to diagnose, a delegated agent whose
// parent's token bounds its lifetime, or anything unknown here).
func (s *Service) fastVerify(ctx context.Context, t *tenants.Tenant, raw string) *fastAgent {
	a, d := ParseAssertion(raw)
	if d != nil {
		return nil
	}
	ref, err := ParseAgentRef(t.TrustDomain, a.Subject())
	if err != nil {
		return nil
	}
	id, err := s.identity(ctx, t, ref)
	if err != nil || id.ClientID != ref.ClientID || id.Depth != 1 || id.Depth > t.Settings.MaxDepth {
		return nil
	}
	now := s.clock.Now()
	v, d := a.Verify(id.PublicKey, s.assertionAudiences(t), now, AgentAssertionMaxLife)
	if d != nil || !now.Before(id.Deadline) {
		return nil
	}
	return &fastAgent{ref: ref, id: id, assertion: v, now: now}
}

// narrow attenuates held scope and audiences to what req asks; ok is false
// when it asks for more.
func narrow(held Scope, heldAuds []string, req ExchangeRequest) (Scope, []string, bool) {
	scope, err := held.Attenuate(req.Scope)
	if err != nil {
		return Scope{}, nil, false
	}
	for _, aud := range req.Audiences {
		if !contains(heldAuds, aud) {
			return Scope{}, nil, false
		}
	}
	if len(req.Audiences) > 0 {
		return scope, req.Audiences, true
	}
	return scope, heldAuds, true
}

// issueFast queues the checks statement, then the new token and its event,
// and sends it all as one transaction. ok is false when the checks refused.
func (s *Service) issueFast(ctx context.Context, t *tenants.Tenant, fa *fastAgent, b *pgx.Batch, scope Scope, auds []string,
	renewedFrom uuid.UUID, evType audit.Type) (*IssuedToken, bool, error) {
	signer, err := s.signer(ctx, nil, t)
	if err != nil {
		return nil, true, err
	}
	claims := &AccessClaims{Subject: fa.id.Principal, Audience: auds, ClientID: fa.id.ClientID, Scope: scope.String(),
		Act: NewActorChain(fa.ref.String()), TaskID: fa.ref.TaskID.String(), AgentID: fa.ref.AgentID.String()}
	issued, err := s.mint(b, signer, t, claims, fa.now, earliest(fa.now.Add(t.Settings.TokenTTL), fa.id.Deadline),
		fa.ref.AgentID, fa.ref.TaskID, renewedFrom, evType, "agent:"+fa.ref.String(), map[string]any{"depth": fa.id.Depth})
	if err != nil {
		return nil, true, err
	}
	if err := s.db.SendBatch(ctx, b); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "CH001" {
			return nil, false, nil // refused: nothing was written; the full path says why
		}
		return nil, true, err
	}
	return issued, true, nil
}

// assertionHash keys a used assertion id, as useAssertionID does.
func (fa *fastAgent) assertionHash() []byte {
	sum := sha256.Sum256([]byte(fa.ref.String() + "\x00" + fa.assertion.ID))
	return sum[:]
}

// exchangeFirstFast tries a first exchange in one round trip; ok is false
// when the full path must decide.
func (s *Service) exchangeFirstFast(ctx context.Context, t *tenants.Tenant, req ExchangeRequest) (*IssuedToken, bool, error) {
	if req.SubjectTokenType != TokenTypeJWT || req.ActorToken != "" {
		return nil, false, nil
	}
	fa := s.fastVerify(ctx, t, req.SubjectToken)
	if fa == nil {
		return nil, false, nil
	}
	scope, auds, ok := narrow(fa.id.Scope, fa.id.Audiences, req)
	if !ok || !s.allowed(t, fa.id.ClientID, scope, auds) {
		return nil, false, nil
	}
	b := pgstore.NewTenantBatch(t.ID)
	b.Queue(firstExchangeChecks, t.ID, fa.assertionHash(), fa.assertion.Expiry.Add(Skew), fa.ref.AgentID,
		1+t.Settings.MaxRenewals, fa.now, fa.ref.TaskID)
	return s.issueFast(ctx, t, fa, b, scope, auds, uuid.Nil, audit.TokenIssued)
}

// renewFast tries a renewal in one round trip; ok is false when the full
// path must decide.
func (s *Service) renewFast(ctx context.Context, t *tenants.Tenant, req ExchangeRequest) (*IssuedToken, bool, error) {
	if req.SubjectTokenType != TokenTypeAccessToken || req.ActorTokenType != TokenTypeJWT || req.ActorToken == "" {
		return nil, false, nil
	}
	old, d := s.verifyAccess(ctx, nil, t, req.SubjectToken)
	if d != nil {
		return nil, false, nil
	}
	fa := s.fastVerify(ctx, t, req.ActorToken)
	if fa == nil || old.AgentID != fa.ref.AgentID.String() || old.TaskID != fa.ref.TaskID.String() {
		return nil, false, nil
	}
	held, err := ParseScope(old.Scope)
	if err != nil {
		return nil, false, nil
	}
	scope, auds, ok := narrow(held, old.Audience, req)
	if !ok || !s.allowed(t, fa.id.ClientID, scope, auds) {
		return nil, false, nil
	}
	revID := uuid.Must(uuid.NewV7())
	b := pgstore.NewTenantBatch(t.ID)
	b.Queue(renewalChecks, t.ID, fa.assertionHash(), fa.assertion.Expiry.Add(Skew), fa.ref.AgentID,
		1+t.Settings.MaxRenewals, fa.now, fa.ref.TaskID, jtiOf(old), revID)
	if err := queueRevocation(b, t, revocation{ID: revID, Level: "token", Target: old.ID, TaskID: fa.ref.TaskID,
		AgentID: fa.ref.AgentID, Reason: "renewed", Code: "renewed", By: "agent:" + fa.ref.AgentID.String(), Count: 1, At: fa.now}); err != nil {
		return nil, true, err
	}
	return s.issueFast(ctx, t, fa, b, scope, auds, jtiOf(old), audit.TokenRenewed)
}

// renewalChecks consumes the actor assertion's jti, revokes the renewed
// token (still live and the agent's own), counts the exchange, and aborts
// unless all of that happened and the agent, its ancestors and its task
// are live.
var renewalChecks = strings.TrimSpace(`
WITH used AS (
  INSERT INTO used_assertions (tenant_id, id_hash, expires_at) VALUES ($1, $2, $3)
  ON CONFLICT DO NOTHING RETURNING 1
), renewed AS (
  UPDATE tokens SET revoked_at = $6, revocation_id = $9
   WHERE jti = $8 AND agent_id = $4 AND revoked_at IS NULL AND EXISTS (SELECT 1 FROM used)
  RETURNING 1
), counted AS (
  UPDATE agents a SET exchanges = a.exchanges + 1, last_seen_at = greatest(a.last_seen_at, $6)
   WHERE a.id = $4 AND a.task_id = $7 AND a.exchanges < $5 AND a.revoked_at IS NULL
     AND EXISTS (SELECT 1 FROM renewed)
     AND NOT EXISTS (SELECT 1 FROM agents p WHERE p.tenant_id = a.tenant_id AND p.id = ANY (a.ancestors) AND p.revoked_at IS NOT NULL)
     AND EXISTS (SELECT 1 FROM tasks tk WHERE tk.tenant_id = a.tenant_id AND tk.id = $7 AND tk.completed_at IS NULL AND tk.deadline > $6)
  RETURNING 1
)
SELECT chit_require(EXISTS (SELECT 1 FROM counted), 'renewal refused')`)

// firstExchangeChecks consumes the assertion's jti and counts the exchange,
// and aborts unless both happened and the agent, its ancestors and its task
// are all live.
var firstExchangeChecks = strings.TrimSpace(`
WITH used AS (
  INSERT INTO used_assertions (tenant_id, id_hash, expires_at) VALUES ($1, $2, $3)
  ON CONFLICT DO NOTHING RETURNING 1
), counted AS (
  UPDATE agents a SET exchanges = a.exchanges + 1, last_seen_at = greatest(a.last_seen_at, $6)
   WHERE a.id = $4 AND a.task_id = $7 AND a.exchanges < $5 AND a.revoked_at IS NULL
     AND EXISTS (SELECT 1 FROM used)
     AND NOT EXISTS (SELECT 1 FROM agents p WHERE p.tenant_id = a.tenant_id AND p.id = ANY (a.ancestors) AND p.revoked_at IS NOT NULL)
     AND EXISTS (SELECT 1 FROM tasks tk WHERE tk.tenant_id = a.tenant_id AND tk.id = $7 AND tk.completed_at IS NULL AND tk.deadline > $6)
  RETURNING 1
)
SELECT chit_require(EXISTS (SELECT 1 FROM counted), 'first exchange refused')`)
