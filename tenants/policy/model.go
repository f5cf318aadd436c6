// Package policy is chit's governance: what each orchestrator of a tenant
// may put in a task (scope patterns and audiences), and console users'
// roles. Decisions are made by Casbin (RBAC with domains, the domain being
// the tenant) from rules stored in PostgreSQL; every replica applies a
// change within a second through LISTEN/NOTIFY.
//
// Checks (CheckTask, HasRole) are pure in-memory lookups meant for the
// request path; changes (Grant, Revoke, AssignRole, RevokeRole) write the
// rule, its audit event and the change notification in one transaction.
package policy

import (
	"net/url"
	"strings"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"

	"github.com/chitdev/chit/internal/fault"
)

// modelText is the Casbin model: RBAC with domains, the domain being the
// tenant id.
//
// Subjects are namespaced ("client:{id}", "user:{id}", "role:{name}") so a
// client and a console user with the same id, or a client named like a
// role, can never be confused.
//
// Objects are matched with keyMatch, whose `*` matches any suffix from where
// it stands: `tickets:*` covers `tickets:read` and `tickets:` but neither
// `ticketsx` nor `tickets`. That is exactly chit's pattern semantic because
// validation allows `*` only as a pattern's last character (keyMatch2 would
// treat `:name` as a parameter, and scopes contain colons). Audiences are
// granted without any `*`, so for them keyMatch is plain equality.
//
// Roles (g, per domain) hold console users' roles, asked with HasRole. The
// matcher does not pass p rules through g: no p rule names a role today,
// and `g(r.sub, p.sub, r.dom)` costs a role-manager lookup under a lock for
// every rule of another subject, which measured 3.5 times the cost of the
// whole match and serialises concurrent checks. When console permissions
// come, give them their own matcher (m2, chosen with casbin.EnforceContext).
// The cheap comparisons come first; govaluate short-circuits.
const modelText = `
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.sub == p.sub && r.act == p.act && r.dom == p.dom && keyMatch(r.obj, p.obj)
`

// Action is what a rule allows its subject to do with its object.
type Action string

// Actions.
const (
	// ActScope: put a scope matching the rule's pattern in a task.
	ActScope Action = "scope"
	// ActAudience: put the rule's audience in a task.
	ActAudience Action = "audience"
	// ActIntrospect: call the introspection endpoint (object `*`).
	ActIntrospect Action = "introspect"
	// ActFeed: read the revocation feed (object `*`).
	ActFeed Action = "feed"
	// ActMaxTaskTTL and ActMaxDepth are an orchestrator's caps (object: the
	// cap in seconds, or a depth). They only tighten the tenant's settings;
	// CheckTask reports them, no matcher reads them.
	ActMaxTaskTTL Action = "max_task_ttl"
	ActMaxDepth   Action = "max_depth"
)

// AccessObject is the object of introspect and feed rules.
const AccessObject = "*"

// Role is a console user's role in a tenant.
type Role string

// Console roles.
const (
	RoleAdmin   Role = "admin"
	RoleAuditor Role = "auditor"
	RoleViewer  Role = "viewer"
)

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAdmin, RoleAuditor, RoleViewer:
		return r, nil
	}
	return "", fault.InvalidField("role", "must be admin, auditor or viewer")
}

// Limits on what one change may carry and on each item.
const (
	MaxPatterns        = 64
	MaxScopePattern    = 128
	MaxAudience        = 512
	maxActor           = 256
	casbinClientPrefix = "client:"
	casbinUserPrefix   = "user:"
	casbinRolePrefix   = "role:"
)

func newModel() (model.Model, error) {
	return model.NewModelFromString(modelText)
}

