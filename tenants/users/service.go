// Package users holds console users: their passwords (argon2id), lockout,
// server-side sessions and the CSRF tokens bound to them. A user is one
// person who may belong to several tenants; what they may do in a tenant
// is governance (tenants/policy roles), not decided here.
package users

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/tenants/policy"
)

// Roles is the governance a user's role is kept in.
type Roles interface {
	AssignRole(ctx context.Context, tenantID uuid.UUID, userID string, role policy.Role, actor string) error
}

// Config tunes lockout and session lifetimes; zero values take the defaults.
type Config struct {
	DB    *pgstore.DB
	Clock clock.Clock
	Roles Roles
	// MaxAttempts failed logins in a row lock the account for LockFor.
	MaxAttempts int
	LockFor     time.Duration
	// A session ends after Idle without a request, and after Lifetime in any case.
	Idle     time.Duration
	Lifetime time.Duration
	// HashSlots bounds concurrent password hashes (each takes 19 MiB and
	// ≈ 20 ms of a core), so a login flood queues instead of exhausting memory.
	HashSlots int
}

// Defaults.
const (
	DefaultMaxAttempts = 5
	DefaultLockFor     = 15 * time.Minute
	DefaultIdle        = 30 * time.Minute
	DefaultLifetime    = 12 * time.Hour
)

// Service manages console users and sessions.
type Service struct {
	cfg   Config
	slots chan struct{}
	dummy string // a hash to verify against when the address is unknown
}

// New builds the service.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Roles == nil {
		return nil, fault.New(fault.Internal, "users: DB and Roles are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.LockFor <= 0 {
		cfg.LockFor = DefaultLockFor
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.HashSlots <= 0 {
		cfg.HashSlots = 2
	}
	dummy, err := hashPassword(uuid.NewString())
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, slots: make(chan struct{}, cfg.HashSlots), dummy: dummy}, nil
}

// User is a console user.
type User struct {
	ID        uuid.UUID
	Email     Email
	CreatedAt time.Time
}

// Actor is how a user appears in audit events: by id, never by address.
func (u User) Actor() string { return ActorOf(u.ID) }

// ActorOf is the audit actor of the user with this id.
func ActorOf(id uuid.UUID) string { return "user:" + id.String() }

// CreateParams are a new user, or a new tenant for an existing one.
type CreateParams struct {
	TenantID uuid.UUID
	Email    Email
	// Password is required for a new user and ignored for an existing one,
	// whose password only they change.
	Password string
	Role     policy.Role
	Actor    string
}

