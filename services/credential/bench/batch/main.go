// Command batch benchmarks durable batch credentialing (internal/batch on
// River with the real check engine) against its ceiling, measured in the
// same run:
//
//	go run ./bench/batch [-providers 2000] [-delay 50ms] [-workers 10] [-full]
//
// It creates a scratch database, stores the providers, loads LEIE, SAM and
// license files through the real importer, and starts a stand-in NPI
// Registry (the API v2.1 wire format) that answers every lookup after
// -delay: the fixed per-provider latency. The engine runs in NPPES API mode
// against it, so each provider costs one delayed HTTP call plus the local
// checks and the stored run.
//
// Replicas are separate processes (this program re-executed with
// -replica): each runs the batch service with MAX_CONCURRENT_BATCH_REQUESTS
// = -workers on the shared database. For one and two replicas it submits a
// batch of every provider and reports providers/s next to the ceiling
// replicas × workers ÷ delay (ratio, goal ≥ 0.9), and each replica's peak
// RSS (VmHWM) for a small and the full batch (flat is the goal: the workers
// hold one provider each, never the batch).
//
// -full (or BENCH_FULL=1) runs the documented 20,000 providers.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/batch"
	"github.com/provcred/credential/internal/checks"
	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/seed"
	"github.com/provcred/credential/internal/sources/nppes"
	"github.com/provcred/credential/internal/store"
	"github.com/provcred/platform/database"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/pgtest"
	"github.com/provcred/platform/semaphore"
	"github.com/provcred/platform/server"
)

