// Package testdb gives a test its own PostgreSQL database with every
// credential migration applied, on the real server (see platform/pgtest).
package testdb

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/store"
	"github.com/provcred/platform/database"
	"github.com/provcred/platform/pgtest"
)

// New returns a pool on a fresh, fully migrated database, and its URL.
func New(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	pool, url := pgtest.NewPool(t, store.Schema)
	if _, err := database.Migrate(context.Background(), pool, store.Schema, store.Migrations()); err != nil {
		t.Fatalf("testdb: migrate: %v", err)
	}
	return pool, url
}
