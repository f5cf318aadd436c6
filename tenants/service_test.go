package tenants_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/keyring"
)

type testBundle struct {
	db    *pgstore.DB
	clock *clock.Manual
	svc   *tenants.Service
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db, _ := pgtest.Open(t)
	raw := make([]byte, keyring.KEKSize)
	_, _ = rand.Read(raw)
	kek, err := keyring.NewKEK(raw)
	require.NoError(t, err)
	clk := clock.NewManual(time.Now())
	return &testBundle{db: db, clock: clk, svc: tenants.NewService(db, keyring.New(db, kek, clk), clk)}
}

func TestCreateTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)

	created, err := b.svc.Create(ctx, tenants.CreateParams{Slug: "acme", TrustDomain: "acme.example"})
	require.NoError(t, err)
	require.Equal(t, tenants.DefaultSettings(), created.Settings)

	got, err := b.svc.BySlug(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, created.ID, got.ID)
	require.Equal(t, "acme.example", got.TrustDomain.Name())
	require.Equal(t, "https://chit.example/t/acme", got.Issuer("https://chit.example/"))

	keys, err := b.svc.Keys().Published(ctx, created.ID)
	require.NoError(t, err)
	require.Len(t, keys, 1, "a tenant gets its signing key at creation")

	t.Run("slug and trust domain are unique", func(t *testing.T) {
		_, err := b.svc.Create(ctx, tenants.CreateParams{Slug: "acme", TrustDomain: "other.example"})
		require.Equal(t, fault.Conflict, fault.KindOf(err))
		_, err = b.svc.Create(ctx, tenants.CreateParams{Slug: "other", TrustDomain: "acme.example"})
		require.Equal(t, fault.Conflict, fault.KindOf(err))
	})

	t.Run("an invalid trust domain is refused and creates nothing", func(t *testing.T) {
		_, err := b.svc.Create(ctx, tenants.CreateParams{Slug: "bad", TrustDomain: "spiffe://Bad Domain"})
		require.Equal(t, fault.Invalid, fault.KindOf(err))
		_, err = b.svc.BySlug(ctx, "bad")
		require.Equal(t, fault.NotFound, fault.KindOf(err))
	})

	t.Run("unknown tenant", func(t *testing.T) {
		_, err := b.svc.BySlug(ctx, "nobody")
		require.Equal(t, fault.NotFound, fault.KindOf(err))
		_, err = b.svc.BySlug(ctx, "../acme")
		require.Equal(t, fault.NotFound, fault.KindOf(err))
	})
}

func TestUpdateTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	_, err := b.svc.Create(ctx, tenants.CreateParams{Slug: "acme", TrustDomain: "acme.example"})
	require.NoError(t, err)

	ttl, depth := 2*time.Minute, 5
	updated, err := b.svc.Update(ctx, "acme", tenants.SettingsChange{TokenTTL: &ttl, MaxDepth: &depth})
	require.NoError(t, err)
	require.Equal(t, ttl, updated.Settings.TokenTTL)

	got, err := b.svc.BySlug(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, ttl, got.Settings.TokenTTL)
	require.Equal(t, 5, got.Settings.MaxDepth)
	require.Equal(t, 10, got.Settings.MaxRenewals, "unchanged settings keep their value")

	bad := 0
	_, err = b.svc.Update(ctx, "acme", tenants.SettingsChange{MaxDepth: &bad})
	require.Equal(t, fault.Invalid, fault.KindOf(err))
	got, err = b.svc.BySlug(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, 5, got.Settings.MaxDepth, "a refused change changes nothing")

	_, err = b.svc.Update(ctx, "nobody", tenants.SettingsChange{MaxDepth: &depth})
	require.Equal(t, fault.NotFound, fault.KindOf(err))
}

