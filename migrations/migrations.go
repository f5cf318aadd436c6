// Package migrations holds chit's SQL schema and applies it, together with
// River's, in one idempotent step.
package migrations

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed *.sql
var sqlFiles embed.FS

// RiverSchema is where River keeps its queue tables, apart from chit's own.
const RiverSchema = "river"

// lockKey is the advisory lock that serialises concurrent `chit migrate`
// runs (replicas starting at once): one applies, the others wait and find
// nothing left to do.
const lockKey = int64(0x63686974_6d696772) // "chitmigr"

// Result says what a run applied.
type Result struct {
	Applied      []int64 // chit migration versions applied by this run
	RiverApplied []int   // River migration versions applied by this run
	Version      int64   // chit schema version after the run
}

// Up applies every pending chit and River migration. pool must connect as
// the schema owner (not the application role).
func Up(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) (*Result, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must be released even if ctx was cancelled.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey)
	}()

	provider, err := newProvider(pool)
	if err != nil {
		return nil, err
	}
	defer provider.Close()
	results, err := provider.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("apply chit migrations: %w", err)
	}
	res := &Result{}
	for _, r := range results {
		res.Applied = append(res.Applied, r.Source.Version)
	}
	if res.Version, err = provider.GetDBVersion(ctx); err != nil {
		return nil, fmt.Errorf("read schema version: %w", err)
	}

	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+RiverSchema); err != nil {
		return nil, fmt.Errorf("create river schema: %w", err)
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: RiverSchema, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("river migrator: %w", err)
	}
	riverRes, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, fmt.Errorf("apply river migrations: %w", err)
	}
	for _, v := range riverRes.Versions {
		res.RiverApplied = append(res.RiverApplied, v.Version)
	}
	// River creates its tables as the owner; the application role works its
	// queue, so it needs the rights River's own role would have.
	if _, err := conn.Exec(ctx, riverGrants); err != nil {
		return nil, fmt.Errorf("grant river tables: %w", err)
	}
	return res, nil
}

const riverGrants = `
GRANT USAGE ON SCHEMA ` + RiverSchema + ` TO chit_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ` + RiverSchema + ` TO chit_app;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ` + RiverSchema + ` TO chit_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ` + RiverSchema + ` TO chit_app;`

// Pending reports whether chit or River migrations remain to be applied.
// It runs as whatever role pool uses; the application role can read both
// version tables.
func Pending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var current int64
	err := pool.QueryRow(ctx, "SELECT max(version_id) FROM goose_db_version WHERE is_applied").Scan(&current)
	if err != nil {
		return true, fmt.Errorf("read schema version: %w", err)
	}
	if current < Latest() {
		return true, nil
	}
	var riverVersion int
	err = pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+RiverSchema+".river_migration WHERE line = 'main'").Scan(&riverVersion)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return true, nil
		}
		return true, fmt.Errorf("read river version: %w", err)
	}
	return riverVersion < latestRiver(), nil
}

// Latest is the newest chit migration version this binary carries.
func Latest() int64 {
	entries, err := fs.Glob(sqlFiles, "*.sql")
	if err != nil {
		panic(err) // the pattern is constant
	}
	var latest int64
	for _, name := range entries {
		// goose names files VERSION_description.sql.
		v, err := strconv.ParseInt(strings.SplitN(name, "_", 2)[0], 10, 64)
		if err != nil {
			panic(fmt.Sprintf("migration %s has no numeric version", name))
		}
		latest = max(latest, v)
	}
	return latest
}

func latestRiver() int {
	m, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		panic(err)
	}
	all := m.AllVersions()
	return all[len(all)-1].Version
}

func newProvider(pool *pgxpool.Pool) (*goose.Provider, error) {
	db := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, sqlFiles)
	if err != nil {
		return nil, fmt.Errorf("goose provider: %w", err)
	}
	return p, nil
}

// Fingerprint identifies this binary's full schema (chit's files and River's
// version), so a test template database built from it can be reused safely.
func Fingerprint() string {
	h := sha256.New()
	entries, _ := fs.Glob(sqlFiles, "*.sql")
	for _, name := range entries {
		data, _ := sqlFiles.ReadFile(name)
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(data))
		h.Write(data)
	}
	fmt.Fprintf(h, "river\x00%d", latestRiver())
	return hex.EncodeToString(h.Sum(nil))[:16]
}
