// Package tenants is the tenancy domain: each tenant's slug, trust domain and
// credential settings, and the service that creates and changes them. Every
// other domain object belongs to exactly one tenant.
package tenants

import (
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/chitdev/chit/internal/fault"
)

// Slug names a tenant in URLs (/t/{slug}): a DNS label, lower case.
type Slug string

var slugPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ParseSlug validates s as a tenant slug.
func ParseSlug(s string) (Slug, error) {
	if !slugPattern.MatchString(s) {
		return "", fault.InvalidField("slug", "must be 1 to 63 lower-case letters, digits or inner hyphens")
	}
	return Slug(s), nil
}

func (s Slug) String() string { return string(s) }

// ParseTrustDomain validates a SPIFFE trust domain name such as acme.example.
// It takes the bare name only: a spiffe:// URI is refused rather than guessed at.
func ParseTrustDomain(s string) (spiffeid.TrustDomain, error) {
	if strings.Contains(s, "/") || strings.Contains(s, ":") {
		return spiffeid.TrustDomain{}, fault.InvalidField("trust_domain", "must be a bare trust domain name such as acme.example, without scheme, port or path")
	}
	td, err := spiffeid.TrustDomainFromString(s)
	if err != nil {
		return spiffeid.TrustDomain{}, fault.InvalidField("trust_domain", "is not a valid SPIFFE trust domain: %v", err)
	}
	return td, nil
}

// Settings are a tenant's credential limits.
type Settings struct {
	TokenTTL    time.Duration // lifetime of an access token, before the task deadline caps it
	MaxRenewals int           // renewals per agent after its first exchange
	MaxDepth    int           // the longest lineage of agents allowed
	Liveness    time.Duration // an agent silent this long is revoked
}

// Bounds of the settings; the database checks the same ranges.
const (
	MinTokenTTL    = 30 * time.Second
	MaxTokenTTL    = time.Hour
	MaxMaxRenewals = 10000
	MaxMaxDepth    = 16
	MinLiveness    = 10 * time.Second
	MaxLiveness    = 24 * time.Hour
)

// DefaultSettings are the SPEC defaults: 5m, 10 renewals, depth 3, 90s.
func DefaultSettings() Settings {
	return Settings{TokenTTL: 5 * time.Minute, MaxRenewals: 10, MaxDepth: 3, Liveness: 90 * time.Second}
}

// Validate checks every setting against its bounds.
func (s Settings) Validate() error {
	switch {
	case s.TokenTTL < MinTokenTTL || s.TokenTTL > MaxTokenTTL || s.TokenTTL%time.Second != 0:
		return fault.InvalidField("token_ttl", "must be whole seconds between %s and %s", MinTokenTTL, MaxTokenTTL)
	case s.MaxRenewals < 0 || s.MaxRenewals > MaxMaxRenewals:
		return fault.InvalidField("max_renewals", "must be between 0 and %d", MaxMaxRenewals)
	case s.MaxDepth < 1 || s.MaxDepth > MaxMaxDepth:
		return fault.InvalidField("max_depth", "must be between 1 and %d", MaxMaxDepth)
	case s.Liveness < MinLiveness || s.Liveness > MaxLiveness || s.Liveness%time.Second != 0:
		return fault.InvalidField("liveness", "must be whole seconds between %s and %s", MinLiveness, MaxLiveness)
	}
	return nil
}

// SettingsChange is a partial update: nil fields keep their value.
type SettingsChange struct {
	TokenTTL    *time.Duration
	MaxRenewals *int
	MaxDepth    *int
	Liveness    *time.Duration
}

// Apply returns s with the change applied.
func (c SettingsChange) Apply(s Settings) Settings {
	if c.TokenTTL != nil {
		s.TokenTTL = *c.TokenTTL
	}
	if c.MaxRenewals != nil {
		s.MaxRenewals = *c.MaxRenewals
	}
	if c.MaxDepth != nil {
		s.MaxDepth = *c.MaxDepth
	}
	if c.Liveness != nil {
		s.Liveness = *c.Liveness
	}
	return s
}

// Tenant is an isolated customer with its own trust domain and keys.
type Tenant struct {
	ID          uuid.UUID
	Slug        Slug
	TrustDomain spiffeid.TrustDomain
	Settings    Settings
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Issuer is the tenant's issuer URL under baseURL (no trailing slash).
func (t *Tenant) Issuer(baseURL string) string {
	return strings.TrimRight(baseURL, "/") + "/t/" + string(t.Slug)
}

// KeyPublishWindow is how long a retired signing key must stay published:
// the longest a token it signed can live, plus verifiers' clock skew and the
// moment other replicas may still sign with it after a rotation.
func (t *Tenant) KeyPublishWindow() time.Duration {
	return t.Settings.TokenTTL + 30*time.Second + time.Minute
}
