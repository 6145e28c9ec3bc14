// Package store holds the credential service's schema: its own SQL
// migrations (embedded) and River's, applied at start-up and by
// `credential migrate`.
package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/provcred/platform/database"
)

// Schema is the PostgreSQL schema the credential service owns.
const Schema = "credential"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the migration files, named NNNN_name.sql.
func Migrations() fs.FS { return database.Embedded(migrations, "migrations") }

// Migrate applies the service's SQL migrations, then River's: the whole
// schema a replica needs.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := database.Migrate(ctx, pool, Schema, Migrations()); err != nil {
		return err
	}
	return MigrateRiver(ctx, pool)
}

// MigrateRiver applies River's own migrations (its job tables: the batch
// queue) into the schema. It runs after the SQL migrations (as
// service.Database.Extra); a session advisory lock makes replicas starting
// together apply them once.
func MigrateRiver(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("river migrate: %w", err)
	}
	defer conn.Release()
	const lockSQL = `SELECT pg_advisory_lock(hashtext('river-migrate:' || $1))`
	if _, err := conn.Exec(ctx, lockSQL, Schema); err != nil {
		return fmt.Errorf("river migrate lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must go even if ctx ended.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(uctx, `SELECT pg_advisory_unlock(hashtext('river-migrate:' || $1))`, Schema)
	}()
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{Schema}.Sanitize()); err != nil {
		return fmt.Errorf("river migrate schema: %w", err)
	}
	m, err := riverMigrator(pool)
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrate: %w", err)
	}
	return nil
}

func riverMigrator(pool *pgxpool.Pool) (*rivermigrate.Migrator[pgx.Tx], error) {
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: Schema})
	if err != nil {
		return nil, fmt.Errorf("river migrate: %w", err)
	}
	return m, nil
}

// RiverMigrations is the SQL of every River migration, in order: with
// Migrations, what identifies the schema (test templates hash both).
func RiverMigrations() ([]string, error) {
	m, err := riverMigrator(nil)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, v := range m.AllVersions() {
		out = append(out, strconv.Itoa(v.Version)+"\n"+v.SQLUp)
	}
	return out, nil
}
