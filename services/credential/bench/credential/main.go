// Command credential benchmarks the check engine and continuous monitoring
// on a scratch database, each next to a baseline measured in the same run:
//
//		go run ./bench/credential [-providers 50000] [-exclusions 80000] [-requests 400] [-concurrency 8] [-runs 3]
//
//	 1. Re-screening: monitor.Rescreen of every provider against an LEIE
//	    version (the set-based UPDATE + audit INSERT ... SELECT), next to the
//	    same join as a plain SELECT count(*): the ratio is what flagging and
//	    auditing cost on top of finding the matches.
//	 2. POST /credential latency through a real listener (platform server,
//	    results handler, engine with local sources), sequential and
//	    concurrent, next to two floors: GET /livez on the same server (HTTP
//	    cost) and the five source lookups as plain sequential SQL (data cost).
//
// Sources are loaded through the real importer (LEIE, SAM, NPPES, licenses);
// providers are COPYed in directly (their API is not what is measured).
package main

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/checks"
	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/monitor"
	"github.com/provcred/credential/internal/names"
	"github.com/provcred/credential/internal/npi"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/sources/importer"
	"github.com/provcred/credential/internal/sources/leie"
	"github.com/provcred/credential/internal/sources/licenses"
	"github.com/provcred/credential/internal/sources/sam"
	"github.com/provcred/credential/internal/store"
	"github.com/provcred/platform/database"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/pgtest"
	"github.com/provcred/platform/server"
)