// Create adds a user (or, when the address is known, gives the existing
// user a membership) to a tenant with a role. created reports whether a new
// user was made.
func (s *Service) Create(ctx context.Context, p CreateParams) (u User, created bool, err error) {
	if _, err := ParseEmail(string(p.Email)); err != nil {
		return User{}, false, err
	}
	if _, err := policy.ParseRole(string(p.Role)); err != nil {
		return User{}, false, err
	}
	existing, err := s.ByEmail(ctx, p.Email)
	switch {
	case err == nil:
		u = existing
	case fault.KindOf(err) == fault.NotFound:
		if err := CheckPassword(p.Password); err != nil {
			return User{}, false, err
		}
		hash, err := hashPassword(p.Password)
		if err != nil {
			return User{}, false, err
		}
		u = User{ID: uuid.Must(uuid.NewV7()), Email: p.Email, CreatedAt: s.cfg.Clock.Now().Truncate(time.Microsecond)}
		err = s.cfg.DB.InTx(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO console_users (id, email, email_key, password_hash, created_at)
				VALUES ($1, $2, $3, $4, $5)`, u.ID, string(u.Email), u.Email.Key(), hash, u.CreatedAt)
			return err
		})
		if fault.KindOf(err) == fault.Conflict {
			return User{}, false, fault.New(fault.Conflict, "a user with this address was created at the same time; run the command again")
		}
		if err != nil {
			return User{}, false, err
		}
		created = true
	default:
		return User{}, false, err
	}
	now := s.cfg.Clock.Now().Truncate(time.Microsecond)
	err = s.cfg.DB.InTenantTx(ctx, p.TenantID, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO console_memberships (user_id, tenant_id, created_at)
			VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, u.ID, p.TenantID, now)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return audit.Append(ctx, tx, p.TenantID, audit.Event{Time: now, Type: audit.ConsoleUserAdded, Actor: p.Actor,
			Detail: map[string]any{"user": u.ID.String(), "email_hash": audit.Hash("email", u.Email.Key()), "new_user": created}})
	})
	if err != nil {
		return User{}, false, err
	}
	if err := s.cfg.Roles.AssignRole(ctx, p.TenantID, u.ID.String(), p.Role, p.Actor); err != nil {
		return User{}, false, err
	}
	return u, created, nil
}

// ByEmail finds a user by address; fault.NotFound when there is none.
func (s *Service) ByEmail(ctx context.Context, email Email) (User, error) {
	var u User
	err := s.cfg.DB.InTx(ctx, func(tx pgx.Tx) error {
		var addr string
		err := tx.QueryRow(ctx, `SELECT id, email, created_at FROM console_users WHERE email_key = $1`, email.Key()).
			Scan(&u.ID, &addr, &u.CreatedAt)
		u.Email = Email(addr)
		return err
	})
	if fault.KindOf(err) == fault.NotFound {
		return User{}, fault.New(fault.NotFound, "no console user with this address")
	}
	return u, err
}

// ErrLogin is every failed login's error: wrong address, wrong password,
// locked or disabled account look the same to the person trying.
var ErrLogin = fault.New(fault.Unauthenticated, "The e-mail address or password is incorrect, or the account is locked after repeated failures. Try again later.")

// Session is a signed-in user's server-side session.
type Session struct {
	User        User
	Memberships []Membership // the tenants the user is a member of, oldest first
	CreatedAt   time.Time
	ExpiresAt   time.Time
	token       string
}

// Membership is a tenant a user belongs to. Belonging shows nothing by
// itself: the user's role there (governance) decides what they see.
type Membership struct {
	TenantID uuid.UUID
	Slug     string
}

// Member reports whether the user belongs to the tenant.
func (s *Session) Member(tenantID uuid.UUID) bool {
	for _, m := range s.Memberships {
		if m.TenantID == tenantID {
			return true
		}
	}
	return false
}

// Token is the session's secret, for the cookie only.
func (s *Session) Token() string { return s.token }

// CSRF is the token every form of this session must carry.
func (s *Session) CSRF() string { return csrfFor(s.token) }

// CheckCSRF reports whether presented is this session's CSRF token.
func (s *Session) CheckCSRF(presented string) bool {
	return presented != "" && hmac.Equal([]byte(presented), []byte(csrfFor(s.token)))
}

// csrfFor derives the CSRF token from the session secret, so nothing more
// is stored and a token is worthless with any other session.
func csrfFor(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("chit console csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// Login checks an address and password and opens a new session. A new
// session token is minted on every login, whatever the browser presented
// before, so a planted session id is never promoted (session fixation).
func (s *Service) Login(ctx context.Context, email, password string) (*Session, error) {
	addr, err := ParseEmail(email)
	if err != nil || len(password) > MaxPasswordLen {
		return nil, ErrLogin
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fault.Wrap(ctx.Err(), fault.Unavailable, "login cancelled")
	}
	defer func() { <-s.slots }()

	now := s.cfg.Clock.Now().Truncate(time.Microsecond)
	var (
		u        User
		hash     string
		attempts int
		addrText string
	)
	// The attempt is counted before the password is checked, so concurrent
	// guesses cannot all pass the lock check first: at most MaxAttempts are
	// ever verified before the account locks.
	err = s.cfg.DB.InTx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
			UPDATE console_users u SET
			  failed_logins = n.attempts,
			  locked_until = CASE WHEN n.attempts >= $3 THEN $2::timestamptz + $4::interval END
			FROM (SELECT id, CASE WHEN locked_until IS NOT NULL THEN 1 ELSE failed_logins + 1 END AS attempts
			      FROM console_users
			      WHERE email_key = $1 AND disabled_at IS NULL AND (locked_until IS NULL OR locked_until <= $2)
			      FOR UPDATE) n
			WHERE u.id = n.id
			RETURNING u.id, u.email, u.created_at, u.password_hash, u.failed_logins`,
			addr.Key(), now, s.cfg.MaxAttempts, s.cfg.LockFor).Scan(&u.ID, &addrText, &u.CreatedAt, &hash, &attempts)
	})
	if fault.KindOf(err) == fault.NotFound {
		// Unknown, locked or disabled: spend the same time as a real check.
		verifyPassword(password, s.dummy)
		return nil, ErrLogin
	}
	if err != nil {
		return nil, err
	}
	u.Email = Email(addrText)
	if !verifyPassword(password, hash) {
		detail := map[string]any{"user": u.ID.String(), "reason": "password", "failed_attempts": attempts}
		if attempts >= s.cfg.MaxAttempts {
			detail["locked_until"] = now.Add(s.cfg.LockFor).UTC()
		}
		if err := s.auditInTenants(ctx, u.ID, audit.Event{Time: now, Type: audit.ConsoleLogin, Outcome: audit.Denial,
			Actor: u.Actor(), Detail: detail}); err != nil {
			return nil, err
		}
		return nil, ErrLogin
	}

	token := newToken()
	sess := &Session{User: u, CreatedAt: now, ExpiresAt: now.Add(s.cfg.Lifetime), token: token}
	err = s.cfg.DB.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE console_users SET failed_logins = 0, locked_until = NULL WHERE id = $1`, u.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO console_sessions (id_hash, user_id, created_at, last_seen_at, expires_at)
			VALUES ($1, $2, $3, $3, $4)`, hashToken(token), u.ID, now, sess.ExpiresAt); err != nil {
			return err
		}
		var err error
		sess.Memberships, err = appendInTenants(ctx, tx, u.ID, audit.Event{Time: now, Type: audit.ConsoleLogin, Actor: u.Actor(),
			Detail: map[string]any{"user": u.ID.String(), "session": sessionRef(token)}})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// Session finds the live session of a cookie's token; fault.Unauthenticated
