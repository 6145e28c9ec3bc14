// Package statstest gives the stats tests what production has: databases
// with the credential service's real schema, applied by its own `credential
// migrate` (the stats module cannot import the credential module's
// internals, and must not copy its schema), and a private primary with a
// streaming hot standby to read from.
package statstest

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/platform/pgtest"
	"github.com/provcred/platform/proctest"
)

const credentialCmd = "github.com/provcred/credential/cmd/credential"

// credentialBinary builds the credential command (once per process).
func credentialBinary(t testing.TB) string {
	t.Helper()
	return proctest.Binary(proctest.Build(t, credentialCmd), credentialCmd)
}

func migrate(ctx context.Context, bin, dbURL string) error {
	cmd := exec.CommandContext(ctx, bin, "migrate")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "LOG_LEVEL=warn")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("credential migrate: %w\n%s", err, out)
	}
	return nil
}

// Migrate applies the credential service's migrations to the database at
// dbURL (a server of the test's own; others copy the template).
func Migrate(t testing.TB, dbURL string) {
	t.Helper()
	if err := migrate(context.Background(), credentialBinary(t), dbURL); err != nil {
		t.Fatal(err)
	}
}

// template is the credential schema as a pgtest template; its key hashes
// what decides that schema: the store package (its migrations) and the
// module's go.mod (River's version).
func template(t testing.TB) pgtest.Template {
	t.Helper()
	credential := filepath.Join(proctest.WorkspaceRoot(t), "services", "credential")
	gomod, err := os.ReadFile(filepath.Join(credential, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := pgtest.Fingerprint([]fs.FS{os.DirFS(filepath.Join(credential, "internal", "store"))}, string(gomod))
	if err != nil {
		t.Fatal(err)
	}
	bin := credentialBinary(t)
	return pgtest.Template{Name: "stats_credential", Key: key, SearchPath: "credential",
		Migrate: func(ctx context.Context, url string) error { return migrate(ctx, bin, url) }}
}

// NewDB returns a fresh database with the credential schema, and a pool on
// it whose search_path is the credential schema (for seeding, as the
// credential service writes). Both go when t ends.
func NewDB(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	return template(t).NewPool(t)
}

// Pool opens a pool on dbURL with search_path set (closed when t ends).
func Pool(t testing.TB, dbURL, searchPath string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = searchPath
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
