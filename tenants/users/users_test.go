package users_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"github.com/chitdev/chit/tenants/policy"
	"github.com/chitdev/chit/tenants/users"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

const goodPassword = "correct horse battery staple"

type testBundle struct {
	db     *pgstore.DB
	clock  *clock.Manual
	policy *policy.Service
	users  *users.Service
	tenant uuid.UUID
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db, _ := pgtest.Open(t)
	clk := clock.NewManual(t0)
	pol, err := policy.New(context.Background(), db, clk, nil)
	require.NoError(t, err)
	t.Cleanup(pol.Close)
	svc, err := users.New(users.Config{DB: db, Clock: clk, Roles: pol})
	require.NoError(t, err)
	return &testBundle{db: db, clock: clk, policy: pol, users: svc, tenant: newTenant(t, db)}
}

func newTenant(t *testing.T, db *pgstore.DB) uuid.UUID {
	t.Helper()
	id := uuid.New()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	slug := "t" + hex.EncodeToString(b)
	require.NoError(t, db.InTenantTx(context.Background(), id, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(),
			`INSERT INTO tenants (id, slug, trust_domain) VALUES ($1, $2, $3)`, id, slug, slug+".example")
		return err
	}))
	return id
}

func (b *testBundle) create(t *testing.T, email string, role policy.Role) users.User {
	t.Helper()
	u, created, err := b.users.Create(context.Background(), users.CreateParams{TenantID: b.tenant, Email: users.Email(email),
		Password: goodPassword, Role: role, Actor: "operator:cli"})
	require.NoError(t, err)
	require.True(t, created)
	return u
}

// events counts the tenant's audit events of one type and outcome.
func (b *testBundle) events(t *testing.T, tenant uuid.UUID, typ, outcome string) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.InTenantTx(context.Background(), tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE type = $1 AND outcome = $2`,
			typ, outcome).Scan(&n)
	}))
	return n
}

func TestLoginOpensASessionWithItsOwnCSRFToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	u := b.create(t, "Ana@Example.com", policy.RoleAdmin)
	require.True(t, b.policy.HasRole(b.tenant, u.ID.String(), policy.RoleAdmin))

	// The address is looked up without regard to case.
	s1, err := b.users.Login(ctx, "ana@example.COM", goodPassword)
	require.NoError(t, err)
	s2, err := b.users.Login(ctx, "ana@example.com", goodPassword)
	require.NoError(t, err)
	require.NotEqual(t, s1.Token(), s2.Token(), "every login mints a new session")
	require.Len(t, s1.Memberships, 1)
	require.Equal(t, b.tenant, s1.Memberships[0].TenantID)
	require.True(t, s1.Member(b.tenant))

	got, err := b.users.Session(ctx, s1.Token())
	require.NoError(t, err)
	require.Equal(t, u.ID, got.User.ID)
	require.Equal(t, users.Email("Ana@Example.com"), got.User.Email)
	require.True(t, got.CheckCSRF(s1.CSRF()))
	require.False(t, got.CheckCSRF(s2.CSRF()), "a CSRF token is bound to its session")
	require.False(t, got.CheckCSRF(""))

	require.Equal(t, 2, b.events(t, b.tenant, "console.login", "success"))

	// Nothing stored opens a session: the table holds hashes only.
	var stored int
	require.NoError(t, b.db.InTx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM console_sessions WHERE id_hash = convert_to($1, 'UTF8')`, s1.Token()).Scan(&stored)
	}))
	require.Zero(t, stored)
}

