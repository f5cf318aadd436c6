package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// CheckPolicy is the denial-trace check name of a policy refusal.
const CheckPolicy = "policy"

// RuleNone is Decision.Rule when no rule matched.
const RuleNone = "none"

// Decision is the answer of a check, with what a denial trace needs.
type Decision struct {
	Allowed bool
	// Check is always CheckPolicy.
	Check string
	// Missing lists the requested items no rule covers, in request order,
	// scopes first, then audiences. Empty when allowed.
	Missing []string
	// Rule is the rule that matched, as a Casbin policy line
	// ("p, client:{id}, {tenant}, {pattern}, {action}"); with several items,
	// every distinct matching rule, joined by "; ". RuleNone when denied;
	// empty when nothing was requested.
	Rule string
	// Closest is, for the first missing item, the existing rule of the
	// same client and kind nearest to it (longest common prefix), or ""
	// when the client has no rule of that kind. Other clients' rules are
	// never named: the trace is shown to the refused client's orchestrator.
	Closest string
	// MissingRule is, when denied, the rule that would have allowed the
	// first missing item, as a Casbin policy line.
	MissingRule string
	// MissingAction is the kind of the first missing item (ActScope,
	// ActAudience, ActIntrospect, ActFeed).
	MissingAction Action
	// Reason says why, in words, for the trace and logs.
	Reason string
	// Caps are the client's own caps (zero: none), reported whether or not
	// the check allowed.
	Caps Caps
}

// CheckTask decides whether clientID may create a task with these scopes
// and audiences: each scope must match a granted pattern and each audience
// equal a granted audience; a client without any scope or audience grant
// is refused. Asked with no scope and no audience, it allows and only
// reports the client's caps (Decision.Caps). It reads only memory and never fails: an internal error of
// the enforcer refuses.
func (s *Service) CheckTask(tenantID uuid.UUID, clientID string, scopes, audiences []string) Decision {
	d := Decision{Check: CheckPolicy}
	tp := (*s.state.Load())[tenantID]
	var g *clientGrants
	if tp != nil {
		g = tp.clients[clientID]
	}
	if g != nil {
		d.Caps = g.caps
	}
	if len(scopes)+len(audiences) == 0 {
		d.Allowed = true
		return d
	}
	if g == nil || len(g.scopes)+len(g.audiences) == 0 {
		d.Rule = RuleNone
		d.Missing = append(append(d.Missing, scopes...), audiences...)
		d.MissingAction = ActScope
		if len(scopes) == 0 {
			d.MissingAction = ActAudience
		}
		d.MissingRule = ruleString(casbinClientPrefix+clientID, tenantID.String(), d.Missing[0], d.MissingAction)
		d.Reason = fmt.Sprintf("client %s has no scope or audience grant in this tenant", clientID)
		return d
	}
	var matched []string
	var firstKind Action
	check := func(items []string, act Action) {
		for _, item := range items {
			ok, rule := tp.enforce(s.log, clientID, item, act)
			if !ok {
				if len(d.Missing) == 0 {
					firstKind = act
				}
				d.Missing = append(d.Missing, item)
				continue
			}
			if rule != "" && !slices.Contains(matched, rule) {
				matched = append(matched, rule)
			}
		}
	}
	check(scopes, ActScope)
	check(audiences, ActAudience)
	if len(d.Missing) > 0 {
		d.Rule = RuleNone
		first := d.Missing[0]
		d.MissingAction = firstKind
		d.MissingRule = ruleString(casbinClientPrefix+clientID, tp.domain, first, firstKind)
		candidates := g.scopes
		if firstKind == ActAudience {
			candidates = g.audiences
		}
		if c := closest(first, candidates); c != "" {
			d.Closest = ruleString(casbinClientPrefix+clientID, tp.domain, c, firstKind)
		}
		d.Reason = fmt.Sprintf("%s %q is not granted to client %s", firstKind, first, clientID)
		if n := len(d.Missing); n > 1 {
			d.Reason += fmt.Sprintf(" (and %d more)", n-1)
		}
		return d
	}
	d.Allowed = true
	d.Rule = strings.Join(matched, "; ")
	return d
}

// closest returns the candidate sharing the longest prefix with item; on a
// tie, the first (candidates come most specific first). With no shared
// prefix at all it still names the first candidate, so the trace shows
// what the client does hold. "" when there is no candidate.
func closest(item string, candidates []string) string {
	best, bestLen := "", -1
	for _, c := range candidates {
		n := commonPrefix(item, strings.TrimSuffix(c, "*"))
		if n > bestLen {
			best, bestLen = c, n
		}
	}
	return best
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
