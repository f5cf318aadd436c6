package oauth

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/keyring"
	"github.com/chitdev/chit/verify"
)

// TaskGrant is governance's answer to "may this orchestrator create a task
// with these scopes and audiences?".
type TaskGrant struct {
	Allowed bool
	Missing []string // the first scopes or audiences no rule covers
	// MissingAudience is true when the first missing item is an audience.
	MissingAudience bool
	Rule            string // the rule that decided
	MissingRule     string // when refused, the rule that would have allowed the first missing item
	Closest         string // the closest rule that exists, for the why-denied trace

	// The orchestrator's own caps (zero: none) and their rules; they only
	// tighten the tenant's settings.
	MaxTaskTTL     time.Duration
	MaxTaskTTLRule string
	MaxDepth       int
	MaxDepthRule   string
}

// Client capabilities a Governor decides with CheckClient.
const (
	CapIntrospect = "introspect"
	CapFeed       = "feed"
)

// Governor decides what an orchestrator may grant and which clients may
// use tenant-wide capabilities. Its checks are in-memory (about a
// microsecond), so every path that grants authority asks again, the fast
// paths included: a revoked grant takes effect for the next request.
type Governor interface {
	// CheckTask: may clientID's tasks carry these scopes and audiences
	// now? With none, it only reports the client's caps.
	CheckTask(tenantID uuid.UUID, clientID string, scopes, audiences []string) TaskGrant
	// CheckClient: may clientID use capability (CapIntrospect, CapFeed)?
	CheckClient(tenantID uuid.UUID, clientID string, capability string) TaskGrant
}

// effectiveDepth is the tenant's maximum depth tightened by the
// orchestrator's cap, and the rule to name when it is the cap that binds.
func effectiveDepth(tenantMax int, g TaskGrant) (int, string) {
	if g.MaxDepth > 0 && g.MaxDepth < tenantMax {
		return g.MaxDepth, g.MaxDepthRule
	}
	return tenantMax, ""
}

// Service issues, exchanges, introspects and revokes chit credentials.
type Service struct {
	db      *pgstore.DB
	keys    *keyring.Keyring
	clock   clock.Clock
	policy  Governor
	log     *slog.Logger
	baseURL string

	// Published public keys by tenant, refreshed on an unknown kid at most
	// once a second: verification needs no database round trip.
	pubMu   sync.Mutex
	pubs    map[uuid.UUID]*pubSet
	signers map[uuid.UUID]signerEntry

	provider   *fosite.Fosite
	identities identities
	// verified remembers access tokens whose signature verified (see verifyAccess).
	verified *verify.Cache
}

// signerEntry is a tenant's active signer as last read. A rotation takes
// effect here within signerFreshness; the old key stays published far longer.
type signerEntry struct {
	signer  *keyring.Signer
	fetched time.Time
}

const signerFreshness = time.Second

// verifiedTokens bounds the verified-token cache: ≈ 1 KB a token.
const verifiedTokens = 50_000

type pubSet struct {
	byKID   map[string]ed25519.PublicKey
	fetched time.Time
}

// Config assembles a Service.
type Config struct {
	DB      *pgstore.DB
	Keys    *keyring.Keyring
	Clock   clock.Clock
	Policy  Governor
	Logger  *slog.Logger
	BaseURL string // the public URL issuers are built from
}

// NewService returns a Service.
func NewService(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System
	}
	s := &Service{db: cfg.DB, keys: cfg.Keys, clock: cfg.Clock, policy: cfg.Policy, log: cfg.Logger,
		baseURL: cfg.BaseURL, pubs: map[uuid.UUID]*pubSet{}, signers: map[uuid.UUID]signerEntry{},
		verified: verify.NewCache(verifiedTokens)}
	s.provider = newProvider(s)
	return s
}

// Issuer is the tenant's issuer URL.
func (s *Service) Issuer(t *tenants.Tenant) string { return t.Issuer(s.baseURL) }

// TokenEndpoint is the tenant's token endpoint URL.
func (s *Service) TokenEndpoint(t *tenants.Tenant) string { return s.Issuer(t) + PathToken }

// APIAudience is the audience of clients' own tokens: the tenant's API.
func (s *Service) APIAudience(t *tenants.Tenant) string { return s.Issuer(t) + "/v1" }

// assertionAudiences are what an assertion's `aud` may name.
func (s *Service) assertionAudiences(t *tenants.Tenant) []string {
	return []string{s.TokenEndpoint(t), s.Issuer(t)}
}

// signer is the tenant's active signing key, read through tx.
func (s *Service) signer(ctx context.Context, tx pgx.Tx, t *tenants.Tenant) (*keyring.Signer, error) {
	now := s.clock.Now()
	s.pubMu.Lock()
	e, ok := s.signers[t.ID]
	s.pubMu.Unlock()
	if ok && now.Sub(e.fetched) < signerFreshness {
		return e.signer, nil
	}
	var signer *keyring.Signer
	var err error
	if tx != nil {
		signer, err = s.keys.SignerTx(ctx, tx, t.ID)
	} else {
		signer, err = s.keys.Signer(ctx, t.ID)
	}
	if err != nil {
		return nil, err
	}
	s.pubMu.Lock()
	s.signers[t.ID] = signerEntry{signer: signer, fetched: now}
	s.pubMu.Unlock()
	return signer, nil
}

