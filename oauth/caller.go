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
	tokenRevoked   bool
	revocationID   *uuid.UUID
	agentRevoked   bool
	agentRevID     *uuid.UUID
	taskDone       bool
	ancestorRevoke *uuid.UUID
}

// checkLive verifies in one round trip that the token, its agent, every
// ancestor of the agent and its task are all still live.
func checkLive(ctx context.Context, tx pgx.Tx, jti uuid.UUID) (*Denial, error) {
	var st liveState
	err := tx.QueryRow(ctx, `
		SELECT t.revoked_at IS NOT NULL, t.revocation_id,
		       coalesce(a.revoked_at IS NOT NULL, false), a.revocation_id,
		       coalesce(tk.completed_at IS NOT NULL, false),
		       (SELECT p.revocation_id FROM agents p
		         WHERE p.tenant_id = a.tenant_id AND p.id = ANY(a.ancestors) AND p.revoked_at IS NOT NULL LIMIT 1)
		  FROM tokens t
		  LEFT JOIN agents a ON a.tenant_id = t.tenant_id AND a.id = t.agent_id
		  LEFT JOIN tasks tk ON tk.tenant_id = t.tenant_id AND tk.id = t.task_id
		 WHERE t.jti = $1`, jti).Scan(&st.tokenRevoked, &st.revocationID, &st.agentRevoked, &st.agentRevID,
		&st.taskDone, &st.ancestorRevoke)
	if err != nil {
		if fault.KindOf(err) == fault.NotFound || err == pgx.ErrNoRows {
			return deny(CheckSignature, "token is unknown to this tenant"), nil
		}
		return nil, err
	}
	switch {
	case st.tokenRevoked:
		d := deny(CheckRevoked, "token was revoked")
		d.RevocationID = deref(st.revocationID)
		return d, nil
	case st.agentRevoked:
		d := deny(CheckRevoked, "the agent was revoked")
		d.RevocationID = deref(st.agentRevID)
		return d, nil
	case st.ancestorRevoke != nil:
		d := deny(CheckRevoked, "an agent in the token's delegation chain was revoked")
		d.RevocationID = *st.ancestorRevoke
		return d, nil
	case st.taskDone:
		return deny(CheckRevoked, "the task was completed"), nil
	}
	return nil, nil
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
	claims, d := VerifyAccessToken(raw, s.keyLookup(ctx, nil, t), s.Issuer(t), s.clock.Now())
	if d != nil {
		d.Status = http.StatusUnauthorized
		return nil, d, nil
	}
	caller := &Caller{ClientID: claims.ClientID, Claims: claims}
	var err error
	if caller.Scope, err = ParseScope(claims.Scope); err != nil {
		return nil, apiDenial(http.StatusUnauthorized, CheckFormat, "token scope is malformed"), nil
	}
	if claims.AgentID != "" {
		if caller.AgentID, err = uuid.Parse(claims.AgentID); err != nil {
			return nil, apiDenial(http.StatusUnauthorized, CheckFormat, "token agent_id is malformed"), nil
		}
		caller.TaskID, _ = uuid.Parse(claims.TaskID)
	}
	err = s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		var err error
		if d, err = checkLive(ctx, tx, claims.JTI()); err != nil || d != nil {
			return err
		}
		if caller.IsAgent() {
			// Any authenticated agent call is a heartbeat.
			_, err = tx.Exec(ctx, `UPDATE agents SET last_seen_at = greatest(last_seen_at, $2) WHERE id = $1`,
				caller.AgentID, s.clock.Now())
			return err
		}
		if !contains(claims.Audience, s.APIAudience(t)) {
			d = apiDenial(http.StatusUnauthorized, CheckAudience, "token is not for this tenant's API").with(s.APIAudience(t), "")
			return nil
		}
		var kind string
		if err := tx.QueryRow(ctx, `SELECT kind FROM clients WHERE id = $1 AND disabled_at IS NULL`, claims.ClientID).Scan(&kind); err != nil {
			if fault.KindOf(err) == fault.NotFound {
				d = apiDenial(http.StatusUnauthorized, CheckRevoked, "the client is disabled")
				return nil
			}
			return err
		}
		caller.Kind = ClientKind(kind)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if d != nil {
		d.Status, d.ClientID = http.StatusUnauthorized, claims.ClientID
		d.AgentID, d.TaskID = caller.AgentID, caller.TaskID
		return nil, d, nil
	}
	return caller, nil, nil
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