func main() {
	nProv := flag.Int("providers", 50000, "providers")
	nExcl := flag.Int("exclusions", 80000, "LEIE rows")
	requests := flag.Int("requests", 400, "POST /credential requests per latency measurement")
	conc := flag.Int("concurrency", 8, "concurrent clients for the concurrent measurement")
	runs := flag.Int("runs", 3, "runs of the re-screen measurement (the median is reported)")
	maxConns := flag.Int("max-conns", 48, "pool size: one credentialing holds up to 4 connections at once (its checks)")
	admin := flag.String("db", cmp.Or(os.Getenv("BENCH_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"PostgreSQL server; a scratch database is created on it and dropped")
	flag.Parse()
	if err := run(*nProv, *nExcl, *requests, *conc, *runs, int32(*maxConns), *admin); err != nil {
		fmt.Fprintln(os.Stderr, "bench/credential:", err)
		os.Exit(1)
	}
}

func makeNPI(i int) string {
	base := fmt.Sprintf("1%08d", i)
	return base + string(npi.CheckDigit(base))
}

var (
	firsts = []string{"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
		"William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen"}
	lasts = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
		"Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
		"Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson"}
)

// person i's name and DOB, deterministic.
func person(i int) (first, last string, dob time.Time) {
	return firsts[i%len(firsts)], lasts[(i/len(firsts))%len(lasts)] + fmt.Sprint(i/(len(firsts)*len(lasts))),
		time.Date(1950+i%45, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC)
}

func run(nProv, nExcl, requests, conc, runs int, maxConns int32, adminURL string) error {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dbURL, drop, err := pgtest.Scratch(ctx, adminURL, "bench_credential")
	if err != nil {
		return err
	}
	defer drop()
	pool, err := database.Connect(ctx, database.Options{URL: dbURL, SearchPath: store.Schema, MaxConns: maxConns})
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := database.Migrate(ctx, pool, store.Schema, store.Migrations()); err != nil {
		return err
	}
	fmt.Printf("seeding %d providers, %d LEIE rows, NPPES/licenses for every provider...\n", nProv, nExcl)
	t0 := time.Now()
	if err := seedProviders(ctx, pool, nProv); err != nil {
		return err
	}
	im := importer.New(pool, log)
	excluded := nProv / 50 // 2% of providers are in the LEIE by NPI
	leieID, err := importFile(ctx, im, "leie", func(w io.Writer) { writeLEIE(w, nProv, nExcl, excluded) })
	if err != nil {
		return err
	}
	for src, write := range map[string]func(io.Writer){
		"sam":      func(w io.Writer) { writeSAM(w, nProv) },
		"nppes":    func(w io.Writer) { writeNPPES(w, nProv) },
		"licenses": func(w io.Writer) { writeLicenses(w, nProv) },
	} {
		if _, err := importFile(ctx, im, src, write); err != nil {
			return err
		}
	}
	fmt.Printf("seeded in %s\n\n", time.Since(t0).Round(time.Millisecond))

	// 1. Re-screening.
	reg := metrics.New("credential")
	mon := monitor.New(pool, reg, log)
	baselineSQL := `SELECT count(DISTINCT p.id) FROM providers p JOIN active_exclusions e ON e.npi = p.npi
		WHERE e.source = $1 AND e.import_id = $2 AND p.exclusion_flagged_at IS NULL
		  AND (e.rein_date IS NULL OR e.rein_date > (now() AT TIME ZONE 'UTC')::date)
		  AND (e.termination_date IS NULL OR e.termination_date > (now() AT TIME ZONE 'UTC')::date)`
	var base, resc []time.Duration
	var flagged, counted int
	for r := 0; r < runs; r++ {
		if _, err := pool.Exec(ctx, `UPDATE providers SET exclusion_flagged_at = NULL`); err != nil {
			return err
		}
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE providers`); err != nil {
			return err
		}
		s := time.Now()
		if err := pool.QueryRow(ctx, baselineSQL, "leie", leieID).Scan(&counted); err != nil {
			return err
		}
		base = append(base, time.Since(s))
		s = time.Now()
		if flagged, err = mon.Rescreen(ctx, "leie", leieID); err != nil {
			return err
		}
		resc = append(resc, time.Since(s))
	}
	if flagged != counted || flagged != excluded {
		return fmt.Errorf("re-screen flagged %d, the join counts %d, %d were seeded", flagged, counted, excluded)
	}
	again, err := mon.Rescreen(ctx, "leie", leieID)
	if err != nil || again != 0 {
		return fmt.Errorf("second re-screen flagged %d (%v), want 0", again, err)
	}
	mb, mr := median(base), median(resc)
	fmt.Printf("## Re-screen: %d providers × %d LEIE rows (median of %d runs)\n\n", nProv, nExcl, runs)
	fmt.Printf("| measurement | time | newly flagged |\n|---|---:|---:|\n")
	fmt.Printf("| baseline: SELECT count(*) of the same join | %s | %d |\n", ms(mb), counted)
	fmt.Printf("| monitor.Rescreen (flag + audit, one statement) | %s | %d |\n", ms(mr), flagged)
	fmt.Printf("| ratio Rescreen / baseline | %.2f× | |\n", float64(mr)/float64(mb))
	fmt.Printf("| re-run on the same version | | %d |\n\n", again)

	// 2. POST /credential latency.
	opts := checks.Settings(config.Defaults().Checks)
	opts.DB, opts.Runs, opts.Providers, opts.Metrics, opts.Log = pool, results.NewStore(pool), providers.NewStore(pool), reg, log
	eng := checks.New(opts)
	srv := server.New(server.Options{Service: "credential", Logger: log, Metrics: reg, BodyLimit: 1 << 20})
	(&checks.Handler{Engine: eng}).Routes(srv.App)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = srv.App.Listener(ln) }()
	defer srv.App.Shutdown()
	base0 := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	post := func(i int) error {
		resp, err := client.Post(base0+"/credential/p"+fmt.Sprint(i%nProv), "application/json", nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"decision"`)) {
			return fmt.Errorf("POST /credential: %d %.200s", resp.StatusCode, b)
		}
		return nil
	}
	livez := func(int) error {
		resp, err := client.Get(base0 + "/livez")
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil
	}
	lookups := func(i int) error { return rawLookups(ctx, pool, i%nProv) }
	for i := 0; i < 30; i++ { // warm caches and connections
		if err := post(i * 7919); err != nil {
			return err
		}
	}
	stride := func(f func(int) error) func(int) error { return func(i int) error { return f(i * 7919) } }
	type row struct {
		name string
		lat  []time.Duration
		wall time.Duration
	}
	var rows []row
	for _, m := range []struct {
		name string
		f    func(int) error
		c    int
	}{
		{"baseline: GET /livez, sequential", livez, 1},
		{"baseline: the 5 source lookups as plain SQL, sequential", stride(lookups), 1},
		{"POST /credential, sequential", stride(post), 1},
		{fmt.Sprintf("POST /credential, %d concurrent clients", conc), stride(post), conc},
	} {
		lat, wall, err := measure(requests, m.c, m.f)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		rows = append(rows, row{m.name, lat, wall})
	}
	fmt.Printf("## POST /credential latency (%d requests each, local sources, real listener)\n\n", requests)
	fmt.Printf("| measurement | p50 | p95 | p99 | mean | req/s |\n|---|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %s | %s | %.0f |\n", r.name, ms(pct(r.lat, 50)), ms(pct(r.lat, 95)), ms(pct(r.lat, 99)),
			ms(mean(r.lat)), float64(len(r.lat))/r.wall.Seconds())
	}
	seqP50 := pct(rows[2].lat, 50)
	fmt.Printf("| ratio POST p50 / plain-SQL lookups p50 | %.2f× | | | | |\n", float64(seqP50)/float64(pct(rows[1].lat, 50)))
	fmt.Printf("| ratio concurrent / sequential throughput | | | | | %.2f× |\n\n",
		(float64(len(rows[3].lat))/rows[3].wall.Seconds())/(float64(len(rows[2].lat))/rows[2].wall.Seconds()))
	var runsStored int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM credential_runs`).Scan(&runsStored)
	fmt.Printf("runs stored: %d (each with 5 checks, evidence and an audit entry)\n", runsStored)
	return nil
}

func measure(n, c int, f func(int) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	var mu sync.Mutex
	var firstErr error
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s := time.Now()
				err := f(i)
				lat[i] = time.Since(s)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return lat, time.Since(start), firstErr
}

// rawLookups is the data floor of one credentialing: the five lookups the
// checks make, as plain sequential SQL without the engine, HTTP or storage.
func rawLookups(ctx context.Context, pool *pgxpool.Pool, i int) error {
	n := makeNPI(i)
	first, last, _ := person(i)
	var x int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM active_nppes WHERE npi = $1`, n).Scan(&x); err != nil {
		return err
	}
	for _, src := range []string{"leie", "sam"} {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM active_exclusions WHERE source = $1 AND (npi = $2 OR (last_norm = $3 AND first_norm = $4))`,
			src, n, names.Part(last), names.Part(first)).Scan(&x); err != nil {
			return err
		}
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM active_licenses WHERE state = 'IL' AND license_number = $1`, fmt.Sprintf("L%07d", i)).Scan(&x); err != nil {
		return err
	}
	return pool.QueryRow(ctx, `SELECT count(*) FROM providers WHERE id = $1`, "p"+fmt.Sprint(i)).Scan(&x)
}

