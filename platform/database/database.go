// Package database opens a service's pgx v5 pool (retrying while PostgreSQL
// starts), scopes it to the service's own schema, and applies the service's
// embedded migrations.
package database

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype/zeronull"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/provcred/platform/tracing"
)

// Querier is what stores read and write through: a *pgxpool.Pool, a
// *pgx.Conn or a pgx.Tx, so one function serves inside and outside a
// transaction.
type Querier interface {
	Execer
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Execer is the part of a Querier that writes without reading back (e.g.
// an audit entry queued into a pgx.Batch).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Text scans a nullable text column into s, NULL as "" (e.g. the columns of
// a LEFT JOIN that found nothing).
func Text(s *string) *zeronull.Text { return (*zeronull.Text)(s) }

// Options for Connect.
type Options struct {
	URL string
	// SearchPath is the schema list, own schema first, e.g. "credential".
	SearchPath string
	// MaxConns caps the pool (at least 1).
	MaxConns int32
	// ConnectTimeout bounds the retries at start (DATABASE_CONNECT_TIMEOUT;
	// 0 tries once).
	ConnectTimeout time.Duration
	Tracer         trace.TracerProvider
	Logger         *slog.Logger
	// AfterConnect runs on every new connection (e.g. River's driver needs none).
	AfterConnect func(context.Context, *pgx.Conn) error
}

// Connect opens the pool and pings it, retrying with backoff until
// ConnectTimeout: in Kubernetes the database may start after us.
func Connect(ctx context.Context, o Options) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		// The URL may hold a password: never echo it.
		return nil, fmt.Errorf("DATABASE_URL: cannot parse the connection string")
	}
	if o.MaxConns < 1 {
		return nil, fmt.Errorf("DATABASE_MAX_CONNS: the pool needs at least 1 connection, got %d", o.MaxConns)
	}
	cfg.MaxConns = o.MaxConns
	if o.SearchPath != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = o.SearchPath
	}
	if o.Tracer != nil {
		cfg.ConnConfig.Tracer = tracing.NewPgxTracer(o.Tracer)
	}
	cfg.AfterConnect = o.AfterConnect
	deadline := time.Now().Add(o.ConnectTimeout)
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = pool.Ping(pctx)
			cancel()
			if err == nil {
				return pool, nil
			}
			pool.Close()
		}
		if time.Now().Add(backoff).After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("database %s:%d unreachable after %d attempts: %w",
				cfg.ConnConfig.Host, cfg.ConnConfig.Port, attempt, err)
		}
		if o.Logger != nil {
			o.Logger.Warn("database not ready, retrying", "attempt", attempt, "in", backoff.String(), "err", err.Error())
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		backoff = min(backoff*2, 3*time.Second)
	}
}

// Embedded is a service's migrations folder inside its embedded files
// (//go:embed migrations/*.sql), as Migrate reads it: the one way every
// service hands over its migrations.
func Embedded(files fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // the embed pattern names the folder: a programming error
	}
	return sub
}

// Migrate applies, in name order, every *.sql file of migrations not yet
// applied in schema. Each file runs in its own transaction; a transaction
// advisory lock makes replicas that start together apply them once.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, migrations fs.FS) ([]string, error) {
	names, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	ident := pgx.Identifier{schema}.Sanitize()
	var applied []string
	for _, name := range names {
		body, err := fs.ReadFile(migrations, name)
		if err != nil {
			return applied, fmt.Errorf("read migration %s: %w", name, err)
		}
		did, err := applyOne(ctx, pool, schema, ident, name, string(body))
		if err != nil {
			return applied, fmt.Errorf("migration %s/%s: %w", schema, name, err)
		}
		if did {
			applied = append(applied, name)
		}
	}
	return applied, nil
}

func applyOne(ctx context.Context, pool *pgxpool.Pool, schema, ident, name, body string) (bool, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('migrate:' || $1))`, schema); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+ident+`;
		CREATE TABLE IF NOT EXISTS `+ident+`.schema_migrations (
			version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return false, err
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+ident+`.schema_migrations WHERE version = $1)`, name).Scan(&exists); err != nil {
		return false, err
	}
	if exists {
		return false, nil
	}
	// Migrations create objects unqualified; pin them to the service's schema.
	if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+ident+`, public`); err != nil {
		return false, err
	}
	if strings.TrimSpace(body) != "" {
		if _, err := tx.Exec(ctx, body); err != nil {
			return false, err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+ident+`.schema_migrations (version) VALUES ($1)`, name); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}
