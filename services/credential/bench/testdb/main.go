// Command testdb measures what a database test pays for its database, the
// way the credential tests get one now against the way they did before
// pgtest.Template, in the same run on the same server:
//
//		go run ./bench/testdb [-n 16] [-parallel 4] [-db postgres://postgres@127.0.0.1:5432/postgres]
//
//	  - migrate each, one after another (before): CREATE DATABASE from
//	    template0, every SQL migration and River's, then DROP;
//	  - template copy, one after another: CREATE DATABASE … TEMPLATE of the
//	    migrated template (testdb.Template), a ping, then DROP;
//	  - template copy, -parallel at once: the same with the tests'
//	    t.Parallel() (make test runs packages with -parallel).
//
// It prints the wall time for n databases and each row's speed-up over the
// first (a ratio, so it holds on a shared machine).
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/store"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/pgtest"
)

func main() {
	n := flag.Int("n", 16, "databases per row")
	parallel := flag.Int("parallel", 4, "databases made at once in the last row")
	admin := flag.String("db", cmp.Or(os.Getenv("BENCH_DATABASE_URL"), pgtest.DefaultURL), "PostgreSQL server (databases are created on it and dropped)")
	flag.Parse()
	if *n < 1 || *parallel < 1 {
		fmt.Fprintln(os.Stderr, "bench/testdb: -n and -parallel must be at least 1")
		os.Exit(2)
	}
	if err := run(context.Background(), *admin, *n, *parallel); err != nil {
		fmt.Fprintln(os.Stderr, "bench/testdb:", err)
		os.Exit(1)
	}
}

// one makes a database, opens a pool on it and drops it.
type one func(ctx context.Context) error

func run(ctx context.Context, admin string, n, parallel int) error {
	tpl, err := testdb.Template()
	if err != nil {
		return err
	}
	// Build the template outside the timing, as make test does once per server.
	if _, drop, err := tpl.Copy(ctx, admin, "bench"); err != nil {
		return err
	} else if err := drop(); err != nil {
		return err
	}
	migrate := func(ctx context.Context) error {
		url, drop, err := pgtest.Scratch(ctx, admin, "bench")
		if err != nil {
			return err
		}
		defer drop() //nolint:errcheck // reported by the next create if it matters
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		return store.Migrate(ctx, pool)
	}
	cp := func(ctx context.Context) error {
		url, drop, err := tpl.Copy(ctx, admin, "bench")
		if err != nil {
			return err
		}
		defer drop() //nolint:errcheck
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		return pool.Ping(ctx)
	}
	rows := []struct {
		name    string
		f       one
		workers int
	}{
		{"migrate each, one after another (before)", migrate, 1},
		{"template copy, one after another", cp, 1},
		{fmt.Sprintf("template copy, %d at once", parallel), cp, parallel},
	}
	fmt.Printf("%d databases per row, credential schema (SQL migrations + River's)\n\n", n)
	fmt.Printf("%-44s %10s %12s %9s\n", "row", "wall", "per db", "speed-up")
	var base time.Duration
	for i, r := range rows {
		wall, err := timeRow(ctx, r.f, n, r.workers)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		if i == 0 {
			base = wall
		}
		fmt.Printf("%-44s %9.2fs %10.0fms %8.1fx\n", r.name, wall.Seconds(),
			float64(wall.Milliseconds())/float64(n), base.Seconds()/wall.Seconds())
	}
	return nil
}

// timeRow runs f n times on workers goroutines and returns the wall time.
func timeRow(ctx context.Context, f one, n, workers int) (time.Duration, error) {
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				if err := f(ctx); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), first
}
