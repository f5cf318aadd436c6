package keyring

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/internal/pgtest"
)

func newKEK(t *testing.T) *KEK {
	t.Helper()
	raw := make([]byte, KEKSize)
	_, _ = rand.Read(raw)
	k, err := NewKEK(raw)
	require.NoError(t, err)
	return k
}

// newTenant inserts a bare tenant row and its first key.
func newTenant(t *testing.T, db *pgstore.DB, ring *Keyring, slug string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	id := uuid.New()
	err := db.InTenantTx(ctx, id, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO tenants (id, slug, trust_domain) VALUES ($1, $2, $2 || '.example')`, id, slug); err != nil {
			return err
		}
		_, err := ring.CreateTx(ctx, tx, id)
		return err
	})
	require.NoError(t, err)
	return id
}

func TestPrivateKeyNeverLeaves(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pgtest.Open(t)
	ring := New(db, newKEK(t), clock.System)
	tenant := newTenant(t, db, ring, "acme")

	signer, err := ring.Signer(ctx, tenant)
	require.NoError(t, err)
	seed := signer.priv.Seed()
	forms := [][]byte{
		seed, []byte(signer.priv),
		[]byte(base64.RawURLEncoding.EncodeToString(seed)), []byte(base64.StdEncoding.EncodeToString(seed)),
		[]byte(hex.EncodeToString(seed)), []byte(fmt.Sprint([]byte(seed))),
	}
	requireAbsent := func(t *testing.T, what string, out []byte) {
		t.Helper()
		for _, f := range forms {
			require.False(t, bytes.Contains(out, f), "private key material reached %s", what)
		}
	}

	t.Run("json", func(t *testing.T) {
		out, err := json.Marshal(map[string]any{"signer": signer, "ptr": &signer})
		require.NoError(t, err)
		requireAbsent(t, "JSON", out)
		require.Contains(t, string(out), signer.KeyID())
	})
	t.Run("fmt", func(t *testing.T) {
		out := fmt.Sprintf("%v %+v %#v %s", signer, signer, signer, signer)
		requireAbsent(t, "fmt", []byte(out))
	})
	t.Run("slog", func(t *testing.T) {
		var buf bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&buf, nil))
		log.Info("signing", "signer", signer, "kek", ring.kek)
		slog.New(slog.NewTextHandler(&buf, nil)).Info("signing", "signer", signer)
		requireAbsent(t, "logs", buf.Bytes())
	})
	t.Run("jwks", func(t *testing.T) {
		keys, err := ring.Published(ctx, tenant)
		require.NoError(t, err)
		out, err := json.Marshal(JWKS(keys))
		require.NoError(t, err)
		requireAbsent(t, "the JWKS", out)
		var set struct{ Keys []map[string]any }
		require.NoError(t, json.Unmarshal(out, &set))
		require.Len(t, set.Keys, 1)
		require.NotContains(t, set.Keys[0], "d", "a JWK must carry no private parameter")
		require.Equal(t, "OKP", set.Keys[0]["kty"])
		require.Equal(t, "Ed25519", set.Keys[0]["crv"])
		require.Equal(t, "EdDSA", set.Keys[0]["alg"])
	})
	t.Run("database", func(t *testing.T) {
		var sealed, public []byte
		err := db.InTenantTx(ctx, tenant, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT sealed_private_key, public_key FROM signing_keys`).Scan(&sealed, &public)
		})
		require.NoError(t, err)
		requireAbsent(t, "the database", sealed)
		require.Equal(t, []byte(signer.Public().(ed25519.PublicKey)), public)
	})
	t.Run("signatures verify with the published key", func(t *testing.T) {
		msg := []byte("header.payload")
		sig, err := signer.Sign(rand.Reader, msg, crypto.Hash(0))
		require.NoError(t, err)
		keys, err := ring.Published(ctx, tenant)
		require.NoError(t, err)
		require.True(t, ed25519.Verify(keys[0].Key, msg, sig))
		require.Equal(t, keys[0].KeyID, signer.KeyID())
	})
}

func TestSealedKeysAreBoundToKEKAndRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pgtest.Open(t)
	ring := New(db, newKEK(t), clock.System)
	a := newTenant(t, db, ring, "tenant-a")
	b := newTenant(t, db, ring, "tenant-b")

	t.Run("another KEK cannot open the key", func(t *testing.T) {
		_, err := New(db, newKEK(t), clock.System).Signer(ctx, a)
		require.ErrorContains(t, err, "CHIT_KEK_FILE")
	})
	t.Run("a sealed key copied to another tenant does not open", func(t *testing.T) {
		var sealed []byte
		require.NoError(t, db.InTenantTx(ctx, a, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT sealed_private_key FROM signing_keys`).Scan(&sealed)
		}))
		require.NoError(t, db.InTenantTx(ctx, b, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE signing_keys SET sealed_private_key = $1`, sealed)
			return err
		}))
		_, err := New(db, ring.kek, clock.System).Signer(ctx, b)
		require.Error(t, err)
	})
}

func TestKEKFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "kek")
	require.NoError(t, GenerateKEKFile(path))
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	k1, err := LoadKEK(path)
	require.NoError(t, err)
	k2, err := LoadKEK(path)
	require.NoError(t, err)
	require.Equal(t, k1.ID(), k2.ID())
	require.Error(t, GenerateKEKFile(path), "an existing KEK is never overwritten")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "short"), []byte(base64.StdEncoding.EncodeToString([]byte("short"))), 0o600))
	_, err = LoadKEK(filepath.Join(dir, "short"))
	require.ErrorContains(t, err, "32 bytes")
	_, err = LoadKEK("")
	require.ErrorContains(t, err, "CHIT_KEK_FILE")
	require.NotContains(t, k1.String(), base64.StdEncoding.EncodeToString(make([]byte, 4)))
}

func TestKeyIDIsThumbprint(t *testing.T) {
	t.Parallel()
	// RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key.
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	require.NoError(t, err)
	kid, err := KeyID(ed25519.PublicKey(x))
	require.NoError(t, err)
	require.Equal(t, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", kid)
}