func main() {
	providersN := flag.Int("providers", 2000, "providers in the batch")
	full := flag.Bool("full", os.Getenv("BENCH_FULL") == "1", "run the documented size: 20,000 providers")
	delay := flag.Duration("delay", 50*time.Millisecond, "the stand-in NPI Registry's answer delay (per-provider latency)")
	workers := flag.Int("workers", 10, "MAX_CONCURRENT_BATCH_REQUESTS per replica")
	adminURL := flag.String("db", cmp.Or(os.Getenv("BENCH_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"PostgreSQL server; a scratch database is created on it and dropped")
	replica := flag.Bool("replica", false, "internal: run as one credential replica")
	dbURL := flag.String("replica-db", "", "internal: replica database")
	registry := flag.String("replica-registry", "", "internal: registry URL")
	addr := flag.String("replica-addr", "", "internal: listen address")
	flag.Parse()
	var err error
	if *replica {
		err = runReplica(*dbURL, *registry, *addr, *workers)
	} else {
		if *full {
			*providersN = 20000
		}
		err = run(*providersN, *delay, *workers, *adminURL)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/batch:", err)
		os.Exit(1)
	}
}

// runReplica is one credential replica: the batch service and the engine,
// wired as cmd/credential wires them, until SIGTERM.
func runReplica(dbURL, registry, addr string, workers int) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pool, err := database.Connect(ctx, database.Options{URL: dbURL, SearchPath: store.Schema, MaxConns: int32(2*workers + 10)})
	if err != nil {
		return err
	}
	defer pool.Close()
	reg := metrics.New("credential")
	people := providers.NewStore(pool)
	opts := checks.Settings(config.Defaults().Checks)
	opts.DB, opts.Runs, opts.Providers, opts.Metrics, opts.Log = pool, results.NewStore(pool), people, reg, log
	if opts.NPPES, err = registryClient(registry, reg, workers); err != nil {
		return err
	}
	engine := checks.New(opts)
	sem := batch.NewSemaphore(workers, reg)
	svc, err := batch.New(batch.Options{Pool: pool, Credentialer: engine, Providers: people,
		Semaphore: sem, Metrics: reg, Logger: log, MaxWorkers: workers, MaxProviders: 100000, RosterMaxBytes: 64 << 20,
		SoftStopTimeout: 5 * time.Second,
		Config: config.Batch{BatchJobTimeout: time.Minute, BatchRescueStuckAfter: 5 * time.Minute, BatchSnoozeBase: time.Second,
			BatchSnoozeMax: 10 * time.Second, BatchMaxAttempts: 3, BatchWaitMax: time.Minute, BatchMetricsInterval: 5 * time.Second,
			BatchWorkersEnabled: true}})
	if err != nil {
		return err
	}
	srv := server.New(server.Options{Service: "credential", Logger: log, Metrics: reg, BodyLimit: 8 << 20,
		ShutdownTimeout: 5 * time.Second, Semaphores: []*semaphore.Semaphore{sem}, ActiveTasks: svc.Running})
	svc.Routes(srv.App)
	if err := svc.Start(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return srv.Serve(ctx, ln, svc.Stop)
}

type result struct {
	name              string
	replicas, workers int
	providers         int
	elapsed           float64
	rate, ceiling     float64
	meanJob           float64
	submit            time.Duration
	rss               []float64
}

func run(n int, delay time.Duration, workers int, adminURL string) error {
	ctx := context.Background()
	dbURL, drop, err := pgtest.Scratch(ctx, adminURL, "bench_batch")
	if err != nil {
		return err
	}
	defer drop()
	pool, err := database.Connect(ctx, database.Options{URL: dbURL, SearchPath: store.Schema, MaxConns: 8})
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := store.Migrate(ctx, pool); err != nil {
		return err
	}
	ps := seed.Providers("bench_", n)
	t0 := time.Now()
	if err := seed.Create(ctx, pool, ps); err != nil {
		return err
	}
	if err := seed.Load(ctx, pool, ps, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "setup: %d providers and sources loaded in %s\n", n, time.Since(t0).Round(time.Millisecond))
	regSrv := httptest.NewServer(seed.NewRegistry(ps, delay))
	defer regSrv.Close()

	fmt.Fprintf(os.Stderr, "running: baseline, the engine called directly by %d goroutines (no queue), %d providers\n", workers, n)
	direct, directJob, err := directRate(ctx, pool, regSrv.URL, ps, workers)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}

	small := max(n/4, 1)
	scenarios := []struct {
		name     string
		replicas int
		size     int
	}{
		{"1 replica, small batch (RSS reference)", 1, small},
		{"1 replica", 1, n},
		{"2 replicas", 2, n},
	}
	var results []result
	for _, sc := range scenarios {
		fmt.Fprintf(os.Stderr, "running: %s, %d providers\n", sc.name, sc.size)
		r, err := scenario(ctx, pool, dbURL, regSrv.URL, ps[:sc.size], sc.replicas, workers, delay)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		r.name = sc.name
		results = append(results, r)
	}
	fmt.Printf("\nbatch credentialing: registry delay %s, %d workers per replica (MAX_CONCURRENT_BATCH_REQUESTS)\n\n", delay, workers)
	fmt.Println("| scenario | replicas | providers | elapsed | providers/s | ceiling (replicas×workers÷delay) | ratio to ceiling | ratio to direct×replicas | mean job | POST (batch + jobs, one tx) | peak RSS per replica |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Printf("| baseline: engine called directly, %d goroutines, no queue | - | %d | %.1f s | %.1f | %.0f | %.2f | 1.00 | %.1f ms | %s | - |\n",
		workers, n, float64(n)/direct, direct, float64(workers)/delay.Seconds(), direct/(float64(workers)/delay.Seconds()), directJob*1000, "-")
	for _, r := range results {
		rss := make([]string, len(r.rss))
		for i, v := range r.rss {
			rss[i] = fmt.Sprintf("%.0f MiB", v)
		}
		fmt.Printf("| %s | %d | %d | %.1f s | %.1f | %.0f | %.2f | %.2f | %.1f ms | %s | %s |\n", r.name, r.replicas, r.providers, r.elapsed,
			r.rate, r.ceiling, r.rate/r.ceiling, r.rate/(direct*float64(r.replicas)), r.meanJob*1000,
			r.submit.Round(time.Millisecond), strings.Join(rss, ", "))
	}
	one, two := results[1], results[2]
	fmt.Printf("\nscaling 2 replicas / 1 replica: %.2f× (ideal 2.00×)\n", two.rate/one.rate)
	fmt.Printf("peak RSS %d vs %d providers (1 replica): %.0f MiB vs %.0f MiB (%.2f×)\n", results[0].providers, one.providers,
		results[0].rss[0], one.rss[0], one.rss[0]/results[0].rss[0])
	return nil
}

// directRate is the same-run floor of the work itself: the engine's
// CredentialForBatch for every provider from `workers` goroutines in this
// process, with no queue, no job bookkeeping and no HTTP in front.
func directRate(ctx context.Context, pool *pgxpool.Pool, registry string, ps []seed.Provider, workers int) (rate, meanJob float64, err error) {
	reg := metrics.New("credential")
	opts := checks.Settings(config.Defaults().Checks)
	opts.DB, opts.Runs, opts.Providers, opts.Metrics = pool, results.NewStore(pool), providers.NewStore(pool), reg
	opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if opts.NPPES, err = registryClient(registry, reg, workers); err != nil {
		return 0, 0, err
	}
	engine := checks.New(opts)
	batchID := uuid.NewString()
	next := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total time.Duration
	var firstErr error
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				t := time.Now()
				_, d, err := engine.CredentialForBatch(ctx, id, batchID, "bench")
				mu.Lock()
				total += time.Since(t)
				if err == nil && d != "approved" {
					err = fmt.Errorf("%s: %s", id, d)
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range ps {
		next <- p.ID
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return 0, 0, firstErr
	}
	return float64(len(ps)) / time.Since(start).Seconds(), total.Seconds() / float64(len(ps)), nil
}

// scenario starts replicas, submits ps as one batch, waits for it to end,
// and reads rate, job duration and peak RSS.
func scenario(ctx context.Context, pool *pgxpool.Pool, dbURL, registry string, ps []seed.Provider, replicas, workers int, delay time.Duration) (result, error) {
	r := result{replicas: replicas, workers: workers, providers: len(ps),
		ceiling: float64(replicas*workers) / delay.Seconds()}
	exe, err := os.Executable()
	if err != nil {
		return r, err
	}
	type child struct {
		cmd  *exec.Cmd
		base string
	}
	var children []child
	defer func() {
		for _, c := range children {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			_ = c.cmd.Wait()
		}
	}()
	for range replicas {
		addr, err := freeAddr()
		if err != nil {
			return r, err
		}
		cmd := exec.Command(exe, "-replica", "-replica-db", dbURL, "-replica-registry", registry, "-replica-addr", addr,
			"-workers", strconv.Itoa(workers))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			return r, err
		}
		children = append(children, child{cmd: cmd, base: "http://" + addr})
	}
	for _, c := range children {
		if err := waitReady(c.base); err != nil {
			return r, err
		}
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	body, _ := json.Marshal(map[string]any{"provider_ids": ids})
	t0 := time.Now()
	resp, err := http.Post(children[0].base+"/batch-credential", "application/json", strings.NewReader(string(body)))
	if err != nil {
		return r, err
	}
	r.submit = time.Since(t0)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return r, fmt.Errorf("submit: %d %.300s", resp.StatusCode, raw)
	}
	var sub struct {
		BatchID string `json:"batch_id"`
	}
	if err := json.Unmarshal(raw, &sub); err != nil {
		return r, err
	}
	for {
		var p batch.Progress
		if err := getJSON(children[len(children)-1].base+"/results/batch/"+sub.BatchID+"?limit=1", &p); err != nil {
			return r, err
		}
		if p.Status == batch.StatusFinished {
			if p.Counts[batch.StateApproved] != len(ps) {
				return r, fmt.Errorf("not all approved: %v", p.Counts)
			}
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Elapsed from the first job started to the last finished, from the database.
	if err := pool.QueryRow(ctx, `SELECT EXTRACT(EPOCH FROM max(finished_at) - min(started_at))::float8,
		EXTRACT(EPOCH FROM avg(finished_at - started_at))::float8
		FROM batch_items WHERE batch_id = $1`, sub.BatchID).Scan(&r.elapsed, &r.meanJob); err != nil {
		return r, err
	}
	r.rate = float64(len(ps)) / r.elapsed
	for _, c := range children {
		r.rss = append(r.rss, peakRSS(c.cmd.Process.Pid))
	}
	return r, nil
}

// peakRSS reads VmHWM (peak resident set) of pid in MiB.
func peakRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func getJSON(u string, v any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %.200s", u, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func waitReady(base string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/livez")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("replica %s not ready", base)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// registryClient is the NPI Registry client at the settings' defaults, with
// two calls in flight per worker, 2 retries and no cache (every lookup
// reaches the stub registry).
func registryClient(registry string, reg *metrics.Registry, workers int) (*nppes.Client, error) {
	o := nppes.Settings(config.Defaults())
	o.MaxConcurrent, o.Retries, o.CacheTTL = 2*workers, 2, 0
	return nppes.NewClient(registry, reg, o)
}
