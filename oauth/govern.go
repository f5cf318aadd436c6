package oauth

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/policy"
)

// govern asks governance, at request time, whether the orchestrator that
// owns a task may still grant scope and auds: a revoked grant refuses the
// next launch token, exchange, renewal or delegation of tasks created
// before it. api selects the refusal's form: 403 on the API, 400
// invalid_scope (invalid_target for an audience) on the token endpoint.
func (s *Service) govern(t *tenants.Tenant, clientID string, scope Scope, auds []string, api bool) (TaskGrant, *Denial) {
	if s.policy == nil {
		d := deny(CheckPolicy, "no governance policy is configured")
		if api {
			d = apiDenial(http.StatusForbidden, CheckPolicy, d.Reason)
		}
		d.OAuthError = ErrInvalidScope
		d.ClientID = clientID
		return TaskGrant{}, d
	}
	g := s.policy.CheckTask(t.ID, clientID, scope.Tokens(), auds)
	if g.Allowed {
		return g, nil
	}
	reason := "the orchestrator's grants no longer cover what is asked"
	var d *Denial
	if api {
		d = apiDenial(http.StatusForbidden, CheckPolicy, reason)
	} else {
		d = deny(CheckPolicy, reason)
		d.OAuthError = ErrInvalidScope
		if g.MissingAudience {
			d.OAuthError = ErrInvalidTarget
		}
	}
	policyTrace(d, g)
	d.ClientID = clientID
	return g, d
}

// allowed is govern for the fast paths: false sends the request to the
// full path, which records the refusal.
func (s *Service) allowed(t *tenants.Tenant, clientID string, scope Scope, auds []string) bool {
	return s.policy != nil && s.policy.CheckTask(t.ID, clientID, scope.Tokens(), auds).Allowed
}

// checkClient asks governance whether a client may use a capability.
func (s *Service) checkClient(t *tenants.Tenant, clientID, capability string) TaskGrant {
	if s.policy == nil {
		return TaskGrant{Rule: "none"}
	}
	return s.policy.CheckClient(t.ID, clientID, capability)
}

// policyTrace fills a policy denial's expected, presented and rule: the
// rule that was missing and the closest rule that exists.
func policyTrace(d *Denial, g TaskGrant) {
	d.Expected = "a grant covering " + strings.Join(g.Missing, " ")
	d.Presented = strings.Join(g.Missing, " ")
	d.Rule = ruleTrace(g)
}

func ruleTrace(g TaskGrant) string {
	missing := g.MissingRule
	if missing == "" {
		missing = g.Rule
	}
	closest := g.Closest
	if closest == "" {
		closest = "none"
	}
	return "missing: " + missing + "; closest: " + closest
}

// depthDenial refuses a lineage deeper than the tenant's maximum, or than
// the orchestrator's own cap when that is lower (then named in the trace).
func depthDenial(d *Denial, max int, capRule string, depth int, what string) *Denial {
	d.Expected, d.Presented = "depth ≤ "+strconv.Itoa(max), "depth "+strconv.Itoa(depth)
	if capRule != "" {
		d.Reason = what + " the orchestrator's maximum depth (its cap)"
		d.Rule = capRule
	} else {
		d.Reason = what + " the tenant's maximum depth"
	}
	return d
}

// PolicyGovernor adapts the Casbin governance service (tenants/policy) to
// what issuance asks.
type PolicyGovernor struct{ P *policy.Service }

// CheckTask implements Governor.
func (g PolicyGovernor) CheckTask(tenantID uuid.UUID, clientID string, scopes, audiences []string) TaskGrant {
	return taskGrant(g.P.CheckTask(tenantID, clientID, scopes, audiences))
}

// CheckClient implements Governor.
func (g PolicyGovernor) CheckClient(tenantID uuid.UUID, clientID string, capability string) TaskGrant {
	return taskGrant(g.P.CheckClient(tenantID, clientID, policy.Action(capability)))
}

// Refresh applies a change committed by this replica at once.
func (g PolicyGovernor) Refresh(ctx context.Context, tenantID uuid.UUID) { g.P.Refresh(ctx, tenantID) }

func taskGrant(d policy.Decision) TaskGrant {
	return TaskGrant{Allowed: d.Allowed, Missing: d.Missing, MissingAudience: d.MissingAction == policy.ActAudience,
		Rule: d.Rule, MissingRule: d.MissingRule, Closest: d.Closest,
		MaxTaskTTL: d.Caps.MaxTaskTTL, MaxTaskTTLRule: d.Caps.MaxTaskTTLRule, MaxDepth: d.Caps.MaxDepth, MaxDepthRule: d.Caps.MaxDepthRule}
}
