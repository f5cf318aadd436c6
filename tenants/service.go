package tenants

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/tenants/keyring"
)

// Service creates, reads and changes tenants.
type Service struct {
	db    *pgstore.DB
	keys  *keyring.Keyring
	clock clock.Clock

	// Tenants by slug, as last read. Every request resolves its tenant, so
	// this spares a round trip each; a change made elsewhere (the CLI,
	// another replica) is seen within cacheFreshness.
	mu    sync.Mutex
	cache map[string]cachedTenant
}

type cachedTenant struct {
	t    Tenant
	read time.Time
}

// cacheFreshness bounds how stale a replica's view of a tenant may be
// (SPEC: changes apply on every replica within 1 s).
const cacheFreshness = 500 * time.Millisecond

// NewService returns a tenant service.
func NewService(db *pgstore.DB, keys *keyring.Keyring, clk clock.Clock) *Service {
	return &Service{db: db, keys: keys, clock: clk, cache: map[string]cachedTenant{}}
}

// DB is the database the service works in.
func (s *Service) DB() *pgstore.DB { return s.db }

// Keys is the keyring the service creates tenants' keys in.
func (s *Service) Keys() *keyring.Keyring { return s.keys }

// CreateParams describe a new tenant; a zero Settings means the defaults.
type CreateParams struct {
	Slug        string
	TrustDomain string
	Settings    *Settings
}

