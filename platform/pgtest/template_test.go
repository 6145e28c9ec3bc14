package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
)

// testTemplate is a template with a key of its own (so each run builds it
// afresh) whose Migrate creates one table and logs each build to builds.
// Each test has a Name of its own: builds drop stale templates of their Name.
func testTemplate(name, key, builds string) Template {
	return Template{Name: "pgtest_" + name, Key: key, SearchPath: "s", Migrate: func(ctx context.Context, url string) error {
		if builds != "" {
			f, err := os.OpenFile(builds, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			fmt.Fprintln(f, os.Getpid())
			f.Close()
		}
		time.Sleep(200 * time.Millisecond) // a window for racing builders
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, `CREATE SCHEMA s; CREATE TABLE s.things (id int PRIMARY KEY); INSERT INTO s.things VALUES (1)`)
		return err
	}}
}

func randomKey(t *testing.T) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// dropTemplate removes a test's template when it ends.
func dropTemplate(t *testing.T, name string) {
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, adminURL())
		if err != nil {
			t.Log(err)
			return
		}
		defer c.Close(ctx)
		ident := pgx.Identifier{name}.Sanitize()
		_, _ = c.Exec(ctx, `ALTER DATABASE `+ident+` WITH IS_TEMPLATE false`)
		if _, err := c.Exec(ctx, `DROP DATABASE IF EXISTS `+ident+` WITH (FORCE)`); err != nil {
			t.Log(err)
		}
	})
}

func countThings(t *testing.T, tpl Template) int {
	pool, _ := tpl.NewPool(t)
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM things`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTemplateBuiltOnceAcrossProcesses starts copies of this test binary
// that all want the same, not yet existing template at once: one builds it,
// the others wait and copy it.
func TestTemplateBuiltOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	if os.Getenv("PGTEST_CHILD_KEY") != "" {
		t.Skip("run by the parent")
	}
	key, builds := randomKey(t), t.TempDir()+"/builds"
	dropTemplate(t, testTemplate("procs", key, "").database())
	var wg sync.WaitGroup
	errs := make([]error, 3)
	out := make([][]byte, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestTemplateChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "PGTEST_CHILD_KEY="+key, "PGTEST_CHILD_BUILDS="+builds)
			out[i], errs[i] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || !strings.Contains(string(out[i]), "PASS") {
			t.Fatalf("child %d: %v\n%s", i, err, out[i])
		}
	}
	b, err := os.ReadFile(builds)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 1 {
		t.Fatalf("template built %d times, want once", n)
	}
}

// TestTemplateChild is one process of TestTemplateBuiltOnceAcrossProcesses.
func TestTemplateChild(t *testing.T) {
	key := os.Getenv("PGTEST_CHILD_KEY")
	if key == "" {
		t.Skip("run by TestTemplateBuiltOnceAcrossProcesses")
	}
	tpl := testTemplate("procs", key, os.Getenv("PGTEST_CHILD_BUILDS"))
	var wg sync.WaitGroup
	for range 2 { // and several tests of one process at once
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n := countThings(t, tpl); n != 1 {
				t.Errorf("copy holds %d rows, want 1", n)
			}
		}()
	}
	wg.Wait()
}

// TestTemplateHalfBuiltIsRebuilt: a builder that died left a database that
// is not marked a template; the next build drops it and starts over.
func TestTemplateHalfBuiltIsRebuilt(t *testing.T) {
	t.Parallel()
	tpl := testTemplate("half", randomKey(t), "")
	dropTemplate(t, tpl.database())
	ctx := context.Background()
	c, err := pgx.Connect(ctx, adminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{tpl.database()}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if n := countThings(t, tpl); n != 1 {
		t.Fatalf("copy holds %d rows, want 1", n)
	}
}

// TestTemplateStaleDropped: building a template drops the same set's
// templates of other keys once they are older than staleAfter.
func TestTemplateStaleDropped(t *testing.T) {
	t.Parallel()
	old, fresh := testTemplate("stale", randomKey(t), ""), testTemplate("stale", randomKey(t), "")
	dropTemplate(t, old.database())
	dropTemplate(t, fresh.database())
	ctx := context.Background()
	c, err := pgx.Connect(ctx, adminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	ident := pgx.Identifier{old.database()}.Sanitize()
	for _, sql := range []string{`CREATE DATABASE ` + ident,
		`COMMENT ON DATABASE ` + ident + ` IS '` + builtComment + time.Now().Add(-2*staleAfter).UTC().Format(time.RFC3339) + `'`,
		`ALTER DATABASE ` + ident + ` WITH IS_TEMPLATE true`} {
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	countThings(t, fresh)
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, old.database()).Scan(&n); err != nil || n != 0 {
		t.Fatalf("stale template still there (%d, %v)", n, err)
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	a := fstest.MapFS{"0001_a.sql": {Data: []byte("CREATE TABLE a ()")}}
	b := fstest.MapFS{"0001_a.sql": {Data: []byte("CREATE TABLE b ()")}}
	ka, _ := Fingerprint([]fs.FS{a})
	kb, _ := Fingerprint([]fs.FS{b})
	ka2, _ := Fingerprint([]fs.FS{a})
	kx, _ := Fingerprint([]fs.FS{a}, "river 7")
	if ka != ka2 || ka == kb || ka == kx || len(ka) != 16 {
		t.Fatalf("fingerprints %s %s %s %s", ka, ka2, kb, kx)
	}
}
