// Package keyring is the only package that touches tenants' private signing
// keys. It creates them, seals them at rest under the key-encryption key,
// rotates them, and hands out a crypto.Signer — never key bytes.
package keyring

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
)

// Algorithm is the one JOSE algorithm chit signs with.
const Algorithm = "EdDSA"

// PublicKey is the public half of a tenant signing key.
type PublicKey struct {
	KeyID        string
	Key          ed25519.PublicKey
	CreatedAt    time.Time
	RetiredAt    *time.Time // nil while the key signs
	PublishUntil *time.Time // nil while the key signs
}

// JWK is the key as a JSON Web Key (RFC 7517, OKP/Ed25519, RFC 8037).
func (k PublicKey) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Key, KeyID: k.KeyID, Algorithm: Algorithm, Use: "sig"}
}

// JWKS is a key set as published at /t/{t}/jwks.json.
func JWKS(keys []PublicKey) jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.JWK())
	}
	return set
}

// ByKID indexes public keys by kid, the form verifiers look keys up in.
func ByKID(keys []PublicKey) map[string]ed25519.PublicKey {
	m := make(map[string]ed25519.PublicKey, len(keys))
	for _, k := range keys {
		m[k.KeyID] = k.Key
	}
	return m
}

// KeyID is the RFC 7638 thumbprint of an Ed25519 public key, base64url.
func KeyID(pub ed25519.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// Keyring manages the signing keys of every tenant.
type Keyring struct {
	db    *pgstore.DB
	kek   *KEK
	clock clock.Clock

	// Opened keys by tenant and kid. Key material never changes under a kid,
	// so entries need no invalidation; a destroyed key is simply not asked for.
	mu      sync.RWMutex
	signers map[signerKey]*Signer
}

type signerKey struct {
	tenant uuid.UUID
	kid    string
}

// New returns a keyring over db that seals keys with kek.
func New(db *pgstore.DB, kek *KEK, clk clock.Clock) *Keyring {
	return &Keyring{db: db, kek: kek, clock: clk, signers: map[signerKey]*Signer{}}
}

// CreateTx generates the tenant's first (or next) signing key inside tx,
// which must already be scoped to tenantID.
func (k *Keyring) CreateTx(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID) (PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return PublicKey{}, err
	}
	kid, err := KeyID(pub)
	if err != nil {
		return PublicKey{}, err
	}
	sealed, err := k.kek.seal(priv.Seed(), aad(tenantID, kid))
	if err != nil {
		return PublicKey{}, err
	}
	now := k.clock.Now()
	_, err = tx.Exec(ctx, `
		INSERT INTO signing_keys (tenant_id, kid, public_key, sealed_private_key, kek_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		tenantID, kid, []byte(pub), sealed, k.kek.ID(), now)
	if err != nil {
		return PublicKey{}, pgstore.Interpret(err)
	}
	return PublicKey{KeyID: kid, Key: pub, CreatedAt: now}, nil
}

// Rotate retires the tenant's active key and creates a new one. The retired
// key stays published for publishFor (the longest a token it signed can
// remain valid); its private half is destroyed at once, since it never signs
// again. record, when not nil, runs in the same transaction (the audit event).
func (k *Keyring) Rotate(ctx context.Context, tenantID uuid.UUID, publishFor time.Duration,
	record func(tx pgx.Tx, created PublicKey, retired []string) error) (PublicKey, error) {
	var created PublicKey
	err := k.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		// Serialise rotations of one tenant: two at once must not both
		// retire the same key and leave two active.
		var id uuid.UUID
		if err := tx.QueryRow(ctx, `SELECT id FROM tenants WHERE id = $1 FOR UPDATE`, tenantID).Scan(&id); err != nil {
			return err
		}
		now := k.clock.Now()
		rows, err := tx.Query(ctx, `
			UPDATE signing_keys
			   SET retired_at = $1, publish_until = $2, sealed_private_key = NULL
			 WHERE retired_at IS NULL RETURNING kid`, now, now.Add(publishFor))
		if err != nil {
			return err
		}
		retired, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if created, err = k.CreateTx(ctx, tx, tenantID); err != nil {
			return err
		}
		if record != nil {
			return record(tx, created, retired)
		}
		return nil
	})
	return created, err
}

// Signer returns the tenant's active signing key.
func (k *Keyring) Signer(ctx context.Context, tenantID uuid.UUID) (*Signer, error) {
	var s *Signer
	err := k.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		var err error
		s, err = k.SignerTx(ctx, tx, tenantID)
		return err
	})
	return s, err
}

// SignerTx is Signer inside tx, which must be scoped to tenantID: a request
// that already holds a connection never waits for a second one.
func (k *Keyring) SignerTx(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID) (*Signer, error) {
	var kid string
	var sealed []byte
	err := pgstore.Interpret(tx.QueryRow(ctx, `
			SELECT kid, sealed_private_key FROM signing_keys
			 WHERE retired_at IS NULL`).Scan(&kid, &sealed))
	if err != nil {
		if fault.KindOf(err) == fault.NotFound {
			return nil, fault.New(fault.Internal, "tenant has no active signing key")
		}
		return nil, err
	}
	sk := signerKey{tenantID, kid}
	k.mu.RLock()
	s := k.signers[sk]
	k.mu.RUnlock()
	if s != nil {
		return s, nil
	}
	seed, err := k.kek.open(sealed, aad(tenantID, kid))
	if err != nil {
		return nil, fmt.Errorf("open signing key %s (is CHIT_KEK_FILE the key it was sealed with?): %w", kid, err)
	}
	s = &Signer{kid: kid, priv: ed25519.NewKeyFromSeed(seed)}
	clear(seed)
	k.mu.Lock()
	k.signers[sk] = s
	k.mu.Unlock()
	return s, nil
}

// Published returns the keys a verifier may need now: the active key and
// every retired key whose tokens may still be valid, the active key first.
func (k *Keyring) Published(ctx context.Context, tenantID uuid.UUID) ([]PublicKey, error) {
	return k.list(ctx, tenantID, true)
}

// All returns every key the tenant ever had, the active key first: checkpoint
// verification needs keys long after their tokens expired.
func (k *Keyring) All(ctx context.Context, tenantID uuid.UUID) ([]PublicKey, error) {
	return k.list(ctx, tenantID, false)
}

func (k *Keyring) list(ctx context.Context, tenantID uuid.UUID, publishedOnly bool) ([]PublicKey, error) {
	var keys []PublicKey
	err := k.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		var err error
		keys, err = k.listTx(ctx, tx, publishedOnly)
		return err
	})
	return keys, err
}

// PublishedTx is Published inside tx, which must be scoped to the tenant.
func (k *Keyring) PublishedTx(ctx context.Context, tx pgx.Tx) ([]PublicKey, error) {
	return k.listTx(ctx, tx, true)
}

func (k *Keyring) listTx(ctx context.Context, tx pgx.Tx, publishedOnly bool) ([]PublicKey, error) {
	var keys []PublicKey
	err := func() error {
		rows, err := tx.Query(ctx, `
			SELECT kid, public_key, created_at, retired_at, publish_until
			  FROM signing_keys
			 WHERE NOT $2 OR publish_until IS NULL OR publish_until > $1
			 ORDER BY retired_at DESC NULLS FIRST, created_at DESC, kid`, k.clock.Now(), publishedOnly)
		if err != nil {
			return err
		}
		keys, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (PublicKey, error) {
			var p PublicKey
			var raw []byte
			err := row.Scan(&p.KeyID, &raw, &p.CreatedAt, &p.RetiredAt, &p.PublishUntil)
			p.Key = ed25519.PublicKey(raw)
			return p, err
		})
		return err
	}()
	return keys, pgstore.Interpret(err)
}

// aad binds a sealed key to its tenant and kid, so a sealed blob copied onto
// another row does not open.
func aad(tenantID uuid.UUID, kid string) []byte {
	return []byte("chit signing key\x00" + tenantID.String() + "\x00" + kid)
}