// newEnforcer returns an enforcer of the model holding no rules. Its
// adapter, when given, is loaded at once.
func newEnforcer(adapter *Adapter) (*casbin.Enforcer, error) {
	m, err := newModel()
	if err != nil {
		return nil, fault.Wrap(err, fault.Internal, "policy model")
	}
	var e *casbin.Enforcer
	if adapter != nil {
		e, err = casbin.NewEnforcer(m, adapter)
	} else {
		e, err = casbin.NewEnforcer(m)
	}
	if err != nil {
		return nil, err
	}
	// Rules change only through Service, which writes them with their audit
	// event; the enforcer never writes through its adapter.
	e.EnableAutoSave(false)
	return e, nil
}

// CheckScopePattern validates a grantable scope pattern: 1 to 128 bytes of
// printable ASCII without space, quote or backslash (RFC 6749 §3.3), with
// `*` allowed only as the last character.
func CheckScopePattern(p string) error {
	if p == "" || len(p) > MaxScopePattern {
		return fault.InvalidField("scopes", "a scope pattern is 1 to %d bytes", MaxScopePattern)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return fault.InvalidField("scopes", "scope pattern %q: printable ASCII without spaces, quotes or backslashes", p)
		}
		if c == '*' && i != len(p)-1 {
			return fault.InvalidField("scopes", "scope pattern %q: `*` is allowed only as the last character", p)
		}
	}
	return nil
}

// CheckAudience validates a grantable audience: an absolute http or https
// URI of at most 512 bytes, without fragment, whitespace or `*`.
func CheckAudience(a string) error {
	if a == "" || len(a) > MaxAudience {
		return fault.InvalidField("audiences", "an audience is 1 to %d bytes", MaxAudience)
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' || c == '*' {
			return fault.InvalidField("audiences", "audience %q: printable ASCII without spaces, quotes, backslashes or `*`", a)
		}
	}
	u, err := url.Parse(a)
	if err != nil || !u.IsAbs() || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.Opaque != "" || u.Fragment != "" || strings.Contains(a, "#") {
		return fault.InvalidField("audiences", "audience %q: must be an absolute http or https URI without fragment", a)
	}
	return nil
}

// checkUserID validates a console user's id: an opaque identifier, so that
// an e-mail address (PII) never lands in a rule or an audit event.
func checkUserID(id string) error {
	if id == "" || len(id) > 128 {
		return fault.InvalidField("user", "a user id is 1 to 128 characters")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '.' || c == '_' || c == ':' || c == '-')
		if !ok {
			return fault.InvalidField("user", "a user id is letters, digits and . _ : - (an opaque id, not an e-mail address)")
		}
	}
	return nil
}

// validClientID mirrors the clients table's constraint; an id outside it
// cannot name a client.
func validClientID(id string) bool {
	if id == "" || len(id) > 63 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && c == '-') {
			return false
		}
	}
	return true
}

func checkActor(actor string) error {
	if actor == "" || len(actor) > maxActor {
		return fault.New(fault.Internal, "policy change without an actor")
	}
	return nil
}

// normalize validates and deduplicates a change's items, keeping order.
func normalize(scopes, audiences []string) (s, a []string, err error) {
	if len(scopes) == 0 && len(audiences) == 0 {
		return nil, nil, fault.New(fault.Invalid, "give at least one scope pattern or audience")
	}
	if len(scopes) > MaxPatterns || len(audiences) > MaxPatterns {
		return nil, nil, fault.New(fault.Invalid, "at most %d scope patterns and %d audiences per change", MaxPatterns, MaxPatterns)
	}
	for _, p := range scopes {
		if err := CheckScopePattern(p); err != nil {
			return nil, nil, err
		}
	}
	for _, aud := range audiences {
		if err := CheckAudience(aud); err != nil {
			return nil, nil, err
		}
	}
	return dedupe(scopes), dedupe(audiences), nil
}

func dedupe(in []string) []string {
	seen := make(map[string]struct{}, len(in))
	out := make([]string, 0, len(in))
	for _, v := range in {
		if _, ok := seen[v]; !ok {
			seen[v] = struct{}{}
			out = append(out, v)
		}
	}
	return out
}