// Create registers a tenant and its first signing key in one transaction.
// Returns a fault.Invalid error for a bad slug, trust domain or setting, and
// fault.Conflict when the slug or trust domain is taken.
func (s *Service) Create(ctx context.Context, p CreateParams) (*Tenant, error) {
	slug, err := ParseSlug(p.Slug)
	if err != nil {
		return nil, err
	}
	td, err := ParseTrustDomain(p.TrustDomain)
	if err != nil {
		return nil, err
	}
	settings := DefaultSettings()
	if p.Settings != nil {
		settings = *p.Settings
	}
	if err := settings.Validate(); err != nil {
		return nil, err
	}
	t := &Tenant{ID: uuid.New(), Slug: slug, TrustDomain: td, Settings: settings}
	t.CreatedAt = s.clock.Now().Truncate(time.Microsecond)
	t.UpdatedAt = t.CreatedAt
	err = s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO tenants (id, slug, trust_domain, token_ttl_seconds, max_renewals,
			                     max_depth, liveness_seconds, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
			t.ID, string(t.Slug), t.TrustDomain.Name(), int(settings.TokenTTL/time.Second),
			settings.MaxRenewals, settings.MaxDepth, int(settings.Liveness/time.Second), t.CreatedAt)
		if err != nil {
			if fault.KindOf(pgstore.Interpret(err)) == fault.Conflict {
				return fault.Wrap(err, fault.Conflict, "a tenant with slug %q or trust domain %q exists already", t.Slug, t.TrustDomain.Name())
			}
			return err
		}
		key, err := s.keys.CreateTx(ctx, tx, t.ID)
		if err != nil {
			return err
		}
		return audit.Append(ctx, tx, t.ID, audit.Event{Time: t.CreatedAt, Type: audit.TenantCreated, Actor: operator,
			Detail: map[string]any{"slug": string(t.Slug), "trust_domain": t.TrustDomain.Name(), "kid": key.KeyID,
				"settings": settingsDetail(settings)}})
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Update changes a tenant's settings. Returns fault.NotFound for an unknown
// slug and fault.Invalid for a setting out of bounds.
func (s *Service) Update(ctx context.Context, slug string, change SettingsChange) (*Tenant, error) {
	t, err := s.BySlug(ctx, slug)
	if err != nil {
		return nil, err
	}
	settings := change.Apply(t.Settings)
	if err := settings.Validate(); err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Microsecond)
	err = s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			UPDATE tenants SET token_ttl_seconds = $2, max_renewals = $3, max_depth = $4,
			                   liveness_seconds = $5, updated_at = $6
			 WHERE id = $1`,
			t.ID, int(settings.TokenTTL/time.Second), settings.MaxRenewals, settings.MaxDepth,
			int(settings.Liveness/time.Second), now)
		if err != nil {
			return err
		}
		return audit.Append(ctx, tx, t.ID, audit.Event{Time: now, Type: audit.TenantUpdated, Actor: operator,
			Detail: map[string]any{"before": settingsDetail(t.Settings), "after": settingsDetail(settings)}})
	})
	s.forget(t.Slug)
	if err != nil {
		return nil, err
	}
	t.Settings, t.UpdatedAt = settings, now
	return t, nil
}

// BySlug finds a tenant. Returns fault.NotFound when there is none (and for
// a string that cannot be a slug at all).
func (s *Service) BySlug(ctx context.Context, slug string) (*Tenant, error) {
	if _, err := ParseSlug(slug); err != nil {
		return nil, fault.New(fault.NotFound, "no such tenant")
	}
	now := time.Now() // wall time, not the domain clock: staleness is real elapsed time
	s.mu.Lock()
	c, ok := s.cache[slug]
	s.mu.Unlock()
	if ok && now.Sub(c.read) < cacheFreshness {
		t := c.t // a copy: callers may change theirs
		return &t, nil
	}
	rows, err := s.db.Pool.Query(ctx, selectTenant+` WHERE slug = $1`, slug)
	if err != nil {
		return nil, pgstore.Interpret(err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, scanTenant)
	if err != nil {
		if fault.KindOf(pgstore.Interpret(err)) == fault.NotFound {
			return nil, fault.New(fault.NotFound, "no such tenant")
		}
		return nil, pgstore.Interpret(err)
	}
	s.mu.Lock()
	s.cache[slug] = cachedTenant{t: *t, read: now}
	s.mu.Unlock()
	return t, nil
}

// forget drops a tenant from the cache after this replica changed it.
func (s *Service) forget(slug Slug) {
	s.mu.Lock()
	delete(s.cache, string(slug))
	s.mu.Unlock()
}

// List returns every tenant, by slug.
func (s *Service) List(ctx context.Context) ([]*Tenant, error) {
	var list []*Tenant
	err := s.db.InTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, selectTenant+` ORDER BY slug`)
		if err != nil {
			return err
		}
		list, err = pgx.CollectRows(rows, scanTenant)
		return err
	})
	return list, err
}

// RotateKey gives the tenant a new signing key; the old one stays published
// until no token it signed can still be valid.
func (s *Service) RotateKey(ctx context.Context, slug string) (*Tenant, keyring.PublicKey, error) {
	return s.RotateKeyBy(ctx, slug, operator)
}

// RotateKeyBy is RotateKey done by actor (a console user, say), who is named
// in the audit event.
func (s *Service) RotateKeyBy(ctx context.Context, slug, actor string) (*Tenant, keyring.PublicKey, error) {
	t, err := s.BySlug(ctx, slug)
	if err != nil {
		return nil, keyring.PublicKey{}, err
	}
	k, err := s.keys.Rotate(ctx, t.ID, t.KeyPublishWindow(), func(tx pgx.Tx, created keyring.PublicKey, retired []string) error {
		return audit.Append(ctx, tx, t.ID, audit.Event{Time: s.clock.Now(), Type: audit.KeyRotated, Actor: actor,
			Detail: map[string]any{"kid": created.KeyID, "retired_kids": retired,
				"published_until": s.clock.Now().Add(t.KeyPublishWindow()).UTC()}})
	})
	return t, k, err
}

// operator is the actor of tenant changes: today they come only from the
// chit CLI, run by the platform operator.
const operator = "operator:cli"

func settingsDetail(s Settings) map[string]any {
	return map[string]any{"token_ttl_seconds": int(s.TokenTTL / time.Second), "max_renewals": s.MaxRenewals,
		"max_depth": s.MaxDepth, "liveness_seconds": int(s.Liveness / time.Second)}
}

const selectTenant = `
	SELECT id, slug, trust_domain, token_ttl_seconds, max_renewals, max_depth,
	       liveness_seconds, created_at, updated_at
	  FROM tenants`

func scanTenant(row pgx.CollectableRow) (*Tenant, error) {
	var t Tenant
	var slug, td string
	var ttl, liveness int
	err := row.Scan(&t.ID, &slug, &td, &ttl, &t.Settings.MaxRenewals, &t.Settings.MaxDepth,
		&liveness, &t.CreatedAt, &t.UpdatedAt)
	if err != nil {
		return nil, err
	}
	t.Slug = Slug(slug)
	if t.TrustDomain, err = spiffeid.TrustDomainFromString(td); err != nil {
		return nil, fault.Wrap(err, fault.Internal, "stored trust domain is invalid")
	}
	t.Settings.TokenTTL = time.Duration(ttl) * time.Second
	t.Settings.Liveness = time.Duration(liveness) * time.Second
	return &t, nil
}
