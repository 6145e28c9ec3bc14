package database

import (
	"context"
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"github.com/provcred/platform/pgtest"
)

func TestConnectAndMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool, err := Connect(ctx, Options{URL: url, SearchPath: "svc", MaxConns: 4, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	migs := fstest.MapFS{
		"0001_a.sql": {Data: []byte(`CREATE TABLE things (id int PRIMARY KEY);`)},
		"0002_b.sql": {Data: []byte(`ALTER TABLE things ADD COLUMN name text;`)},
	}
	applied, err := Migrate(ctx, pool, "svc", migs)
	if err != nil || len(applied) != 2 {
		t.Fatalf("applied %v, err %v", applied, err)
	}
	// Idempotent, and objects landed in the service schema.
	applied, err = Migrate(ctx, pool, "svc", migs)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second run applied %v, err %v", applied, err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO svc.things (id, name) VALUES (1, 'x')`); err != nil {
		t.Fatal(err)
	}
	// Unqualified names resolve through the pool's search_path.
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM things`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("n=%d err=%v", n, err)
	}
}

func TestMigrateFailureRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.NewPool(t, "")
	migs := fstest.MapFS{
		"0001_ok.sql":  {Data: []byte(`CREATE TABLE a (id int);`)},
		"0002_bad.sql": {Data: []byte(`CREATE TABLE b (id int); SELECT nonsense FROM nowhere;`)},
	}
	if _, err := Migrate(ctx, pool, "svc2", migs); err == nil {
		t.Fatal("want error")
	}
	var exists bool
	_ = pool.QueryRow(ctx, `SELECT to_regclass('svc2.b') IS NOT NULL`).Scan(&exists)
	if exists {
		t.Fatal("failed migration left table b behind")
	}
	var n int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM svc2.schema_migrations`).Scan(&n)
	if n != 1 {
		t.Fatalf("recorded %d migrations, want 1", n)
	}
}

func TestConnectGivesUp(t *testing.T) {
	t.Parallel()
	start := time.Now()
	_, err := Connect(context.Background(), Options{URL: "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=1", ConnectTimeout: 700 * time.Millisecond})
	if err == nil {
		t.Fatal("want error")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
}

// Embedded hands Migrate the folder's files by their own names.
func TestEmbedded(t *testing.T) {
	t.Parallel()
	files := fstest.MapFS{"migrations/0001_a.sql": {Data: []byte("SELECT 1")}, "other.txt": {}}
	got, err := fs.Glob(Embedded(files, "migrations"), "*.sql")
	if err != nil || len(got) != 1 || got[0] != "0001_a.sql" {
		t.Fatalf("%v %v", got, err)
	}
}
