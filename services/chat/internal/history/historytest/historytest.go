// Package historytest gives tests a database with the chat schema migrated,
// copied from one template per migration set (platform/pgtest).
package historytest

import (
	"context"
	"io/fs"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/chat/internal/history"
	"github.com/provcred/platform/database"
	"github.com/provcred/platform/pgtest"
)

// Template is the chat schema's template database.
func Template(t testing.TB) pgtest.Template {
	t.Helper()
	key, err := pgtest.Fingerprint([]fs.FS{history.Migrations()})
	if err != nil {
		t.Fatal(err)
	}
	return pgtest.Template{Name: "chat", Key: key, SearchPath: history.Schema,
		Migrate: func(ctx context.Context, url string) error {
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				return err
			}
			defer pool.Close()
			_, err = database.Migrate(ctx, pool, history.Schema, history.Migrations())
			return err
		}}
}

// NewPool is a pool on a fresh copy of the template, closed and dropped when t ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, _ := Template(t).NewPool(t)
	return pool
}