// when it is unknown, ended, idle too long or past its lifetime.
func (s *Service) Session(ctx context.Context, token string) (*Session, error) {
	if token == "" || len(token) > 128 {
		return nil, fault.New(fault.Unauthenticated, "no session")
	}
	now := s.cfg.Clock.Now().Truncate(time.Microsecond)
	sess := &Session{token: token}
	var lastSeen time.Time
	var addr string
	var tenantIDs []uuid.UUID
	var slugs []string
	err := s.cfg.DB.InTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			SELECT u.id, u.email, u.created_at, s.created_at, s.expires_at, s.last_seen_at,
			       coalesce(m.ids, '{}'), coalesce(m.slugs, '{}')
			FROM console_sessions s JOIN console_users u ON u.id = s.user_id
			LEFT JOIN LATERAL (
			  SELECT array_agg(t.id ORDER BY cm.created_at, t.slug) AS ids, array_agg(t.slug ORDER BY cm.created_at, t.slug) AS slugs
			  FROM console_memberships cm JOIN tenants t ON t.id = cm.tenant_id WHERE cm.user_id = u.id) m ON true
			WHERE s.id_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2 AND s.last_seen_at > $3
			  AND u.disabled_at IS NULL`,
			hashToken(token), now, now.Add(-s.cfg.Idle)).
			Scan(&sess.User.ID, &addr, &sess.User.CreatedAt, &sess.CreatedAt, &sess.ExpiresAt, &lastSeen, &tenantIDs, &slugs)
		if err != nil {
			return err
		}
		for i, id := range tenantIDs {
			sess.Memberships = append(sess.Memberships, Membership{TenantID: id, Slug: slugs[i]})
		}
		// Idle time is tracked to the minute: a write per page view buys nothing.
		if now.Sub(lastSeen) > time.Minute {
			_, err = tx.Exec(ctx, `UPDATE console_sessions SET last_seen_at = $2 WHERE id_hash = $1`, hashToken(token), now)
		}
		return err
	})
	if fault.KindOf(err) == fault.NotFound {
		return nil, fault.New(fault.Unauthenticated, "the session has ended; sign in again")
	}
	if err != nil {
		return nil, err
	}
	sess.User.Email = Email(addr)
	return sess, nil
}

// Logout ends a session. Ending an ended session changes nothing.
func (s *Service) Logout(ctx context.Context, sess *Session) error {
	now := s.cfg.Clock.Now().Truncate(time.Microsecond)
	return s.cfg.DB.InTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE console_sessions SET ended_at = $2 WHERE id_hash = $1 AND ended_at IS NULL`,
			hashToken(sess.token), now)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = appendInTenants(ctx, tx, sess.User.ID, audit.Event{Time: now, Type: audit.ConsoleLogout,
			Actor: sess.User.Actor(), Detail: map[string]any{"user": sess.User.ID.String(), "session": sessionRef(sess.token)}})
		return err
	})
}

