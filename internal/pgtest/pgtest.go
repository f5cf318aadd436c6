// Package pgtest gives tests a real, migrated PostgreSQL database of their
// own. The schema is migrated once into a template database named by the
// migrations' fingerprint; each test gets a fast clone of it, so tests run in
// parallel and may commit.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/migrations"
)

// lockKey serialises template builds across test processes.
const lockKey = int64(0x63686974_74706c31) // "chittpl1"

// AdminURL is the database server tests create their databases on: DATABASE_URL,
// which `make test` points at a throwaway cluster. Its role must be able to
// create databases.
func AdminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		t.Fatal("DATABASE_URL is not set: run the tests with `make test`, which starts a PostgreSQL for them")
	}
	return u
}

// NewDatabase creates a migrated database for this test, dropped at cleanup,
// and returns its URL (as the schema owner).
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, true)
}

// NewEmptyDatabase creates a database with no schema at all, dropped at
// cleanup, for tests of migrations themselves.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, false)
}

func newDatabase(t testing.TB, migrated bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := AdminURL(t)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", redact(admin), err)
	}
	defer conn.Close(ctx)

	name := "chit_t_" + randomHex(6)
	create := "CREATE DATABASE " + name
	if migrated {
		tpl := "chit_tpl_" + migrations.Fingerprint()
		if err := ensureTemplate(ctx, conn, admin, tpl); err != nil {
			t.Fatalf("pgtest: template database: %v", err)
		}
		create += " TEMPLATE " + tpl + " STRATEGY FILE_COPY"
	}
	if _, err := conn.Exec(ctx, create); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("pgtest: drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// Open returns a pool on a new test database, connected as the application
// role so row-level security applies exactly as in the server.
func Open(t testing.TB) (*pgstore.DB, string) {
	t.Helper()
	dbURL := NewDatabase(t)
	db, err := pgstore.Open(context.Background(), dbURL, pgstore.Options{MaxConns: 8})
	if err != nil {
		t.Fatalf("pgtest: open: %v", err)
	}
	t.Cleanup(db.Close)
	return db, dbURL
}

func ensureTemplate(ctx context.Context, conn *pgx.Conn, admin, tpl string) error {
	if ok, err := exists(ctx, conn, tpl); err != nil || ok {
		return err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey) //nolint:errcheck // released with the session anyway
	if ok, err := exists(ctx, conn, tpl); err != nil || ok {
		return err
	}
	// Build under another name and rename: a half-built template is never cloned.
	building := tpl + "_build"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, withDatabase(admin, building))
	if err != nil {
		return err
	}
	_, err = migrations.Up(ctx, pool, nil)
	pool.Close()
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "ALTER DATABASE "+building+" RENAME TO "+tpl)
	return err
}

func exists(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&ok)
	return ok, err
}

func withDatabase(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err) // AdminURL was already used to connect
	}
	u.Path = "/" + name
	return u.String()
}

func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
