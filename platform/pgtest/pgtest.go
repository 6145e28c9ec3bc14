// Package pgtest gives each test its own, freshly created PostgreSQL
// database on the real server, dropped when the test ends: empty
// (NewDatabase, NewPool) or a copy of a service's migrated template
// (Template). The server comes from TEST_DATABASE_URL (default: the local
// trust-auth postgres).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultURL is used when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func adminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// redacted hides the password of a server URL for test output (CI logs
// are widely readable; TEST_DATABASE_URL may carry a real password).
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "TEST_DATABASE_URL (unparsable)"
	}
	return u.Redacted()
}

// Scratch creates an empty database named prefix_<random> on the server at
// adminURL and returns its URL and a function that drops it (closing any
// connection still open). Benchmarks use it directly; tests use NewDatabase.
func Scratch(ctx context.Context, adminURL, prefix string) (string, func() error, error) {
	return scratch(ctx, adminURL, prefix, "template0")
}

// scratch is Scratch copying the database template.
func scratch(ctx context.Context, adminURL, prefix, template string) (string, func() error, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("parse the server URL: %w", err)
	}
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to %s: %w", redacted(adminURL), err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+pgx.Identifier{template}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return fmt.Errorf("connect to drop %s: %w", name, err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
		return nil
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// NewDatabase creates an empty database and returns its URL. It is dropped
// (with any connections still open) when t ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return own(t)(Scratch(ctx, adminURL(), "test"))
}

// own hands a new database to t: it fails t on err, or drops the database
// when t ends.
func own(t testing.TB) func(dbURL string, drop func() error, err error) string {
	return func(dbURL string, drop func() error, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("pgtest: %v (is PostgreSQL running? .ci/run starts it)", err)
		}
		t.Cleanup(func() {
			if err := drop(); err != nil {
				t.Logf("pgtest: %v", err)
			}
		})
		return dbURL
	}
}

// NewPool creates a database and a pool on it, with search_path set to
// searchPath when not empty. The pool is closed before the database drops.
func NewPool(t testing.TB, searchPath string) (*pgxpool.Pool, string) {
	t.Helper()
	dbURL := NewDatabase(t)
	return openPool(t, dbURL, searchPath), dbURL
}

// openPool opens a pool on dbURL, closed when t ends.
func openPool(t testing.TB, dbURL, searchPath string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if searchPath != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = searchPath
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
