package oauth

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/keyring"
)

// Token types of RFC 8693 §3.
const (
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// AgentAssertionMaxLife bounds an agent assertion's exp after now.
const AgentAssertionMaxLife = 60 * time.Second

// ExchangeRequest is an RFC 8693 request from an agent.
type ExchangeRequest struct {
	SubjectToken     string
	SubjectTokenType string
	ActorToken       string
	ActorTokenType   string
	Scope            Scope
	Audiences        []string // audience and resource parameters together
}

// IssuedToken is a freshly signed access token.
type IssuedToken struct {
	AccessToken string
	ExpiresIn   int
	Scope       Scope
	Claims      *AccessClaims
}

// agentRow is an agent with what issuing to it needs.
type agentRow struct {
	ID           uuid.UUID
	PublicKey    []byte
	Scope        Scope
	Depth        int
	ParentID     *uuid.UUID
	Ancestors    []uuid.UUID
	RevokedAt    *time.Time
	RevocationID *uuid.UUID
	AncestorRev  *uuid.UUID
	task         taskRow
}

func agentTx(ctx context.Context, tx pgx.Tx, ref AgentRef) (*agentRow, error) {
	var a agentRow
	var scope, taskScope []string
	err := tx.QueryRow(ctx, `
		SELECT a.id, a.public_key, a.scope, a.depth, a.parent_id, a.ancestors, a.revoked_at, a.revocation_id,
		       (SELECT p.revocation_id FROM agents p WHERE p.tenant_id = a.tenant_id AND p.id = ANY(a.ancestors)
		           AND p.revoked_at IS NOT NULL LIMIT 1),
		       tk.id, tk.client_id, tk.principal, tk.scope, tk.audiences, tk.deadline, tk.completed_at
		  FROM agents a JOIN tasks tk ON tk.tenant_id = a.tenant_id AND tk.id = a.task_id
		 WHERE a.id = $1 AND a.task_id = $2`, ref.AgentID, ref.TaskID).Scan(
		&a.ID, &a.PublicKey, &scope, &a.Depth, &a.ParentID, &a.Ancestors, &a.RevokedAt, &a.RevocationID, &a.AncestorRev,
		&a.task.ID, &a.task.ClientID, &a.task.Principal, &taskScope, &a.task.Audiences, &a.task.Deadline, &a.task.CompletedAt)
	if err != nil {
		return nil, err
	}
	if a.task.ClientID != ref.ClientID {
		return nil, pgx.ErrNoRows
	}
	a.Scope, a.task.Scope = NewScope(scope...), NewScope(taskScope...)
	return &a, nil
}

// verifyAgentAssertion checks an agent's self-signed assertion, consumes its
// jti and returns the agent it speaks for.
func (s *Service) verifyAgentAssertion(ctx context.Context, tx pgx.Tx, t *tenants.Tenant, raw string) (*agentRow, AgentRef, *Denial, error) {
	a, d := ParseAssertion(raw)
	if d != nil {
		return nil, AgentRef{}, d, nil
	}
	ref, err := ParseAgentRef(t.TrustDomain, a.Subject())
	if err != nil {
		check := CheckFormat
		if inOtherTrustDomain(t.TrustDomain, a.Subject()) {
			check = CheckTenant
		}
		return nil, ref, deny(check, "assertion subject is not an agent of this tenant").with("spiffe://"+t.TrustDomain.Name()+"/agent/...", a.Subject()), nil
	}
	agent, err := agentTx(ctx, tx, ref)
	if err == pgx.ErrNoRows {
		return nil, ref, deny(CheckSignature, "no such agent"), nil
	} else if err != nil {
		return nil, ref, nil, err
	}
	v, d := a.Verify(agent.PublicKey, s.assertionAudiences(t), s.clock.Now(), AgentAssertionMaxLife)
	if d != nil {
		return agent, ref, d, nil
	}
	if d := s.useAssertionID(ctx, tx, t, ref.String(), v.ID, v.Expiry); d != nil {
		return agent, ref, d, nil
	}
	return agent, ref, nil, nil
}

// Exchange answers an agent's token-exchange request: a first exchange
// from its assertion, or a renewal of its current token. Everything runs
// in tx; the token and its audit event commit together.
func (s *Service) Exchange(ctx context.Context, tx pgx.Tx, t *tenants.Tenant, req ExchangeRequest) (*IssuedToken, *Denial, error) {
	var (
		agent   *agentRow
		ref     AgentRef
		d       *Denial
		err     error
		ceiling Scope
		auds    []string
		renewed *AccessClaims
	)
	switch req.SubjectTokenType {
	case TokenTypeJWT:
		if req.ActorToken != "" {
			return nil, deny(CheckFormat, "a first exchange takes no actor_token"), nil
		}
		agent, ref, d, err = s.verifyAgentAssertion(ctx, tx, t, req.SubjectToken)
		if err != nil || d != nil {
			return nil, s.annotate(d, agent, ref), err
		}
		ceiling, auds = agent.Scope, agent.task.Audiences
	case TokenTypeAccessToken:
		if req.ActorTokenType != TokenTypeJWT || req.ActorToken == "" {
			return nil, deny(CheckFormat, "a renewal needs actor_token of type "+TokenTypeJWT), nil
		}
		renewed, d = s.verifyAccess(ctx, tx, t, req.SubjectToken)
		if d != nil {
			return nil, d, nil
		}
		agent, ref, d, err = s.verifyAgentAssertion(ctx, tx, t, req.ActorToken)
		if err != nil || d != nil {
			return nil, s.annotate(d, agent, ref), err
		}
		if renewed.AgentID != agent.ID.String() {
			return nil, s.annotate(deny(CheckSignature, "the actor is not the agent the token was issued to").with(renewed.AgentID, agent.ID.String()), agent, ref), nil
		}
		if d, err = checkLive(ctx, tx, jtiOf(renewed)); err != nil || d != nil {
			return nil, s.annotate(d, agent, ref), err
		}
		if ceiling, err = ParseScope(renewed.Scope); err != nil {
			return nil, deny(CheckFormat, "token scope is malformed"), nil
		}
		auds = renewed.Audience
	default:
		return nil, deny(CheckFormat, "subject_token_type must be "+TokenTypeJWT+" or "+TokenTypeAccessToken), nil
	}

	now := s.clock.Now()
	if d := s.agentUsable(agent, now); d != nil {
		return nil, s.annotate(d, agent, ref), nil
	}
	var caps TaskGrant
	if s.policy != nil {
		caps = s.policy.CheckTask(t.ID, agent.task.ClientID, nil, nil)
	}
	if maxDepth, capRule := effectiveDepth(t.Settings.MaxDepth, caps); agent.Depth > maxDepth {
		// The tenant (or the orchestrator's cap) lowered the maximum since
		// this agent was launched.
		return nil, s.annotate(depthDenial(deny(CheckDepth, ""), maxDepth, capRule, agent.Depth, "the agent's lineage is deeper than"), agent, ref), nil
	}
	scope, err := ceiling.Attenuate(req.Scope)
	if err != nil {
		return nil, s.annotate(deny(CheckScope, "requested scope exceeds what is held").with(ceiling.String(), req.Scope.String()), agent, ref), nil
	}
	if len(req.Audiences) > 0 {
		for _, a := range req.Audiences {
			if !contains(auds, a) {
				return nil, s.annotate(deny(CheckAudience, "requested audience is not among the allowed").with(strings.Join(auds, " "), a), agent, ref), nil
			}
		}
		auds = req.Audiences
	}
	// Governance now, not only when the task was created: the orchestrator
	// must still hold grants covering what this token carries.
	if _, d := s.govern(t, agent.task.ClientID, scope, auds, false); d != nil {
		return nil, s.annotate(d, agent, ref), nil
	}

	// The renewal cap counts every exchange; the update is atomic, so
	// concurrent exchanges cannot slip past it.
	var count int
	err = tx.QueryRow(ctx, `UPDATE agents SET exchanges = exchanges + 1, last_seen_at = greatest(last_seen_at, $3)
		WHERE id = $1 AND exchanges < $2 RETURNING exchanges`, agent.ID, 1+t.Settings.MaxRenewals, now).Scan(&count)
	if err == pgx.ErrNoRows {
		return nil, s.annotate(deny(CheckRenewalCap, "the agent has used all its exchanges").with("at most "+strconv.Itoa(1+t.Settings.MaxRenewals), "one more"), agent, ref), nil
	} else if err != nil {
		return nil, nil, err
	}

	exp := earliest(now.Add(t.Settings.TokenTTL), agent.task.Deadline)
	if agent.ParentID != nil {
		// A child outlives neither its parent's authority nor the task.
		var parentExp *time.Time
		if err := tx.QueryRow(ctx, `SELECT max(expires_at) FROM tokens WHERE agent_id = $1 AND revoked_at IS NULL AND expires_at > $2`,
			*agent.ParentID, now).Scan(&parentExp); err != nil {
			return nil, nil, err
		}
		if parentExp == nil {
			return nil, s.annotate(deny(CheckRevoked, "the delegating agent holds no live token"), agent, ref), nil
		}
		exp = earliest(exp, *parentExp)
	}
	if renewed != nil {
		if d, err := s.revokeRenewed(ctx, tx, t, renewed, agent, now); err != nil || d != nil {
			return nil, s.annotate(d, agent, ref), err
		}
	}

	chain := []string{ref.String()}
	for i := len(agent.Ancestors) - 1; i >= 0; i-- {
		chain = append(chain, AgentRef{TrustDomain: t.TrustDomain, ClientID: ref.ClientID, TaskID: ref.TaskID, AgentID: agent.Ancestors[i]}.String())
	}
	claims := &AccessClaims{Subject: agent.task.Principal, Audience: auds, ClientID: agent.task.ClientID, Scope: scope.String(),
		Act: NewActorChain(chain...), TaskID: agent.task.ID.String(), AgentID: agent.ID.String()}
	evType := audit.TokenIssued
	var renewedFrom uuid.UUID
	if renewed != nil {
		evType, renewedFrom = audit.TokenRenewed, jtiOf(renewed)
	}
	issued, err := s.issue(ctx, tx, t, claims, now, exp, agent.ID, agent.task.ID, renewedFrom, evType, "agent:"+ref.String(),
		map[string]any{"depth": agent.Depth, "exchange": count})
	return issued, nil, err
}

// agentUsable refuses a revoked agent, a revoked delegation chain, or a
// finished task.
func (s *Service) agentUsable(a *agentRow, now time.Time) *Denial {
	switch {
	case a.RevokedAt != nil:
		d := deny(CheckRevoked, "the agent was revoked")
		d.RevocationID = deref(a.RevocationID)
		return d
	case a.AncestorRev != nil:
		d := deny(CheckRevoked, "an agent in the delegation chain was revoked")
		d.RevocationID = *a.AncestorRev
		return d
	case a.task.CompletedAt != nil:
		return deny(CheckRevoked, "the task is completed")
	case !now.Before(a.task.Deadline):
		return deny(CheckDeadline, "the task's deadline has passed").with("before "+a.task.Deadline.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// annotate adds the agent and task to a denial's trace.
func (s *Service) annotate(d *Denial, a *agentRow, ref AgentRef) *Denial {
	if d == nil {
		return nil
	}
	if a != nil {
		d.AgentID, d.TaskID, d.ClientID = a.ID, a.task.ID, a.task.ClientID
	} else if ref.AgentID != uuid.Nil {
		d.ClientID = ref.ClientID
	}
	return d
}

// revokeRenewed revokes the token a renewal replaces; losing a race with a
// concurrent renewal of the same token is a refusal.
func (s *Service) revokeRenewed(ctx context.Context, tx pgx.Tx, t *tenants.Tenant, old *AccessClaims, a *agentRow, now time.Time) (*Denial, error) {
	revID := uuid.Must(uuid.NewV7())
	tag, err := tx.Exec(ctx, `UPDATE tokens SET revoked_at = $2, revocation_id = $3 WHERE jti = $1 AND revoked_at IS NULL`,
		jtiOf(old), now, revID)
	if err != nil {
		return nil, err
	}
	if tag.RowsAffected() == 0 {
		return deny(CheckRevoked, "the token was already renewed or revoked"), nil
	}
	return nil, s.recordRevocation(ctx, tx, t, revocation{ID: revID, Level: "token", Target: old.ID, TaskID: a.task.ID,
		Reason: "renewed", Code: "renewed", AgentID: a.ID, By: "agent:" + a.ID.String(), Count: 1, At: now})
}

// IssueClientToken issues a client its own access token for the tenant's
// API (client_credentials).
func (s *Service) IssueClientToken(ctx context.Context, tx pgx.Tx, t *tenants.Tenant, c *Client) (*IssuedToken, error) {
	now := s.clock.Now()
	claims := &AccessClaims{Subject: c.ID, Audience: []string{s.APIAudience(t)}, ClientID: c.ID}
	return s.issue(ctx, tx, t, claims, now, now.Add(t.Settings.TokenTTL), uuid.Nil, uuid.Nil, uuid.Nil, audit.TokenIssued,
		"client:"+c.ID, map[string]any{"grant": GrantClientCredentials, "kind": string(c.Kind)})
}

// issue signs claims and records the token and its audit event in tx.
func (s *Service) issue(ctx context.Context, tx pgx.Tx, t *tenants.Tenant, claims *AccessClaims, now, exp time.Time,
	agentID, taskID, renewedFrom uuid.UUID, evType audit.Type, actor string, detail map[string]any) (*IssuedToken, error) {
	signer, err := s.signer(ctx, tx, t)
	if err != nil {
		return nil, err
	}
	var b pgx.Batch
	issued, err := s.mint(&b, signer, t, claims, now, exp, agentID, taskID, renewedFrom, evType, actor, detail)
	if err != nil {
		return nil, err
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return nil, err
	}
	return issued, nil
}

// mint signs claims and queues the token's row and its audit event on b:
// whoever sends b commits them together or not at all.
func (s *Service) mint(b *pgx.Batch, signer *keyring.Signer, t *tenants.Tenant, claims *AccessClaims, now, exp time.Time,
	agentID, taskID, renewedFrom uuid.UUID, evType audit.Type, actor string, detail map[string]any) (*IssuedToken, error) {
	jti := uuid.Must(uuid.NewV7())
	claims.Issuer, claims.ID = s.Issuer(t), jti.String()
	claims.IssuedAt, claims.NotBefore, claims.Expiry = now.Unix(), now.Unix(), exp.Unix()
	token, err := SignAccessToken(signer, claims)
	if err != nil {
		return nil, err
	}
	scope, _ := ParseScope(claims.Scope)
	b.Queue(`INSERT INTO tokens (tenant_id, jti, client_id, agent_id, task_id, subject, scope, audiences,
		issued_at, expires_at, renewed_from) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		t.ID, jti, claims.ClientID, nullID(agentID), nullID(taskID), claims.Subject, scope.Tokens(), claims.Audience,
		now, exp, nullID(renewedFrom))
	detail["scope"], detail["audiences"], detail["expires_at"], detail["kid"] = claims.Scope, claims.Audience, exp.UTC(), signer.KeyID()
	if renewedFrom != uuid.Nil {
		detail["renewed_from"] = renewedFrom
	}
	if err := audit.Queue(b, t.ID, audit.Event{Time: now, Type: evType, Actor: actor, Principal: claims.Subject,
		ClientID: claims.ClientID, TaskID: taskID, AgentID: agentID, TokenID: jti, Detail: detail}); err != nil {
		return nil, err
	}
	return &IssuedToken{AccessToken: token, ExpiresIn: int(exp.Sub(now).Round(time.Second) / time.Second), Scope: scope, Claims: claims}, nil
}
