// Package testdb gives a test its own PostgreSQL database holding the whole
// credential schema (its SQL migrations and River's), copied from a template
// migrated once per migration set (see platform/pgtest.Template).
package testdb

import (
	"context"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/provcred/credential/internal/store"
	"github.com/provcred/platform/pgtest"
)

// Template is the credential migration set's template (built on first use).
var Template = sync.OnceValues(func() (pgtest.Template, error) {
	river, err := store.RiverMigrations()
	if err != nil {
		return pgtest.Template{}, err
	}
	key, err := pgtest.Fingerprint([]fs.FS{store.Migrations()}, river...)
	return pgtest.Template{Name: "credential", Key: key, SearchPath: store.Schema,
		Migrate: func(ctx context.Context, url string) error {
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				return err
			}
			defer pool.Close()
			return store.Migrate(ctx, pool)
		}}, err
})

// New returns a pool on a fresh, fully migrated database, and its URL.
func New(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	tpl, err := Template()
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	return tpl.NewPool(t)
}

// Connect opens a pool on an existing credential database at url (one a
// process under test migrated), on the credential schema; it is closed when
// the test ends.
func Connect(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = store.Schema
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// StartRiver starts a River client on pool's credential schema working
// queues with workers, polling fast as tests want, and stops it when the
// test ends (after anything the test registered later has stopped).
func StartRiver(t testing.TB, pool *pgxpool.Pool, workers *river.Workers, queues map[string]river.QueueConfig) *river.Client[pgx.Tx] {
	t.Helper()
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: store.Schema, Workers: workers,
		Queues: queues, FetchCooldown: 5 * time.Millisecond, FetchPollInterval: 20 * time.Millisecond,
		JobTimeout: time.Minute, RescueStuckJobsAfter: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(ctx)
	})
	return client
}