func seedProviders(ctx context.Context, pool *pgxpool.Pool, n int) error {
	rows := make([][]any, n)
	lics := make([][]any, n)
	exp := time.Now().AddDate(2, 0, 0)
	for i := 0; i < n; i++ {
		first, last, dob := person(i)
		rows[i] = []any{"p" + fmt.Sprint(i), makeNPI(i), first, last, dob}
		lics[i] = []any{"p" + fmt.Sprint(i), "IL", fmt.Sprintf("L%07d", i), "MD", exp}
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"providers"}, []string{"id", "npi", "first_name", "last_name", "date_of_birth"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("copy providers: %w", err)
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"provider_licenses"}, []string{"provider_id", "state", "number", "type", "expires_on"}, pgx.CopyFromRows(lics)); err != nil {
		return fmt.Errorf("copy licenses: %w", err)
	}
	_, err := pool.Exec(ctx, `ANALYZE providers; ANALYZE provider_licenses`)
	return err
}

func importFile(ctx context.Context, im *importer.Importer, source string, write func(io.Writer)) (int64, error) {
	pr, pw := io.Pipe()
	go func() { write(pw); pw.Close() }()
	rec, err := im.Import(ctx, importer.Request{Source: source, FileName: source + ".csv", Actor: "bench", Body: pr})
	if err != nil {
		return 0, fmt.Errorf("import %s: %w", source, err)
	}
	return rec.ID, nil
}