func TestRotateKeepsValidKeysPublished(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	acme, err := b.svc.Create(ctx, tenants.CreateParams{Slug: "acme", TrustDomain: "acme.example"})
	require.NoError(t, err)
	first, err := b.svc.Keys().Signer(ctx, acme.ID)
	require.NoError(t, err)

	_, next, err := b.svc.RotateKey(ctx, "acme")
	require.NoError(t, err)
	require.NotEqual(t, first.KeyID(), next.KeyID)

	signer, err := b.svc.Keys().Signer(ctx, acme.ID)
	require.NoError(t, err)
	require.Equal(t, next.KeyID, signer.KeyID(), "new tokens are signed with the new key")

	published := kids(t, b, acme.ID)
	require.Equal(t, []string{next.KeyID, first.KeyID()}, published,
		"the retired key stays published while tokens it signed may be valid")

	b.clock.Advance(acme.Settings.TokenTTL)
	require.Equal(t, []string{next.KeyID, first.KeyID()}, kids(t, b, acme.ID), "still valid tokens, still published")

	b.clock.Advance(acme.KeyPublishWindow() - acme.Settings.TokenTTL + time.Second)
	require.Equal(t, []string{next.KeyID}, kids(t, b, acme.ID), "unpublished once no token it signed can be valid")

	all, err := b.svc.Keys().All(ctx, acme.ID)
	require.NoError(t, err)
	require.Len(t, all, 2, "public keys are kept for ever")

	var sealed []byte
	err = b.db.InTenantTx(ctx, acme.ID, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT sealed_private_key FROM signing_keys WHERE kid = $1`, first.KeyID()).Scan(&sealed)
	})
	require.NoError(t, err)
	require.Nil(t, sealed, "a retired key's private half is destroyed")
}

func TestConcurrentRotationsLeaveOneActiveKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	acme, err := b.svc.Create(ctx, tenants.CreateParams{Slug: "acme", TrustDomain: "acme.example"})
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := b.svc.RotateKey(ctx, "acme")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	all, err := b.svc.Keys().All(ctx, acme.ID)
	require.NoError(t, err)
	require.Len(t, all, 9)
	active := 0
	for _, k := range all {
		if k.RetiredAt == nil {
			active++
		}
	}
	require.Equal(t, 1, active)
}

func TestRowLevelSecurityIsolatesTenants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	a, err := b.svc.Create(ctx, tenants.CreateParams{Slug: "tenant-a", TrustDomain: "a.example"})
	require.NoError(t, err)
	other, err := b.svc.Create(ctx, tenants.CreateParams{Slug: "tenant-b", TrustDomain: "b.example"})
	require.NoError(t, err)

	var role string
	require.NoError(t, b.db.Pool.QueryRow(ctx, "SELECT current_user").Scan(&role))
	require.Equal(t, pgstore.AppRole, role, "the server's connections run as the application role")

	err = b.db.InTenantTx(ctx, a.ID, func(tx pgx.Tx) error {
		// A query with no tenant filter at all still sees only A's rows.
		var n int
		var seen uuid.UUID
		require.NoError(t, tx.QueryRow(ctx, `SELECT count(*), min(tenant_id::text)::uuid FROM signing_keys`).Scan(&n, &seen))
		require.Equal(t, 1, n)
		require.Equal(t, a.ID, seen)

		require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM signing_keys WHERE tenant_id = $1`, other.ID).Scan(&n))
		require.Zero(t, n, "B's keys are invisible under A's scope")

		tag, err := tx.Exec(ctx, `UPDATE tenants SET max_depth = 9 WHERE id = $1`, other.ID)
		require.NoError(t, err)
		require.Zero(t, tag.RowsAffected(), "A cannot change B's settings")
		return nil
	})
	require.NoError(t, err)

	err = b.db.InTenantTx(ctx, a.ID, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO signing_keys (tenant_id, kid, public_key, kek_id)
			VALUES ($1, repeat('k', 43), decode(repeat('00', 32), 'hex'), 'x')`, other.ID)
		return err
	})
	require.Equal(t, fault.Forbidden, fault.KindOf(err), "A cannot write rows into B")

	// Outside any tenant scope, tenant-owned rows are invisible: fail closed.
	var n int
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM signing_keys`).Scan(&n))
	require.Zero(t, n)
}

func kids(t *testing.T, b *testBundle, tenantID uuid.UUID) []string {
	t.Helper()
	keys, err := b.svc.Keys().Published(context.Background(), tenantID)
	require.NoError(t, err)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k.KeyID)
	}
	return out
}

func TestTenantChangesAreAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	acme, err := b.svc.Create(ctx, tenants.CreateParams{Slug: "acme", TrustDomain: "acme.example"})
	require.NoError(t, err)
	depth := 5
	_, err = b.svc.Update(ctx, "acme", tenants.SettingsChange{MaxDepth: &depth})
	require.NoError(t, err)
	_, key, err := b.svc.RotateKey(ctx, "acme")
	require.NoError(t, err)

	var types []string
	var rotatedKid, afterDepth string
	err = b.db.InTenantTx(ctx, acme.ID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT type FROM audit_events ORDER BY occurred_at, type`)
		if err != nil {
			return err
		}
		if types, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT detail->>'kid' FROM audit_events WHERE type = 'key.rotated'`).Scan(&rotatedKid); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT detail->'after'->>'max_depth' FROM audit_events WHERE type = 'tenant.updated'`).Scan(&afterDepth)
	})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"tenant.created", "tenant.updated", "key.rotated"}, types)
	require.Equal(t, key.KeyID, rotatedKid)
	require.Equal(t, "5", afterDepth)
}
