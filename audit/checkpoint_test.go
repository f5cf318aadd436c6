package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/tenants/keyring"
)

func keyedTenant(t *testing.T, db *pgstore.DB) (uuid.UUID, *keyring.Keyring) {
	t.Helper()
	raw := make([]byte, keyring.KEKSize)
	_, _ = rand.Read(raw)
	kek, err := keyring.NewKEK(raw)
	require.NoError(t, err)
	ring := keyring.New(db, kek, clock.System)
	id := uuid.New()
	require.NoError(t, db.InTenantTx(context.Background(), id, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), `INSERT INTO tenants (id, slug, trust_domain) VALUES ($1, 'acme', 'acme.example')`, id); err != nil {
			return err
		}
		_, err := ring.CreateTx(context.Background(), tx, id)
		return err
	}))
	return id, ring
}

func trustedKeys(t *testing.T, ring *keyring.Keyring, tenant uuid.UUID) map[string]ed25519.PublicKey {
	keys, err := ring.All(context.Background(), tenant)
	require.NoError(t, err)
	return keyring.ByKID(keys)
}

func TestCheckpointsSealTheChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, ownerURL := pgtest.Open(t)
	tenant, ring := keyedTenant(t, db)

	appendEvents(t, db, tenant, 5)
	chainAll(t, db, tenant)
	cp, err := audit.Seal(ctx, db, ring, tenant, time.Now())
	require.NoError(t, err)
	require.NotNil(t, cp)
	require.EqualValues(t, 5, cp.Seq)
	again, err := audit.Seal(ctx, db, ring, tenant, time.Now())
	require.NoError(t, err)
	require.Nil(t, again, "a sealed head is not sealed twice")

	p, err := audit.VerifyCheckpoints(ctx, db, tenant, trustedKeys(t, ring, tenant))
	require.NoError(t, err)
	require.Nil(t, p)

	p, err = audit.VerifyCheckpoints(ctx, db, tenant, map[string]ed25519.PublicKey{})
	require.NoError(t, err)
	require.Contains(t, p.What, "untrusted key", "only keys the auditor trusts count")

	// A superuser forging the checkpoint's head is caught by the signature.
	su, err := pgx.Connect(ctx, ownerURL)
	require.NoError(t, err)
	defer su.Close(ctx)
	_, err = su.Exec(ctx, `SET session_replication_role = replica`)
	require.NoError(t, err)
	_, err = su.Exec(ctx, `UPDATE audit_checkpoints SET head_hash = decode(repeat('ab', 32), 'hex')`)
	require.NoError(t, err)
	p, err = audit.VerifyCheckpoints(ctx, db, tenant, trustedKeys(t, ring, tenant))
	require.NoError(t, err)
	require.Contains(t, p.What, "signature does not verify")
}
