package oauth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/tenants"
)

// Caller is who presented a bearer token on the control-plane API.
type Caller struct {
	ClientID string     // the client, or the orchestrator an agent works for
	Kind     ClientKind // empty for an agent
	AgentID  uuid.UUID  // set when the caller is an agent
	TaskID   uuid.UUID
	Claims   *AccessClaims
	Scope    Scope
}

// IsAgent reports whether the caller is an agent instance.
func (c *Caller) IsAgent() bool { return c.AgentID != uuid.Nil }

// liveState is a token's revocation state across every level.
type liveState struct {
	found          bool
	tokenRevoked   bool
	revocationID   *uuid.UUID
	agentRevoked   bool
	agentRevID     *uuid.UUID
	taskDone       bool
	ancestorRevoke *uuid.UUID
	clientKind     *string // the token's client, when enabled
}

// liveQuery reads, in one statement, whether a token, its agent, every
// ancestor of the agent and its task are all still live.
const liveQuery = `
	SELECT t.revoked_at IS NOT NULL, t.revocation_id,
	       coalesce(a.revoked_at IS NOT NULL, false), a.revocation_id,
	       coalesce(tk.completed_at IS NOT NULL, false),
	       (SELECT p.revocation_id FROM agents p
	         WHERE p.tenant_id = a.tenant_id AND p.id = ANY(a.ancestors) AND p.revoked_at IS NOT NULL LIMIT 1),
	       (SELECT c.kind FROM clients c WHERE c.tenant_id = t.tenant_id AND c.id = t.client_id AND c.disabled_at IS NULL)
	  FROM tokens t
	  LEFT JOIN agents a ON a.tenant_id = t.tenant_id AND a.id = t.agent_id
	  LEFT JOIN tasks tk ON tk.tenant_id = t.tenant_id AND tk.id = t.task_id
	 WHERE t.jti = $1`

func (st *liveState) scan(row pgx.Row) error {
	err := row.Scan(&st.tokenRevoked, &st.revocationID, &st.agentRevoked, &st.agentRevID,
		&st.taskDone, &st.ancestorRevoke, &st.clientKind)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	st.found = err == nil
	return err
}

// denial says why the token is not live, or nil.
func (st *liveState) denial() *Denial {
	switch {
	case !st.found:
		return deny(CheckSignature, "token is unknown to this tenant")
	case st.tokenRevoked:
		d := deny(CheckRevoked, "token was revoked")
		d.RevocationID = deref(st.revocationID)
		return d
	case st.agentRevoked:
		d := deny(CheckRevoked, "the agent was revoked")
		d.RevocationID = deref(st.agentRevID)
		return d
	case st.ancestorRevoke != nil:
		d := deny(CheckRevoked, "an agent in the token's delegation chain was revoked")
		d.RevocationID = *st.ancestorRevoke
		return d
	case st.taskDone:
		return deny(CheckRevoked, "the task was completed")
	}
	return nil
}

// checkLive is the live check inside a transaction.
func checkLive(ctx context.Context, tx pgx.Tx, jti uuid.UUID) (*Denial, error) {
	var st liveState
	if err := st.scan(tx.QueryRow(ctx, liveQuery, jti)); err != nil {
		return nil, err
	}
	return st.denial(), nil
}

// liveNow is the live check in one round trip of its own.
func (s *Service) liveNow(ctx context.Context, t *tenants.Tenant, jti uuid.UUID) (*liveState, error) {
	var st liveState
	b := pgstore.NewTenantBatch(t.ID)
	b.Queue(liveQuery, jti).QueryRow(st.scan)
	return &st, s.db.SendBatch(ctx, b)
}

func deref(id *uuid.UUID) uuid.UUID {
	if id == nil {
		return uuid.Nil
	}
	return *id
}

