package oauth

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/policy"
)

// ClientKind is what a registered workload may do.
type ClientKind string

// Client kinds.
const (
	KindOrchestrator   ClientKind = "orchestrator"
	KindResourceServer ClientKind = "resource-server"
	KindAuditor        ClientKind = "auditor"
)

// ParseClientKind validates a kind.
func ParseClientKind(s string) (ClientKind, error) {
	switch k := ClientKind(s); k {
	case KindOrchestrator, KindResourceServer, KindAuditor:
		return k, nil
	}
	return "", fault.InvalidField("kind", "must be orchestrator, resource-server or auditor")
}

// Client is a registered workload that authenticates with private_key_jwt.
type Client struct {
	ID        string
	Kind      ClientKind
	Name      string
	PublicKey ed25519.PublicKey
	CreatedAt time.Time
}

// ParsePublicJWK reads an Ed25519 public JWK (OKP). A JWK holding a
// private key is refused: chit must never receive one.
func ParsePublicJWK(data []byte) (ed25519.PublicKey, error) {
	var probe map[string]any
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fault.InvalidField("jwk", "is not JSON")
	}
	if _, ok := probe["d"]; ok {
		return nil, fault.InvalidField("jwk", "holds a private key; register the public key only")
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(data); err != nil {
		return nil, fault.InvalidField("jwk", "is not a valid JWK: %v", err)
	}
	pub, ok := k.Key.(ed25519.PublicKey)
	if !ok || !k.IsPublic() {
		return nil, fault.InvalidField("jwk", "must be an OKP Ed25519 public key")
	}
	if k.Algorithm != "" && k.Algorithm != SigningAlg {
		return nil, fault.InvalidField("jwk", "alg must be EdDSA")
	}
	return pub, nil
}

// CreateClient registers a client of tenant t with its public key.
func (s *Service) CreateClient(ctx context.Context, t *tenants.Tenant, kind ClientKind, name string, pub ed25519.PublicKey, actor string) (*Client, error) {
	if len(name) == 0 || len(name) > 200 {
		return nil, fault.InvalidField("name", "must be 1 to 200 characters")
	}
	c := &Client{ID: uuid.NewString(), Kind: kind, Name: name, PublicKey: pub, CreatedAt: s.clock.Now()}
	err := s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO clients (tenant_id, id, kind, name, public_key, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, t.ID, c.ID, string(kind), name, []byte(pub), c.CreatedAt); err != nil {
			return err
		}
		if err := audit.Append(ctx, tx, t.ID, audit.Event{Time: c.CreatedAt, Type: audit.ClientCreated, Actor: actor,
			ClientID: c.ID, Detail: map[string]any{"kind": string(kind), "name_sha256": audit.Hash("client-name", name)}}); err != nil {
			return err
		}
		// A resource server may introspect and read the feed from the start:
		// its rules commit with it (and can be revoked with chit policy).
		return policy.GrantDefaultsTx(ctx, tx, t.ID, c.ID, string(kind), actor, c.CreatedAt)
	})
	if err != nil {
		return nil, err
	}
	if r, ok := s.policy.(interface {
		Refresh(context.Context, uuid.UUID)
	}); ok && kind == KindResourceServer {
		r.Refresh(ctx, t.ID) // this replica at once; the others on the notification
	}
	return c, nil
}

func (s *Service) clientTx(ctx context.Context, tx pgx.Tx, id string) (*Client, error) {
	var c Client
	var kind string
	var pub []byte
	err := tx.QueryRow(ctx, `SELECT id, kind, name, public_key, created_at FROM clients
		WHERE id = $1 AND disabled_at IS NULL`, id).Scan(&c.ID, &kind, &c.Name, &pub, &c.CreatedAt)
	if err != nil {
		return nil, err
	}
	c.Kind, c.PublicKey = ClientKind(kind), pub
	return &c, nil
}

// AuthenticateClient verifies a private_key_jwt client assertion (RFC 7523,
// EdDSA) and consumes its jti, inside tx.
func (s *Service) AuthenticateClient(ctx context.Context, tx pgx.Tx, t *tenants.Tenant, assertionType, raw string) (*Client, *Denial) {
	if assertionType != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return nil, clientDenial(CheckFormat, "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	}
	a, d := ParseAssertion(raw)
	if d != nil {
		d.OAuthError, d.Status = ErrInvalidClient, http.StatusUnauthorized
		return nil, d
	}
	if !validClientID(a.Subject()) {
		// Not even the shape of a client_id (the database would refuse the text).
		return nil, clientDenial(CheckFormat, "assertion subject is not a client_id").with("a registered client_id", a.Subject())
	}
	c, err := s.clientTx(ctx, tx, a.Subject())
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) || fault.KindOf(err) == fault.NotFound {
			return nil, clientDenial(CheckSignature, "no such client in this tenant").with("a registered client_id", a.Subject())
		}
		return nil, &Denial{Check: CheckFormat, Reason: "client lookup failed", OAuthError: "server_error", Status: 500}
	}
	v, d := a.Verify(c.PublicKey, s.assertionAudiences(t), s.clock.Now(), 5*time.Minute)
	if d != nil {
		d.ClientID, d.OAuthError, d.Status = c.ID, ErrInvalidClient, http.StatusUnauthorized
		return nil, d
	}
	if d := s.useAssertionID(ctx, tx, t, "client:"+c.ID, v.ID, v.Expiry); d != nil {
		d.ClientID, d.OAuthError, d.Status = c.ID, ErrInvalidClient, http.StatusUnauthorized
		return nil, d
	}
	return c, nil
}

// validClientID is the shape the clients table allows: ^[a-z0-9][a-z0-9-]{0,62}$.
func validClientID(id string) bool {
	if len(id) == 0 || len(id) > 63 || id[0] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// useAssertionID records an assertion's jti as used; a second use, also a
// concurrent one on another replica, is a replay.
func (s *Service) useAssertionID(ctx context.Context, tx pgx.Tx, t *tenants.Tenant, issuer, jti string, exp time.Time) *Denial {
	sum := sha256.Sum256([]byte(issuer + "\x00" + jti))
	tag, err := tx.Exec(ctx, `INSERT INTO used_assertions (tenant_id, id_hash, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, t.ID, sum[:], exp.Add(Skew))
	if err != nil {
		return &Denial{Check: CheckReplay, Reason: "could not record the assertion", OAuthError: "server_error", Status: 500}
	}
	if tag.RowsAffected() == 0 {
		return deny(CheckReplay, "assertion jti was already used")
	}
	return nil
}

func errNotFound(what string) error { return fault.New(fault.NotFound, "no such %s", what) }

// Clients lists the tenant's enabled clients, by id in byte order.
func (s *Service) Clients(ctx context.Context, t *tenants.Tenant) ([]Client, error) {
	var list []Client
	err := s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, kind, name, public_key, created_at FROM clients
			WHERE disabled_at IS NULL ORDER BY id COLLATE "C"`)
		if err != nil {
			return err
		}
		list, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Client, error) {
			var c Client
			var kind string
			var pub []byte
			err := row.Scan(&c.ID, &kind, &c.Name, &pub, &c.CreatedAt)
			c.Kind, c.PublicKey = ClientKind(kind), pub
			return c, err
		})
		return err
	})
	return list, err
}
