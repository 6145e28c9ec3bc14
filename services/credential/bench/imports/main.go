// Command imports benchmarks the source importers against psql's \copy of
// the same rows into the same database, in the same run.
//
//	go run ./bench/imports [-leie-rows 80000] [-nppes-rows 1000000] [-runs 1] [-db postgres://postgres@127.0.0.1:5432/postgres]
//
// For each file it generates (internal/gen, the real headers: 18 LEIE
// columns, 330 NPPES columns, every field quoted) it times:
//   - importer: sources/importer.Import from the file on disk: CSV parsing,
//     row validation, the JSON record and digest per row, COPY into a new
//     version table, its indexes, ANALYZE and the activation swap;
//   - psql \copy: `\copy t FROM file CSV HEADER` into a plain table with one
//     text column per CSV column and no index: the floor for loading the file.
//
// and prints rows/s for both and their ratio (importer / \copy; the goal is ≥ 0.7).
package main

import (
	"bufio"
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/gen"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/importer"
	"github.com/provcred/credential/internal/store"
	"github.com/provcred/platform/database"
	"github.com/provcred/platform/pgtest"
)

func main() {
	leieRows := flag.Int("leie-rows", 80000, "LEIE rows")
	nppesRows := flag.Int("nppes-rows", 1000000, "NPPES rows")
	runs := flag.Int("runs", 1, "runs of each measurement (the best is reported)")
	adminURL := flag.String("db", cmp.Or(os.Getenv("BENCH_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"PostgreSQL server; a scratch database is created on it and dropped")
	dir := flag.String("dir", "", "where to write the generated files (default: a temporary directory)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the importer runs to this file")
	flag.Parse()
	profilePath = *cpuProfile
	if err := run(*leieRows, *nppesRows, *runs, *adminURL, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench/imports:", err)
		os.Exit(1)
	}
}

var profilePath string

type result struct {
	source                string
	rows                  int64
	bytes                 int64
	importer, copy, same  time.Duration
	loadMS, indexMS, swap int64
}

func run(leieRows, nppesRows, runs int, adminURL, dir string) error {
	ctx := context.Background()
	if dir == "" {
		d, err := os.MkdirTemp("", "bench-imports-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	// Generate the files (a small roster; the bulk is unrelated rows, as in the real lists).
	const providers = 1000
	o := gen.DefaultOptions(providers)
	o.Seed, o.AsOf = 42, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	o.LEIEExtra, o.NPPESExtra, o.SAMExtra, o.LicenseExtra = max(leieRows-providers/7, 1), max(nppesRows-providers, 1), 1, 1
	g := gen.New(o)
	leiePath, nppesPath := filepath.Join(dir, gen.FileLEIE), filepath.Join(dir, gen.FileNPPES)
	t0 := time.Now()
	if err := writeFile(leiePath, g.WriteLEIE); err != nil {
		return err
	}
	if err := writeFile(nppesPath, g.WriteNPPES); err != nil {
		return err
	}
	fmt.Printf("generated %s and %s in %s\n", leiePath, nppesPath, time.Since(t0).Round(time.Millisecond))

	dbURL, drop, err := pgtest.Scratch(ctx, adminURL, "bench_imports")
	if err != nil {
		return err
	}
	defer drop()
	pool, err := database.Connect(ctx, database.Options{URL: dbURL, SearchPath: store.Schema, MaxConns: 4})
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+store.Schema); err != nil {
		return err
	}
	if _, err := database.Migrate(ctx, pool, store.Schema, store.Migrations()); err != nil {
		return err
	}
	im := importer.New(pool, slog.New(slog.NewTextHandler(io.Discard, nil)))

	var results []result
	formats := importer.Formats()
	for _, f := range []struct{ source, path string }{{sources.LEIE, leiePath}, {sources.NPPES, nppesPath}} {
		res := result{source: f.source}
		same := filepath.Join(dir, f.source+"-rows.csv")
		for i := 0; i < runs; i++ {
			_, _ = pool.Exec(ctx, "CHECKPOINT") // start each measurement from the same WAL state
			d, rec, err := timeImport(ctx, im, f.source, f.path)
			if err != nil {
				return err
			}
			if err := exportRows(ctx, pool, formats[f.source], rec.ID, same); err != nil {
				return err
			}
			if res.importer == 0 || d < res.importer {
				res.importer, res.rows, res.bytes = d, rec.Rows, rec.Bytes
				res.loadMS, res.indexMS, res.swap = deref(rec.LoadMS), deref(rec.IndexMS), deref(rec.SwapMS)
			}
			_, _ = pool.Exec(ctx, "CHECKPOINT")
			c, n, err := timeCopy(ctx, pool, dbURL, f.path)
			if err != nil {
				return err
			}
			if n != res.rows {
				return fmt.Errorf("%s: \\copy loaded %d rows, the importer %d", f.source, n, res.rows)
			}
			if res.copy == 0 || c < res.copy {
				res.copy = c
			}
			_, _ = pool.Exec(ctx, "CHECKPOINT")
			c, n, err = timeCopySame(ctx, pool, dbURL, formats[f.source], same)
			if err != nil {
				return err
			}
			if n != res.rows {
				return fmt.Errorf("%s: \\copy of the same rows loaded %d rows, the importer %d", f.source, n, res.rows)
			}
			if res.same == 0 || c < res.same {
				res.same = c
			}
		}
		results = append(results, res)
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)

	fmt.Printf("\n%-6s %8s %7s | %-27s | %-27s | %-27s | %s\n", "", "", "", "importer (load+index+swap)",
		"\\copy same rows, plain tbl", "\\copy raw file, text cols", "")
	fmt.Printf("%-6s %8s %7s | %8s %9s %8s | %8s %9s %8s | %8s %9s %8s | %s\n", "source", "rows", "MB",
		"s", "rows/s", "load r/s", "s", "rows/s", "ratio", "s", "rows/s", "ratio", "load/index/swap ms")
	for _, r := range results {
		ir := float64(r.rows) / r.importer.Seconds()
		lr := float64(r.rows) / (float64(r.loadMS) / 1000)
		sr := float64(r.rows) / r.same.Seconds()
		cr := float64(r.rows) / r.copy.Seconds()
		fmt.Printf("%-6s %8d %7.1f | %8.2f %9.0f %8.0f | %8.2f %9.0f %8.2f | %8.2f %9.0f %8.2f | %d/%d/%d\n", r.source, r.rows,
			float64(r.bytes)/1e6, r.importer.Seconds(), ir, lr, r.same.Seconds(), sr, ir/sr, r.copy.Seconds(), cr, ir/cr,
			r.loadMS, r.indexMS, r.swap)
	}
	fmt.Println("\nratio = importer rows/s ÷ baseline rows/s (goal ≥ 0.7 against \\copy of the same rows)")
	fmt.Printf("\nbenchmark process max RSS: %.1f MB (the importer streams: memory does not grow with the file)\n",
		float64(ru.Maxrss)/1024)
	return nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func timeImport(ctx context.Context, im *importer.Importer, source, path string) (time.Duration, *importer.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	if profilePath != "" {
		pf, err := os.Create(profilePath + "." + source)
		if err != nil {
			return 0, nil, err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return 0, nil, err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	rec, err := im.Import(ctx, importer.Request{Source: source, FileName: filepath.Base(path), Actor: "bench", Body: f})
	if err != nil {
		return 0, nil, fmt.Errorf("import %s: %w", source, err)
	}
	return time.Since(start), rec, nil
}

// timeCopy loads path with psql's \copy into a fresh plain table with a text
// column per CSV column.
func timeCopy(ctx context.Context, pool *pgxpool.Pool, dbURL, path string) (time.Duration, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	header, err := bufio.NewReader(f).ReadString('\n')
	f.Close()
	if err != nil {
		return 0, 0, err
	}
	n := strings.Count(header, ",") + 1 // the generated headers have no comma inside a name
	cols := make([]string, n)
	for i := range cols {
		cols[i] = fmt.Sprintf("c%d text", i+1)
	}
	if _, err := pool.Exec(ctx, "DROP TABLE IF EXISTS public.copy_baseline; CREATE TABLE public.copy_baseline ("+
		strings.Join(cols, ", ")+")"); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dbURL, "-c",
		fmt.Sprintf(`\copy public.copy_baseline FROM '%s' WITH (FORMAT csv, HEADER true)`, strings.ReplaceAll(path, "'", "''")))
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("psql \\copy: %v: %s", err, out)
	}
	var rows int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM public.copy_baseline").Scan(&rows); err != nil {
		return 0, 0, err
	}
	return d, rows, nil
}

// exportRows writes the rows the importer loaded (its table columns) as CSV,
// for the "same rows" baseline.
func exportRows(ctx context.Context, pool *pgxpool.Pool, f sources.Format, importID int64, path string) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	bw := bufio.NewWriterSize(out, 1<<20)
	_, err = conn.Conn().PgConn().CopyTo(ctx, bw, fmt.Sprintf("COPY (SELECT %s FROM %s WHERE import_id = %d) TO STDOUT WITH (FORMAT csv)",
		strings.Join(f.Columns(), ", "), f.Table(), importID))
	if err != nil {
		return fmt.Errorf("export rows: %w", err)
	}
	return bw.Flush()
}

// timeCopySame loads the importer's own rows with \copy into a plain table
// of the same column types, without indexes.
func timeCopySame(ctx context.Context, pool *pgxpool.Pool, dbURL string, f sources.Format, path string) (time.Duration, int64, error) {
	cols := strings.Join(f.Columns(), ", ")
	if _, err := pool.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS public.same_rows; CREATE TABLE public.same_rows AS SELECT %s FROM %s WITH NO DATA",
		cols, f.Table())); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dbURL, "-c",
		fmt.Sprintf(`\copy public.same_rows (%s) FROM '%s' WITH (FORMAT csv)`, cols, strings.ReplaceAll(path, "'", "''")))
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("psql \\copy: %v: %s", err, out)
	}
	var rows int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM public.same_rows").Scan(&rows); err != nil {
		return 0, 0, err
	}
	return d, rows, nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