// SweepSessions deletes sessions that ended or expired more than a day ago.
func (s *Service) SweepSessions(ctx context.Context) (int64, error) {
	cutoff := s.cfg.Clock.Now().Add(-24 * time.Hour)
	var n int64
	err := s.cfg.DB.InTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE expires_at < $1 OR ended_at < $1`, cutoff)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

func (s *Service) auditInTenants(ctx context.Context, userID uuid.UUID, e audit.Event) error {
	return s.cfg.DB.InTx(ctx, func(tx pgx.Tx) error {
		_, err := appendInTenants(ctx, tx, userID, e)
		return err
	})
}

// appendInTenants records e in the trail of every tenant the user belongs
// to (each tenant's chain is its own) and returns those memberships.
func appendInTenants(ctx context.Context, tx pgx.Tx, userID uuid.UUID, e audit.Event) ([]Membership, error) {
	rows, err := tx.Query(ctx, `SELECT t.id, t.slug FROM console_memberships cm JOIN tenants t ON t.id = cm.tenant_id
		WHERE cm.user_id = $1 ORDER BY cm.created_at, t.slug`, userID)
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Membership])
	if err != nil {
		return nil, err
	}
	for _, m := range list {
		if err := pgstore.SetTenant(ctx, tx, m.TenantID); err != nil {
			return nil, err
		}
		if err := audit.Append(ctx, tx, m.TenantID, e); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// sessionRef names a session in the audit trail without revealing it.
func sessionRef(token string) string { return audit.Hash("console-session", token)[:16] }

func newToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("crypto/rand failed: " + err.Error()))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// EmailsIn maps the given user ids to their addresses, for those that are
// members of the tenant: a console shows who acted by address, and never
// reveals a user of another tenant.
func (s *Service) EmailsIn(ctx context.Context, tenantID uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]Email, error) {
	out := map[uuid.UUID]Email{}
	if len(ids) == 0 {
		return out, nil
	}
	err := s.cfg.DB.InTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT u.id, u.email FROM console_users u
			JOIN console_memberships m ON m.user_id = u.id AND m.tenant_id = $1 WHERE u.id = ANY ($2)`, tenantID, ids)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id uuid.UUID
			var addr string
			if err := rows.Scan(&id, &addr); err != nil {
				return err
			}
			out[id] = Email(addr)
		}
		return rows.Err()
	})
	return out, err
}

// Disable refuses every future sign-in of the user and ends their sessions
// at once (offboarding). Disabling a disabled user changes nothing.
func (s *Service) Disable(ctx context.Context, email Email, actor string) (User, error) {
	u, err := s.ByEmail(ctx, email)
	if err != nil {
		return User{}, err
	}
	now := s.cfg.Clock.Now().Truncate(time.Microsecond)
	err = s.cfg.DB.InTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE console_users SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL`, u.ID, now)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		ended, err := endSessions(ctx, tx, u.ID, now)
		if err != nil {
			return err
		}
		_, err = appendInTenants(ctx, tx, u.ID, audit.Event{Time: now, Type: audit.ConsoleUserDisabled, Actor: actor,
			Detail: map[string]any{"user": u.ID.String(), "sessions_ended": ended}})
		return err
	})
	return u, err
}

// SetPassword gives the user a new password (an operator's reset), clears
// any lockout and ends every session, so a stolen session or password stops
// working at once.
func (s *Service) SetPassword(ctx context.Context, email Email, password, actor string) (User, error) {
	if err := CheckPassword(password); err != nil {
		return User{}, err
	}
	u, err := s.ByEmail(ctx, email)
	if err != nil {
		return User{}, err
	}
	hash, err := hashPassword(password)
	if err != nil {
		return User{}, err
	}
	now := s.cfg.Clock.Now().Truncate(time.Microsecond)
	err = s.cfg.DB.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE console_users SET password_hash = $2, failed_logins = 0, locked_until = NULL
			WHERE id = $1`, u.ID, hash); err != nil {
			return err
		}
		ended, err := endSessions(ctx, tx, u.ID, now)
		if err != nil {
			return err
		}
		_, err = appendInTenants(ctx, tx, u.ID, audit.Event{Time: now, Type: audit.ConsolePasswordSet, Actor: actor,
			Detail: map[string]any{"user": u.ID.String(), "sessions_ended": ended}})
		return err
	})
	return u, err
}

func endSessions(ctx context.Context, tx pgx.Tx, userID uuid.UUID, now time.Time) (int64, error) {
	tag, err := tx.Exec(ctx, `UPDATE console_sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2`,
		userID, now)
	return tag.RowsAffected(), err
}

// Member is a console user of a tenant.
type Member struct {
	User
	Disabled bool
}

// Members lists the tenant's console users, by address.
func (s *Service) Members(ctx context.Context, tenantID uuid.UUID) ([]Member, error) {
	var list []Member
	err := s.cfg.DB.InTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT u.id, u.email, u.created_at, u.disabled_at IS NOT NULL FROM console_users u
			JOIN console_memberships m ON m.user_id = u.id AND m.tenant_id = $1 ORDER BY u.email_key`, tenantID)
		if err != nil {
			return err
		}
		list, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Member, error) {
			var m Member
			var addr string
			err := r.Scan(&m.ID, &addr, &m.CreatedAt, &m.Disabled)
			m.Email = Email(addr)
			return m, err
		})
		return err
	})
	return list, err
}
