// Package pgstore is chit's PostgreSQL plumbing: the connection pool, the
// role the server runs as, tenant-scoped transactions and the one place that
// knows the driver's errors.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chitdev/chit/internal/fault"
)

// AppRole is the role every server connection assumes. It owns nothing and
// does not bypass row-level security, so tenant isolation holds in the
// database even if a query forgets its tenant filter.
const AppRole = "chit_app"

// TenantSetting is the per-transaction setting that row-level security
// policies compare each row's tenant_id with.
const TenantSetting = "chit.tenant_id"

// DB is the pool of connections, each running as AppRole.
type DB struct {
	Pool *pgxpool.Pool
}

// Options tune Open.
type Options struct {
	// MaxConns bounds the pool; zero keeps pgx's default.
	MaxConns int32
	// AsOwner keeps the login role instead of switching to AppRole;
	// only migrations use it.
	AsOwner bool
}

// Open connects to url. Unless opts.AsOwner, every connection switches to
// AppRole before it is used, and fails closed if it cannot.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fault.Wrap(err, fault.Invalid, "DATABASE_URL is not a valid PostgreSQL URL")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "chit"
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	if !opts.AsOwner {
		cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			if _, err := c.Exec(ctx, "SET ROLE "+AppRole); err != nil {
				return fmt.Errorf("switch to role %s (run `chit migrate` first): %w", AppRole, err)
			}
			return nil
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fault.Wrap(err, fault.Unavailable, "cannot connect to the database")
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fault.Wrap(err, fault.Unavailable, "cannot connect to the database")
	}
	return &DB{Pool: pool}, nil
}

// Close releases every connection.
func (db *DB) Close() { db.Pool.Close() }

// InTx runs fn in a transaction that sees no tenant's rows: for the tenant
// directory and other cross-tenant reads the policies allow.
func (db *DB) InTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		return Interpret(fn(tx))
	})
}

// InTenantTx runs fn in a transaction scoped to one tenant: row-level
// security shows and accepts only that tenant's rows.
//
// The scope is set in the same round trip as BEGIN: a UUID's text form
// (hex and hyphens) is safe to place in the statement.
func (db *DB) InTenantTx(ctx context.Context, tenantID uuid.UUID, fn func(pgx.Tx) error) error {
	if tenantID == uuid.Nil {
		return fault.New(fault.Internal, "tenant scope without a tenant")
	}
	return Interpret(pgx.BeginTxFunc(ctx, db.Pool, tenantBegin(tenantID), func(tx pgx.Tx) error {
		return Interpret(fn(tx))
	}))
}

// BeginTenant starts a transaction scoped to tenantID for a caller that must
// decide late whether it needs one; it commits or rolls back itself.
func (db *DB) BeginTenant(ctx context.Context, tenantID uuid.UUID) (pgx.Tx, error) {
	if tenantID == uuid.Nil {
		return nil, fault.New(fault.Internal, "tenant scope without a tenant")
	}
	tx, err := db.Pool.BeginTx(ctx, tenantBegin(tenantID))
	return tx, Interpret(err)
}

// NewTenantBatch starts a batch scoped to tenantID. Sent with SendBatch, a
// batch is one pipelined round trip and one implicit transaction: an error
// in any statement rolls back all of them.
func NewTenantBatch(tenantID uuid.UUID) *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('`+TenantSetting+`', $1, true)`, tenantID.String())
	return b
}

// SendBatch sends b (from NewTenantBatch) and runs its callbacks.
func (db *DB) SendBatch(ctx context.Context, b *pgx.Batch) error {
	if len(b.QueuedQueries) == 0 || !strings.Contains(b.QueuedQueries[0].SQL, TenantSetting) {
		return fault.New(fault.Internal, "a batch must be scoped to a tenant first")
	}
	return Interpret(db.Pool.SendBatch(ctx, b).Close())
}

func tenantBegin(tenantID uuid.UUID) pgx.TxOptions {
	return pgx.TxOptions{BeginQuery: "BEGIN; SELECT set_config('" + TenantSetting + "', '" + tenantID.String() + "', true)"}
}

// SetTenant scopes the rest of tx to tenantID.
func SetTenant(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID) error {
	if tenantID == uuid.Nil {
		return fault.New(fault.Internal, "tenant scope without a tenant")
	}
	_, err := tx.Exec(ctx, "SELECT set_config($1, $2, true)", TenantSetting, tenantID.String())
	return Interpret(err)
}

// Interpret maps driver errors to chit's fault kinds; other errors pass.
func Interpret(err error) error {
	if err == nil {
		return nil
	}
	var f *fault.Error
	if errors.As(err, &f) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fault.Wrap(err, fault.NotFound, "not found")
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fault.Wrap(err, fault.Conflict, "already exists")
		case "23514", "23502", "22P02", "22001": // check, not null, bad text repr, too long
			return fault.Wrap(err, fault.Invalid, "invalid value")
		case "42P01", "42883": // undefined table or function: an unmigrated database
			return fault.Wrap(err, fault.Unavailable, "the database schema is missing or old: run `chit migrate`")
		case "42501": // insufficient_privilege, including row-level security refusals
			return fault.Wrap(err, fault.Forbidden, "not permitted")
		case "57P01", "57P02", "57P03", "08000", "08003", "08006":
			return fault.Wrap(err, fault.Unavailable, "database unavailable")
		}
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return fault.Wrap(err, fault.Unavailable, "database unavailable")
	}
	return err
}