func TestSessionsEndOnLogoutIdleAndLifetime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.create(t, "ops@example.com", policy.RoleViewer)

	s, err := b.users.Login(ctx, "ops@example.com", goodPassword)
	require.NoError(t, err)
	require.NoError(t, b.users.Logout(ctx, s))
	_, err = b.users.Session(ctx, s.Token())
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err))

	// Activity keeps a session alive past the idle limit, not past its lifetime.
	s, err = b.users.Login(ctx, "ops@example.com", goodPassword)
	require.NoError(t, err)
	for elapsed := time.Duration(0); elapsed < users.DefaultLifetime-20*time.Minute; elapsed += 20 * time.Minute {
		b.clock.Advance(20 * time.Minute)
		_, err = b.users.Session(ctx, s.Token())
		require.NoError(t, err, "after %s of activity", elapsed)
	}
	b.clock.Advance(40 * time.Minute)
	_, err = b.users.Session(ctx, s.Token())
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err), "past its lifetime")

	s, err = b.users.Login(ctx, "ops@example.com", goodPassword)
	require.NoError(t, err)
	b.clock.Advance(users.DefaultIdle + time.Second)
	_, err = b.users.Session(ctx, s.Token())
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err), "idle too long")

	_, err = b.users.Session(ctx, "forged-token")
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err))
}

func TestRepeatedFailuresLockTheAccount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.create(t, "sec@example.com", policy.RoleAdmin)

	for range users.DefaultMaxAttempts {
		_, err := b.users.Login(ctx, "sec@example.com", "wrong password guess")
		require.ErrorIs(t, err, users.ErrLogin)
	}
	// Locked: even the right password is refused, with the same message.
	_, err := b.users.Login(ctx, "sec@example.com", goodPassword)
	require.ErrorIs(t, err, users.ErrLogin)
	require.Equal(t, users.DefaultMaxAttempts, b.events(t, b.tenant, "console.login", "denied"))

	b.clock.Advance(users.DefaultLockFor + time.Second)
	s, err := b.users.Login(ctx, "sec@example.com", goodPassword)
	require.NoError(t, err, "the lock expires")
	require.NotEmpty(t, s.Token())

	// A success resets the count: four more failures do not lock.
	for range users.DefaultMaxAttempts - 1 {
		_, err := b.users.Login(ctx, "sec@example.com", "wrong password guess")
		require.ErrorIs(t, err, users.ErrLogin)
	}
	_, err = b.users.Login(ctx, "sec@example.com", goodPassword)
	require.NoError(t, err)

	// An unknown address fails the same way.
	_, err = b.users.Login(ctx, "nobody@example.com", goodPassword)
	require.ErrorIs(t, err, users.ErrLogin)
}

func TestConcurrentGuessesCannotOutrunTheLock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.create(t, "burst@example.com", policy.RoleViewer)

	const guesses = 24
	var wg sync.WaitGroup
	for range guesses {
		wg.Go(func() {
			_, err := b.users.Login(ctx, "burst@example.com", "wrong password guess")
			require.ErrorIs(t, err, users.ErrLogin)
		})
	}
	wg.Wait()
	// Every attempt after the limit was refused without checking the
	// password: exactly MaxAttempts were verified and recorded.
	require.Equal(t, users.DefaultMaxAttempts, b.events(t, b.tenant, "console.login", "denied"))
	_, err := b.users.Login(ctx, "burst@example.com", goodPassword)
	require.ErrorIs(t, err, users.ErrLogin, "locked")
}

func TestAnExistingUserJoinsAnotherTenantWithTheirPassword(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	u := b.create(t, "multi@example.com", policy.RoleAdmin)
	other := newTenant(t, b.db)

	again, created, err := b.users.Create(ctx, users.CreateParams{TenantID: other, Email: "MULTI@example.com",
		Password: "another password entirely", Role: policy.RoleViewer, Actor: "operator:cli"})
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, u.ID, again.ID)
	require.True(t, b.policy.HasRole(other, u.ID.String(), policy.RoleViewer))
	require.False(t, b.policy.HasRole(other, u.ID.String(), policy.RoleAdmin))

	_, err = b.users.Login(ctx, "multi@example.com", "another password entirely")
	require.ErrorIs(t, err, users.ErrLogin, "the password did not change")
	s, err := b.users.Login(ctx, "multi@example.com", goodPassword)
	require.NoError(t, err)
	again2, err := b.users.Session(ctx, s.Token())
	require.NoError(t, err)
	require.Len(t, again2.Memberships, 2)
	require.True(t, again2.Member(b.tenant) && again2.Member(other))
	require.False(t, again2.Member(uuid.New()))
	// Each tenant's trail records the sign-in, by user id.
	require.Equal(t, 1, b.events(t, other, "console.login", "success"))

	// Addresses are shown only within a tenant the user belongs to.
	names, err := b.users.EmailsIn(ctx, other, []uuid.UUID{u.ID, uuid.New()})
	require.NoError(t, err)
	require.Equal(t, map[uuid.UUID]users.Email{u.ID: "multi@example.com"}, names)
	names, err = b.users.EmailsIn(ctx, newTenant(t, b.db), []uuid.UUID{u.ID})
	require.NoError(t, err)
	require.Empty(t, names)
}

func TestCreateRefusesBadInputAndChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, p := range []users.CreateParams{
		{Email: "not-an-address", Password: goodPassword, Role: policy.RoleAdmin},
		{Email: "Ana <ana@example.com>", Password: goodPassword, Role: policy.RoleAdmin},
		{Email: "short@example.com", Password: "short", Role: policy.RoleAdmin},
		{Email: "role@example.com", Password: goodPassword, Role: "root"},
	} {
		p.TenantID, p.Actor = b.tenant, "operator:cli"
		_, _, err := b.users.Create(ctx, p)
		require.Equal(t, fault.Invalid, fault.KindOf(err), "%+v", p.Email)
	}
	var n int
	require.NoError(t, b.db.InTx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM console_users`).Scan(&n)
	}))
	require.Zero(t, n)
}

func TestDisablingAUserEndsTheirSessionsAndSignIns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	u := b.create(t, "leaver@example.com", policy.RoleAdmin)
	stay := b.create(t, "stayer@example.com", policy.RoleViewer)
	s1, err := b.users.Login(ctx, "leaver@example.com", goodPassword)
	require.NoError(t, err)
	s2, err := b.users.Login(ctx, "stayer@example.com", goodPassword)
	require.NoError(t, err)

	_, err = b.users.Disable(ctx, "LEAVER@example.com", "operator:cli")
	require.NoError(t, err)
	_, err = b.users.Session(ctx, s1.Token())
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err), "the open session ends at once")
	_, err = b.users.Login(ctx, "leaver@example.com", goodPassword)
	require.ErrorIs(t, err, users.ErrLogin, "and no new one opens")
	_, err = b.users.Session(ctx, s2.Token())
	require.NoError(t, err, "other users are untouched")
	require.Equal(t, 1, b.events(t, b.tenant, "console.user_disabled", "success"))

	members, err := b.users.Members(ctx, b.tenant)
	require.NoError(t, err)
	require.Len(t, members, 2)
	require.Equal(t, u.ID, members[0].ID)
	require.True(t, members[0].Disabled)
	require.Equal(t, stay.ID, members[1].ID)
	require.False(t, members[1].Disabled)

	_, err = b.users.Disable(ctx, "nobody@example.com", "operator:cli")
	require.Equal(t, fault.NotFound, fault.KindOf(err))
}

func TestANewPasswordEndsSessionsAndClearsTheLock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.create(t, "reset@example.com", policy.RoleViewer)
	s, err := b.users.Login(ctx, "reset@example.com", goodPassword)
	require.NoError(t, err)
	for range users.DefaultMaxAttempts {
		_, _ = b.users.Login(ctx, "reset@example.com", "wrong password guess")
	}

	_, err = b.users.SetPassword(ctx, "reset@example.com", "short", "operator:cli")
	require.Equal(t, fault.Invalid, fault.KindOf(err))
	_, err = b.users.SetPassword(ctx, "reset@example.com", "a brand new passphrase", "operator:cli")
	require.NoError(t, err)

	_, err = b.users.Session(ctx, s.Token())
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err), "sessions opened with the old password end")
	_, err = b.users.Login(ctx, "reset@example.com", goodPassword)
	require.ErrorIs(t, err, users.ErrLogin)
	_, err = b.users.Login(ctx, "reset@example.com", "a brand new passphrase")
	require.NoError(t, err, "the lock is cleared and the new password works")
	require.Equal(t, 1, b.events(t, b.tenant, "console.password_set", "success"))
}
