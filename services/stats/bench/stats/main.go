// Command stats benchmarks the /stats/* reports at the size issue 13 asks
// for (100,000 providers, 1,000,000 verification runs with five checks
// each), through the service's real HTTP handler on a loopback listener:
//
//	go run ./bench/stats [-providers 100000] [-runs 1000000] [-requests 100] [-duration 3s] [-clients 50]
//
// The history is generated in SQL (generate_series) into a database of its
// own, migrated by the credential service's own `credential migrate`; the
// reporting summaries are built by its report_rebuild(), the backfill the
// migration itself runs. The reports read the reporting views only, as in
// production. Per report: p50 and p99 of sequential requests with the cache
// off (STATS_CACHE_TTL=0: every request queries) and on (answers from the
// cache), and requests/s with -clients concurrent clients, uncached (each
// request a different query, so singleflight shares nothing) and cached.
// Baselines from the same run: GET /livez on the same server (the HTTP
// floor), and decisions by day as a plain GROUP BY over the runs (what the
// summary tables replace).
//
// -keep keeps the seeded database (bench_stats_<providers>_<runs>) and a
// later run with the same sizes reuses it instead of seeding again.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/server"
	"github.com/provcred/stats/internal/cache"
	"github.com/provcred/stats/internal/replica"
	"github.com/provcred/stats/internal/reports"
)

// seedVersion changes when the generated history does: a kept database of
// another version is seeded again.
const seedVersion = 1