// keyLookup finds a tenant's published key by kid, refreshing the cache on
// a miss no more than once a second (so forged kids cannot flood the
// database). tx, when not nil, is the request's transaction: a request
// holding a connection never waits for a second one.
func (s *Service) keyLookup(ctx context.Context, tx pgx.Tx, t *tenants.Tenant) KeyLookup {
	return func(kid string) ed25519.PublicKey {
		s.pubMu.Lock()
		set := s.pubs[t.ID]
		if set != nil {
			if k, ok := set.byKID[kid]; ok {
				s.pubMu.Unlock()
				return k
			}
			if s.clock.Now().Sub(set.fetched) < time.Second {
				s.pubMu.Unlock()
				return nil
			}
		}
		s.pubMu.Unlock()
		var keys []keyring.PublicKey
		var err error
		if tx != nil {
			keys, err = s.keys.PublishedTx(ctx, tx)
		} else {
			keys, err = s.keys.Published(ctx, t.ID)
		}
		if err != nil {
			s.log.WarnContext(ctx, "load published keys", "tenant", t.Slug, "error", err)
			return nil
		}
		fresh := &pubSet{byKID: keyring.ByKID(keys), fetched: s.clock.Now()}
		s.pubMu.Lock()
		s.pubs[t.ID] = fresh
		s.pubMu.Unlock()
		return fresh.byKID[kid]
	}
}

// RecordDenial stores d's why-denied trace and its audit event in a
// transaction of their own (the refused request's own changes roll back),
// and sets d.ID once the trace is stored: a denial_id always names a trace.
func (s *Service) RecordDenial(ctx context.Context, t *tenants.Tenant, endpoint string, d *Denial) error {
	id := uuid.Must(uuid.NewV7())
	now := s.clock.Now()
	err := s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO denials (tenant_id, id, occurred_at, endpoint, check_name, reason, expected, presented,
			                     rule, revocation_id, client_id, agent_id, task_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			t.ID, id, now, clip(endpoint), string(d.Check), clip(d.Reason), clip(d.Expected), clip(d.Presented),
			nullText(clip(d.Rule)), nullID(d.RevocationID), nullText(clip(d.ClientID)), nullID(d.AgentID), nullID(d.TaskID))
		if err != nil {
			return err
		}
		actor := "anonymous"
		switch {
		case d.AgentID != uuid.Nil:
			actor = "agent:" + d.AgentID.String()
		case d.ClientID != "":
			actor = "client:" + clip(d.ClientID)
		}
		return audit.Append(ctx, tx, t.ID, audit.Event{
			Time: now, Type: audit.Denied, Outcome: audit.Denial, Actor: actor, ClientID: clip(d.ClientID),
			TaskID: d.TaskID, AgentID: d.AgentID, DenialID: id, RevocationID: d.RevocationID,
			Detail: map[string]any{"endpoint": clip(endpoint), "check": string(d.Check)},
		})
	})
	if err != nil {
		return err
	}
	d.ID = id
	return nil
}

// DenialTrace is a recorded denial as GET /v1/denials/{id} shows it.
type DenialTrace struct {
	ID           uuid.UUID  `json:"denial_id"`
	Time         time.Time  `json:"time"`
	Tenant       string     `json:"tenant"`
	Endpoint     string     `json:"endpoint"`
	Check        string     `json:"check"`
	Reason       string     `json:"reason"`
	Expected     string     `json:"expected"`
	Presented    string     `json:"presented"`
	Rule         *string    `json:"rule,omitempty"`
	RevocationID *uuid.UUID `json:"revocation_id,omitempty"`
	AgentID      *uuid.UUID `json:"agent_id,omitempty"`
	TaskID       *uuid.UUID `json:"task_id,omitempty"`
	ClientID     *string    `json:"client_id,omitempty"`
}

// Denial returns a trace readable by caller: the refused client itself, or
// the orchestrator owning the task concerned. Others get NotFound.
func (s *Service) Denial(ctx context.Context, t *tenants.Tenant, caller *Caller, id uuid.UUID) (*DenialTrace, error) {
	var d DenialTrace
	var taskOwner *string
	err := s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
			SELECT d.id, d.occurred_at, d.endpoint, d.check_name, d.reason, d.expected, d.presented, d.rule,
			       d.revocation_id, d.agent_id, d.task_id, d.client_id, tk.client_id
			  FROM denials d LEFT JOIN tasks tk ON tk.tenant_id = d.tenant_id AND tk.id = d.task_id
			 WHERE d.id = $1`, id).Scan(&d.ID, &d.Time, &d.Endpoint, &d.Check, &d.Reason, &d.Expected,
			&d.Presented, &d.Rule, &d.RevocationID, &d.AgentID, &d.TaskID, &d.ClientID, &taskOwner)
	})
	if err != nil {
		return nil, err
	}
	allowed := caller.AgentID == uuid.Nil && ((d.ClientID != nil && *d.ClientID == caller.ClientID) ||
		(taskOwner != nil && *taskOwner == caller.ClientID))
	if caller.AgentID != uuid.Nil {
		allowed = d.AgentID != nil && *d.AgentID == caller.AgentID
	}
	if !allowed {
		return nil, errNotFound("denial")
	}
	d.Tenant = string(t.Slug)
	d.Time = d.Time.UTC()
	return &d, nil
}

// clip makes caller-influenced text storable: valid UTF-8 without NUL
// (PostgreSQL text holds neither) and at most 512 bytes, cut between runes.
func clip(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if len(s) > 512 {
		cut := 512
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

func nullText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}