func q(w io.Writer, fields ...string) {
	fmt.Fprintf(w, "\"%s\"\n", strings.Join(fields, `","`))
}

// writeLEIE: `excluded` providers by NPI (every 50th), the rest unrelated
// people, half with NPIs of no provider, half with 0000000000.
func writeLEIE(w io.Writer, nProv, rows, excluded int) {
	q(w, leie.Columns...)
	for i := 0; i < rows; i++ {
		var first, last, n string
		if i < excluded {
			p := i * 50
			first, last, _ = person(p)
			n = makeNPI(p)
		} else {
			first, last = firsts[i%len(firsts)], "Unrelated"+fmt.Sprint(i)
			n = "0000000000"
			if i%2 == 0 {
				n = makeNPI(nProv + i)
			}
		}
		q(w, strings.ToUpper(last), strings.ToUpper(first), "", "", "IND- LIC HC SERV PRO", "NURSING", "", n, "19700101",
			"1 MAIN ST", "SPRINGFIELD", "IL", "62701", "1128a1", "20200115", "00000000", "00000000", "")
	}
}

func writeSAM(w io.Writer, nProv int) {
	q(w, sam.Columns...)
	for i := 0; i < max(nProv/20, 10); i++ {
		rec := make([]string, len(sam.Columns))
		for j, c := range sam.Columns {
			switch c {
			case "Classification":
				rec[j] = "Individual"
			case "First":
				rec[j] = "Sam"
			case "Last":
				rec[j] = "Excluded" + fmt.Sprint(i)
			case "Exclusion Type":
				rec[j] = "Ineligible (Proceedings Completed)"
			case "Active Date":
				rec[j] = "01/02/2020"
			case "Termination Date":
				rec[j] = "Indefinite"
			case "NPI":
				rec[j] = makeNPI(nProv*3 + i)
			}
		}
		q(w, rec...)
	}
}

func writeNPPES(w io.Writer, nProv int) {
	q(w, "NPI", "Entity Type Code", "Provider Last Name (Legal Name)", "Provider First Name", "NPI Deactivation Date",
		"Provider Business Practice Location Address State Name", "Healthcare Provider Taxonomy Code_1",
		"Healthcare Provider Primary Taxonomy Switch_1")
	for i := 0; i < nProv; i++ {
		first, last, _ := person(i)
		q(w, makeNPI(i), "1", strings.ToUpper(last), strings.ToUpper(first), "", "IL", "207Q00000X", "Y")
	}
}

func writeLicenses(w io.Writer, nProv int) {
	fmt.Fprintln(w, strings.Join(licenses.Columns, ","))
	exp := time.Now().AddDate(2, 0, 0).Format(time.DateOnly)
	for i := 0; i < nProv; i++ {
		first, last, _ := person(i)
		q(w, "IL", fmt.Sprintf("L%07d", i), "MD", "Active", "2015-01-01", exp, last, first, "", makeNPI(i))
	}
}

func median(d []time.Duration) time.Duration { return pct(d, 50) }

func pct(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(idx, len(s)-1))]
}

func mean(d []time.Duration) time.Duration {
	var t time.Duration
	for _, x := range d {
		t += x
	}
	return t / time.Duration(len(d))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
