// Package statstest gives the stats tests what production has: databases
// with the credential service's real schema, applied by its own `credential
// migrate` (the stats module cannot import the credential module's
// internals, and must not copy its schema), and a private primary with a
// streaming hot standby to read from.
package statstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/platform/pgtest"
)

var credential struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// workspaceRoot is the directory holding go.work above the working directory.
func workspaceRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.work not found above the working directory")
		}
		dir = parent
	}
}

// credentialBinary builds the credential command once per test process.
func credentialBinary() (string, error) {
	credential.once.Do(func() {
		root, err := workspaceRoot()
		if err != nil {
			credential.err = err
			return
		}
		if credential.dir, err = os.MkdirTemp("", "statstest-bin-"); err != nil {
			credential.err = err
			return
		}
		credential.bin = filepath.Join(credential.dir, "credential")
		cmd := exec.Command("go", "build", "-o", credential.bin, "github.com/provcred/credential/cmd/credential")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			credential.err = fmt.Errorf("go build credential: %v\n%s", err, out)
		}
	})
	return credential.bin, credential.err
}

// Migrate applies the credential service's migrations to the database at dbURL.
func Migrate(t testing.TB, dbURL string) {
	t.Helper()
	if err := migrate(dbURL); err != nil {
		t.Fatal(err)
	}
}

func migrate(dbURL string) error {
	bin, err := credentialBinary()
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "migrate")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "LOG_LEVEL=warn")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("credential migrate: %v\n%s", err, out)
	}
	return nil
}

var template struct {
	once sync.Once
	name string
	drop func() error
	err  error
}

func adminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return pgtest.DefaultURL
}

// Main runs the package's tests and drops the migrated template database
// they cloned, and the credential binary. Call it from TestMain.
func Main(m interface{ Run() int }) int {
	code := m.Run()
	if template.drop != nil {
		if err := template.drop(); err != nil {
			fmt.Fprintln(os.Stderr, "statstest:", err)
		}
	}
	if credential.dir != "" {
		os.RemoveAll(credential.dir)
	}
	return code
}

// NewDB returns the URL of a fresh database with the credential schema,
// cloned from a template migrated once per test process, and a pool on it
// whose search_path is the credential schema (for seeding, as the credential
// service writes). Both go when t ends.
func NewDB(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	template.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var tplURL string
		tplURL, template.drop, template.err = pgtest.Scratch(ctx, adminURL(), "statstpl")
		if template.err != nil {
			return
		}
		u, _ := url.Parse(tplURL)
		template.name = u.Path[1:]
		template.err = migrate(tplURL)
	})
	if template.err != nil {
		t.Fatalf("statstest: template: %v", template.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, adminURL())
	if err != nil {
		t.Fatalf("statstest: %v", err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "statstest_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+template.name); err != nil {
		t.Fatalf("statstest: clone the template: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, adminURL()); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	u, _ := url.Parse(adminURL())
	u.Path = "/" + name
	return Pool(t, u.String(), "credential"), u.String()
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