// AuthenticateBearer validates an API bearer token fully: signature, typ,
// issuer, expiry and live revocation state, and that it was issued for this
// tenant's API (clients) or as an agent token. Refusals are 401.
func (s *Service) AuthenticateBearer(ctx context.Context, t *tenants.Tenant, raw string) (*Caller, *Denial, error) {
	b := pgstore.NewTenantBatch(t.ID)
	bc := s.queueBearer(ctx, t, raw, b)
	if bc.denial != nil {
		return nil, bc.denial, nil
	}
	if err := s.db.SendBatch(ctx, b); err != nil {
		return nil, nil, err
	}
	caller, d := bc.result()
	return caller, d, nil
}

// bearerCheck is a bearer token checked offline (signature, times, claims)
// whose live state is read by a batch the caller sends, possibly with
// other work in the same round trip; result then decides.
type bearerCheck struct {
	s      *Service
	t      *tenants.Tenant
	claims *AccessClaims
	caller *Caller
	st     liveState
	denial *Denial // set when the token is refused offline: nothing was queued
}

// queueBearer checks raw offline and queues its live check on b: and, for
// an agent, its heartbeat (any authenticated agent call is one), touched
// only while the token is live.
func (s *Service) queueBearer(ctx context.Context, t *tenants.Tenant, raw string, b *pgx.Batch) *bearerCheck {
	bc := &bearerCheck{s: s, t: t}
	claims, d := s.verifyAccess(ctx, nil, t, raw)
	if d != nil {
		d.Status = http.StatusUnauthorized
		bc.denial = d
		return bc
	}
	caller := &Caller{ClientID: claims.ClientID, Claims: claims}
	var err error
	if caller.Scope, err = ParseScope(claims.Scope); err != nil {
		bc.denial = apiDenial(http.StatusUnauthorized, CheckFormat, "token scope is malformed")
		return bc
	}
	if claims.AgentID != "" {
		if caller.AgentID, err = uuid.Parse(claims.AgentID); err != nil {
			bc.denial = apiDenial(http.StatusUnauthorized, CheckFormat, "token agent_id is malformed")
			return bc
		}
		caller.TaskID, _ = uuid.Parse(claims.TaskID)
	}
	bc.claims, bc.caller = claims, caller
	b.Queue(liveQuery, jtiOf(claims)).QueryRow(bc.st.scan)
	if caller.IsAgent() {
		// At most one touch a second per agent: liveness windows are tens of
		// seconds, and a touch that changes no row commits without a WAL
		// flush, so a busy agent's calls stay read-only.
		b.Queue(`UPDATE agents a SET last_seen_at = $2
			WHERE a.id = $1 AND a.revoked_at IS NULL AND a.last_seen_at < $2::timestamptz - interval '1 second'
			  AND EXISTS (SELECT 1 FROM tokens t WHERE t.jti = $3 AND t.revoked_at IS NULL)`,
			caller.AgentID, s.clock.Now(), jtiOf(claims))
	}
	return bc
}

// result is the caller, or why it is refused, once the batch was sent.
func (bc *bearerCheck) result() (*Caller, *Denial) {
	if bc.denial != nil {
		return nil, bc.denial
	}
	s, t, claims, caller := bc.s, bc.t, bc.claims, bc.caller
	d := bc.st.denial()
	switch {
	case d != nil || caller.IsAgent():
	case !contains(claims.Audience, s.APIAudience(t)):
		d = apiDenial(http.StatusUnauthorized, CheckAudience, "token is not for this tenant's API").with(s.APIAudience(t), "")
	case bc.st.clientKind == nil:
		d = apiDenial(http.StatusUnauthorized, CheckRevoked, "the client is disabled")
	default:
		caller.Kind = ClientKind(*bc.st.clientKind)
	}
	if d != nil {
		d.Status, d.ClientID = http.StatusUnauthorized, claims.ClientID
		d.AgentID, d.TaskID = caller.AgentID, caller.TaskID
		return nil, d
	}
	return caller, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// deadlineOf returns min(a, b) ignoring zero times.
func earliest(times ...time.Time) time.Time {
	var out time.Time
	for _, t := range times {
		if !t.IsZero() && (out.IsZero() || t.Before(out)) {
			out = t
		}
	}
	return out
}

// BearerToken extracts the token of an `Authorization: Bearer` header; the
// scheme is case-insensitive (RFC 9110 §11.1, RFC 6750 §2.1).
func BearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