func main() {
	nProv := flag.Int("providers", 100000, "providers")
	nRuns := flag.Int("runs", 1000000, "verification runs (five checks each)")
	requests := flag.Int("requests", 100, "sequential requests per report for the uncached percentiles (cached: 10×)")
	duration := flag.Duration("duration", 3*time.Second, "length of each throughput measurement")
	clients := flag.Int("clients", 50, "concurrent clients of the throughput measurements")
	maxConns := flag.Int("max-conns", 10, "replica pool size (DATABASE_MAX_CONNS; the service's default is 10)")
	keep := flag.Bool("keep", false, "keep the seeded database, and reuse one seeded with the same sizes")
	admin := flag.String("db", cmp.Or(os.Getenv("BENCH_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"PostgreSQL server; the database is created on it (and dropped unless -keep)")
	flag.Parse()
	if *nProv < 100 || *nRuns < *nProv {
		fmt.Fprintln(os.Stderr, "bench/stats: need at least 100 providers and as many runs as providers")
		os.Exit(2)
	}
	o := options{providers: *nProv, runs: *nRuns, requests: *requests, duration: *duration, clients: *clients,
		maxConns: int32(*maxConns), keep: *keep, admin: *admin}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/stats:", err)
		os.Exit(1)
	}
}

type options struct {
	providers, runs, requests, clients int
	duration                           time.Duration
	maxConns                           int32
	keep                               bool
	admin                              string
}

func run(ctx context.Context, o options) error {
	dbURL, drop, fresh, err := database(ctx, o)
	if err != nil {
		return err
	}
	if !o.keep {
		defer drop()
	}
	// The history ends now: the reports' default ranges ("the last 30
	// days") and "today" fall inside it.
	now := time.Now().UTC().Truncate(time.Second)
	if fresh {
		fmt.Printf("migrating (credential migrate) and seeding %d providers, %d runs with %d checks...\n", o.providers, o.runs, 5*o.runs)
		t0 := time.Now()
		if err := migrate(ctx, dbURL); err != nil {
			return err
		}
		if err := seed(ctx, dbURL, o, now); err != nil {
			return err
		}
		fmt.Printf("seeded in %s\n", time.Since(t0).Round(time.Second))
	} else {
		// A kept database gets this build's migrations (0010 and later), and
		// its history was generated up to its own "now".
		if err := migrate(ctx, dbURL); err != nil {
			return err
		}
		if err := seededAt(ctx, dbURL, &now); err != nil {
			return err
		}
		fmt.Printf("reusing %s (seeded up to %s)\n", redact(dbURL), now.Format(time.RFC3339))
	}
	if err := describe(ctx, dbURL); err != nil {
		return err
	}

	// The service as cmd/stats wires it, twice: cache off and on.
	pool, err := readerPool(ctx, dbURL, o.maxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	clock := func() time.Time { return now }
	uncached, stop1, err := serve(pool, clock, 0)
	if err != nil {
		return err
	}
	defer stop1()
	cached, stop2, err := serve(pool, clock, time.Hour)
	if err != nil {
		return err
	}
	defer stop2()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * o.clients}, Timeout: time.Minute}

	today := now.UTC().Format(time.DateOnly)
	from2y := now.UTC().AddDate(0, 0, -729).Format(time.DateOnly)
	long := "from=" + from2y + "&to=" + today + "&tz=America/New_York"
	list := []struct {
		name, query string
		aim         time.Duration
		// vary gives the i-th request of the uncached throughput run a query
		// of the same cost that no other request shares.
		vary func(i int) string
	}{
		{"summary", "/stats/summary", 20 * time.Millisecond, func(i int) string { return "?tz=" + zones[i%len(zones)] }},
		{"decisions", "/stats/decisions?interval=day&" + long, 200 * time.Millisecond, shift(now, "&interval=day&tz=America/New_York")},
		{"checks", "/stats/checks?" + long, 200 * time.Millisecond, shift(now, "&tz=America/New_York")},
		{"turnaround", "/stats/turnaround?interval=week&" + long, 200 * time.Millisecond, shift(now, "&interval=week&tz=America/New_York")},
		{"expiring (license, 90 days)", "/stats/expiring?kind=license&within=90", 200 * time.Millisecond, limits("kind=license&within=90")},
		{"expiring (board_certification)", "/stats/expiring?kind=board_certification", 200 * time.Millisecond, limits("kind=board_certification")},
		{"expiring (recredentialing, 120 days)", "/stats/expiring?kind=recredentialing&within=120", 200 * time.Millisecond, limits("kind=recredentialing&within=120")},
		{"expiring (verification, stale now)", "/stats/expiring?kind=verification", 200 * time.Millisecond, limits("kind=verification")},
		{"batches", "/stats/batches?" + long, 200 * time.Millisecond, shift(now, "&tz=America/New_York")},
		{"monitoring", "/stats/monitoring?" + long, 200 * time.Millisecond, shift(now, "&tz=America/New_York")},
	}

	// Warm-up: connections, plans, the buffer cache; and every report must answer 200.
	for _, r := range list {
		for i := 0; i < 3; i++ {
			if _, err := get(client, uncached+r.query, cache.Miss); err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
		}
	}

	var rows []row
	measureOne := func(name string, aim time.Duration, seqURL, cachedURL string, vary func(int) string, base string) (row, error) {
		r := row{name: name, aim: aim}
		var err error
		if r.unc, err = sequential(o.requests, func() error { _, err := get(client, uncached+seqURL, cache.Miss); return err }); err != nil {
			return r, err
		}
		if _, err := get(client, cached+cachedURL); err != nil { // fill
			return r, err
		}
		if r.cac, err = sequential(10*o.requests, func() error { _, err := get(client, cached+cachedURL, cache.Hit); return err }); err != nil {
			return r, err
		}
		// Two requests in flight may still meet on one variant: shared, counted.
		r.uncRate = throughput(o.clients, o.duration, func(i int) (string, error) {
			return get(client, uncached+base+vary(i), cache.Miss, cache.Shared)
		})
		r.cacRate = throughput(o.clients, o.duration, func(int) (string, error) { return get(client, cached+cachedURL, cache.Hit) })
		return r, nil
	}
	livez, err := measureOne("baseline: GET /livez (same server)", 0, "/livez", "/livez", func(int) string { return "" }, "/livez")
	if err != nil {
		return fmt.Errorf("livez: %w", err)
	}
	rows = append(rows, livez)
	for _, r := range list {
		base := r.query[:strings.IndexByte(r.query, '?')+1]
		if !strings.Contains(r.query, "?") {
			base = r.query
		}
		m, err := measureOne(r.name, r.aim, r.query, r.query, r.vary, strings.TrimSuffix(base, "?"))
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		rows = append(rows, m)
	}
	raw, err := rawDecisions(ctx, pool, now, 5)
	if err != nil {
		return err
	}

	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("\n## Stats reports: %d providers, %d runs (%d checks), %s\n\n", o.providers, o.runs, 5*o.runs,
		time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Printf("Ranges: two years (%s to %s) in America/New_York, decisions by day, turnaround by week; "+
		"expiring: first page (50). Uncached: %d sequential requests, cache off; cached: %d; req/s: %d clients for %s "+
		"(uncached: every request a different query). Load average at the end: %s\n\n",
		from2y, today, o.requests, 10*o.requests, o.clients, o.duration, strings.TrimSpace(string(load)))
	fmt.Printf("| report | uncached p50 | uncached p99 | cached p50 | cached p99 | cached p50 / livez p50 | req/s uncached | req/s cached | aim (uncached p50) |\n")
	fmt.Printf("|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	missed := 0
	var failures []string
	for _, r := range rows {
		aim := "—"
		if r.aim > 0 {
			aim = fmt.Sprintf("< %s: ", r.aim)
			if pct(r.unc, 50) < r.aim {
				aim += "met"
			} else {
				aim += "**missed**"
				missed++
			}
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %.2f× | %s | %s | %s |\n", r.name, ms(pct(r.unc, 50)), ms(pct(r.unc, 99)),
			ms(pct(r.cac, 50)), ms(pct(r.cac, 99)), float64(pct(r.cac, 50))/float64(pct(livez.cac, 50)),
			r.uncRate.String(), r.cacRate.String(), aim)
		for _, e := range []error{r.uncRate.firstErr, r.cacRate.firstErr} {
			if e != nil {
				failures = append(failures, r.name+": "+e.Error())
			}
		}
	}
	dec := rows[2]
	fmt.Printf("\n| baseline | p50 | ratio |\n|---|---:|---:|\n")
	fmt.Printf("| decisions by day over the same two years as a plain GROUP BY of credential_runs (median of %d) | %s | |\n", len(raw), ms(pct(raw, 50)))
	fmt.Printf("| GET /stats/decisions uncached p50 / that GROUP BY | | %.3f× |\n", float64(pct(dec.unc, 50))/float64(pct(raw, 50)))
	for _, f := range failures {
		fmt.Println("first failure of", f)
	}
	if missed > 0 {
		fmt.Printf("\n%d report(s) missed the aim\n", missed)
	}
	return nil
}

// zones are whole-hour zones: the summary costs the same in each.
var zones = []string{"UTC", "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
	"America/Anchorage", "America/Phoenix", "America/Halifax", "America/Sao_Paulo", "America/Mexico_City",
	"America/Bogota", "America/Lima", "Europe/London", "Europe/Berlin", "Europe/Paris", "Europe/Athens",
	"Europe/Moscow", "Europe/Istanbul", "Africa/Lagos", "Africa/Cairo", "Africa/Nairobi", "Asia/Dubai",
	"Asia/Karachi", "Asia/Dhaka", "Asia/Bangkok", "Asia/Shanghai", "Asia/Tokyo", "Asia/Seoul",
	"Australia/Brisbane", "Pacific/Port_Moresby", "Pacific/Guam", "Pacific/Honolulu", "Pacific/Pago_Pago",
	"Atlantic/Azores", "Atlantic/Cape_Verde", "Asia/Jakarta", "Asia/Manila", "Asia/Riyadh", "Europe/Kaliningrad",
	"America/Puerto_Rico", "America/Regina", "America/Guatemala", "Asia/Yekaterinburg", "Asia/Omsk",
	"Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok", "Asia/Magadan", "Pacific/Fiji",
	"Pacific/Tongatapu", "Pacific/Kiritimati", "Asia/Tashkent", "Asia/Baku", "Asia/Tbilisi", "Indian/Maldives",
	"Indian/Mauritius", "Asia/Ho_Chi_Minh", "Asia/Singapore", "Asia/Hong_Kong"}

// shift: two-year ranges ending i days ago (i < 60): the same cost, a different query.
func shift(now time.Time, rest string) func(int) string {
	return func(i int) string {
		to := now.UTC().AddDate(0, 0, -(i % 60))
		return "?from=" + to.AddDate(0, 0, -729).Format(time.DateOnly) + "&to=" + to.Format(time.DateOnly) + rest
	}
}

// limits: pages of 40 to 100 items.
func limits(rest string) func(int) string {
	return func(i int) string { return fmt.Sprintf("?%s&limit=%d", rest, 40+i%61) }
}

// row is one report's measurements.
type row struct {
	name             string
	aim              time.Duration
	unc, cac         []time.Duration
	uncRate, cacRate rate
}

// get fetches u and checks that it answered 200, from the cache as said:
// X-Cache one of want (none given: any).
func get(client *http.Client, u string, want ...string) (string, error) {
	resp, err := client.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %.300s", u, resp.StatusCode, b)
	}
	got := resp.Header.Get("X-Cache")
	if len(want) == 0 || strings.HasSuffix(u, "/livez") {
		return got, nil
	}
	for _, w := range want {
		if got == w {
			return got, nil
		}
	}
	return got, fmt.Errorf("GET %s: X-Cache %q, want %s", u, got, strings.Join(want, " or "))
}

func sequential(n int, f func() error) ([]time.Duration, error) {
	lat := make([]time.Duration, n)
	for i := range lat {
		s := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		lat[i] = time.Since(s)
	}
	return lat, nil
}

// rate is a throughput measurement: completed requests per second, and
// how many answers were shared with a concurrent identical request.
type rate struct {
	perSecond      float64
	shared, failed int64
	firstErr       error
}

// throughput runs f from c clients for d.
func throughput(c int, d time.Duration, f func(i int) (string, error)) rate {
	var done, shared, failed, next atomic.Int64
	var once sync.Once
	var r rate
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				how, err := f(int(next.Add(1)))
				if err != nil {
					failed.Add(1)
					once.Do(func() { r.firstErr = err })
					continue
				}
				if how == cache.Shared {
					shared.Add(1)
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	r.perSecond, r.shared, r.failed = float64(done.Load())/time.Since(start).Seconds(), shared.Load(), failed.Load()
	return r
}

func (r rate) String() string {
	s := fmt.Sprintf("%.0f", r.perSecond)
	var notes []string
	if r.shared > 0 {
		notes = append(notes, fmt.Sprintf("%d shared", r.shared))
	}
	if r.failed > 0 {
		notes = append(notes, fmt.Sprintf("**%d failed**", r.failed))
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	return s
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(idx, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "?"
	}
	return p.Redacted()
}

// serve starts the stats service's handler with cache TTL ttl on a
// loopback listener, as cmd/stats wires it.
func serve(pool *pgxpool.Pool, now func() time.Time, ttl time.Duration) (string, func(), error) {
	reg := metrics.New("stats")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	timeout := 10 * time.Second
	reader := replica.New(pool, timeout, reg).WithClock(now)
	srv := server.New(server.Options{Service: "stats", Logger: log, Metrics: reg, BodyLimit: 1 << 20,
		RequestTimeout: 30 * time.Second, Info: reader.Info})
	(&reports.Handler{Reader: reader, Cache: cache.New(cache.Options{TTL: ttl, MaxEntries: 1000,
		MaxSize: reports.MaxCacheRows, LoadTimeout: timeout + timeout/2}, reg)}).Routes(srv.App)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go func() { _ = srv.App.Listener(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.App.Shutdown() }, nil
}

// readerPool is the stats service's pool: search_path is the reporting schema.
func readerPool(ctx context.Context, dbURL string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = "reporting"
	cfg.MaxConns = maxConns
	return pgxpool.NewWithConfig(ctx, cfg)
}

// rawDecisions times decisions by New York day over two years computed
// from the runs themselves (n times).
func rawDecisions(ctx context.Context, pool *pgxpool.Pool, now time.Time, n int) ([]time.Duration, error) {
	loc, _ := time.LoadLocation("America/New_York")
	end := time.Date(now.In(loc).Year(), now.In(loc).Month(), now.In(loc).Day()+1, 0, 0, 0, 0, loc)
	start := time.Date(end.Year(), end.Month(), end.Day()-730, 0, 0, 0, 0, loc)
	var out []time.Duration
	for i := 0; i < n; i++ {
		s := time.Now()
		rows, err := pool.Query(ctx, `SELECT (finished_at AT TIME ZONE 'America/New_York')::date, decision, count(*)
			FROM credential.credential_runs WHERE finished_at >= $1 AND finished_at < $2 GROUP BY 1, 2`, start, end)
		if err != nil {
			return nil, err
		}
		k := 0
		for rows.Next() {
			k++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("raw decisions: %w", err)
		}
		out = append(out, time.Since(s))
	}
	return out, nil
}

// database creates (or, with -keep, finds) the benchmark's database; fresh
// says it has to be seeded.
func database(ctx context.Context, o options) (dbURL string, drop func(), fresh bool, err error) {
	u, err := url.Parse(o.admin)
	if err != nil {
		return "", nil, false, err
	}
	name := fmt.Sprintf("bench_stats_%d_%d", o.providers, o.runs)
	u.Path = "/" + name
	dbURL = u.String()
	admin, err := pgx.Connect(ctx, o.admin)
	if err != nil {
		return "", nil, false, fmt.Errorf("connect to %s: %w", redact(o.admin), err)
	}
	defer admin.Close(ctx)
	drop = func() {
		c, err := pgx.Connect(context.Background(), o.admin)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", nil, false, err
	}
	if exists && o.keep {
		c, err := pgx.Connect(ctx, dbURL)
		if err == nil {
			var v int
			err = c.QueryRow(ctx, `SELECT version FROM public.bench_seed`).Scan(&v)
			c.Close(ctx)
			if err == nil && v == seedVersion {
				return dbURL, drop, false, nil
			}
		}
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return "", nil, false, err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, false, err
	}
	return dbURL, drop, true, nil
}

// migrate runs `credential migrate` (the stats module may not import the
// credential service's internals, and must not copy its schema).
func migrate(ctx context.Context, dbURL string) error {
	dir, err := os.MkdirTemp("", "bench-stats")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	build := exec.CommandContext(ctx, "go", "build", "-o", dir, "github.com/provcred/credential/cmd/credential")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build credential: %w\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "credential"), "migrate")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "LOG_LEVEL=warn")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("credential migrate: %w\n%s", err, out)
	}
	return nil
}

func seededAt(ctx context.Context, dbURL string, now *time.Time) error {
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return c.QueryRow(ctx, `SELECT seeded_now FROM public.bench_seed`).Scan(now)
}

// describe prints the sizes the reports read.
func describe(ctx context.Context, dbURL string) error {
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	var out []string
	for _, t := range []string{"providers", "provider_licenses", "report_board_certifications", "credential_runs",
		"credential_checks", "report_counts", "report_first_decisions", "report_review_episodes", "batches",
		"batch_items", "audit_log"} {
		var n int64
		if err := c.QueryRow(ctx, `SELECT count(*) FROM credential.`+t).Scan(&n); err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d", t, n))
	}
	fmt.Println("rows:", strings.Join(out, ", "))
	return nil
}
