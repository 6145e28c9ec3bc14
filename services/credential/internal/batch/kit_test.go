package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/npi"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/domain"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/semaphore"
	"github.com/provcred/platform/server"
)

// scriptedCredentialer is a real in-package Credentialer for tests: it
// stores one row per call in a real table (test_batch_runs) and, like the
// engine, returns the stored final result again instead of re-running.
// decide scripts the decision per provider and call number (1-based).
type scriptedCredentialer struct {
	pool   *pgxpool.Pool
	decide func(providerID string, call int) (domain.Decision, error)
	delay  time.Duration

	mu    sync.Mutex
	calls map[string]int
}

func newScripted(t *testing.T, pool *pgxpool.Pool, decide func(string, int) (domain.Decision, error)) *scriptedCredentialer {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `CREATE TABLE IF NOT EXISTS test_batch_runs (
		id text PRIMARY KEY, batch_id text NOT NULL, provider_id text NOT NULL, decision text NOT NULL,
		at timestamptz NOT NULL DEFAULT now());
		CREATE UNIQUE INDEX IF NOT EXISTS test_batch_runs_final ON test_batch_runs (batch_id, provider_id) WHERE decision <> 'incomplete'`); err != nil {
		t.Fatal(err)
	}
	if decide == nil {
		decide = func(string, int) (domain.Decision, error) { return domain.Approved, nil }
	}
	return &scriptedCredentialer{pool: pool, decide: decide, calls: map[string]int{}}
}

func (c *scriptedCredentialer) CredentialForBatch(ctx context.Context, providerID, batchID, actor string) (string, domain.Decision, error) {
	var id string
	var decision domain.Decision
	err := c.pool.QueryRow(ctx, `SELECT id, decision FROM test_batch_runs WHERE batch_id = $1 AND provider_id = $2
		AND decision <> 'incomplete'`, batchID, providerID).Scan(&id, &decision)
	if err == nil {
		return id, decision, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", "", err
	}
	var exists bool
	if err := c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM providers WHERE id = $1)`, providerID).Scan(&exists); err != nil {
		return "", "", err
	}
	if !exists {
		return "", "", domain.NotFound("provider " + providerID + " does not exist")
	}
	c.mu.Lock()
	c.calls[providerID]++
	n := c.calls[providerID]
	c.mu.Unlock()
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-ctx.Done():
			return "", "", ctx.Err()
		}
	}
	decision, err = c.decide(providerID, n)
	if err != nil {
		return "", "", err
	}
	id = uuid.NewString()
	if _, err := c.pool.Exec(ctx, `INSERT INTO test_batch_runs (id, batch_id, provider_id, decision) VALUES ($1, $2, $3, $4)`,
		id, batchID, providerID, decision); err != nil {
		return "", "", err
	}
	return id, decision, nil
}

func (c *scriptedCredentialer) Calls(providerID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[providerID]
}

type env struct {
	pool *pgxpool.Pool
	url  string
	svc  *Service
	reg  *metrics.Registry
	base string
	prov *providers.Store
}

// testConfig is the batch settings at their defaults (the struct tags),
// with the waits and attempts shortened for tests.
func testConfig() config.Batch {
	c := config.Defaults().Batch
	c.BatchJobTimeout, c.BatchRescueStuckAfter = 10*time.Second, time.Minute
	c.BatchSnoozeBase, c.BatchSnoozeMax = 50*time.Millisecond, 200*time.Millisecond
	c.BatchMaxAttempts, c.BatchWaitMax, c.BatchMetricsInterval = 3, 20*time.Second, time.Hour
	return c
}

// testOptions is Options from the service's default configuration (the
// struct tags, through Settings), with testConfig and small limits; mutate
// changes them before the semaphore is made for MaxWorkers.
func testOptions(pool *pgxpool.Pool, cred Credentialer, prov *providers.Store, reg *metrics.Registry, mutate func(*Options)) Options {
	o := Settings(config.Defaults())
	o.Pool, o.Credentialer, o.Providers, o.Metrics = pool, cred, prov, reg
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	o.Config = testConfig()
	o.MaxWorkers, o.MaxProviders, o.RosterMaxBytes, o.SoftStopTimeout = 4, 100, 1<<20, 2*time.Second
	if mutate != nil {
		mutate(&o)
	}
	if o.Semaphore == nil {
		o.Semaphore = NewSemaphore(o.MaxWorkers, o.Metrics)
	}
	return o
}

// newEnv builds a service on a fresh migrated database (SQL + River
// migrations) behind a real HTTP server. start: run the workers.
func newEnv(t *testing.T, cred Credentialer, mutate func(*Options), start bool) *env {
	t.Helper()
	pool, url := testdb.New(t)
	ctx := context.Background()
	if cred == nil {
		cred = newScripted(t, pool, nil)
	}
	reg := metrics.New("credential")
	e := &env{pool: pool, url: url, reg: reg, prov: providers.NewStore(pool)}
	o := testOptions(pool, cred, e.prov, reg, mutate)
	svc, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Stop(sctx)
	})
	if start {
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	app := server.New(server.Options{Service: "credential", Logger: o.Logger, Metrics: reg, BodyLimit: 1 << 20,
		ShutdownTimeout: time.Second, RequestTimeout: 30 * time.Second, ActiveTasks: svc.Running,
		Semaphores:  []*semaphore.Semaphore{svc.o.Semaphore},
		StreamPaths: []string{"/batch-credential"}})
	svc.Routes(app.App)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.App.Listener(ln) }()
	t.Cleanup(func() { _ = app.App.ShutdownWithTimeout(2 * time.Second) })
	e.base = "http://" + ln.Addr().String()
	return e
}

// seedProviders creates n providers with valid NPIs, ids prov_<i>.
func (e *env) seedProviders(t *testing.T, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		first9 := fmt.Sprintf("1%08d", 10000000+i)
		p := &providers.Provider{ID: fmt.Sprintf("prov_%03d", i), NPI: first9 + string(npi.CheckDigit(first9)),
			FirstName: "Test", LastName: fmt.Sprintf("Person%c", 'a'+i%26)}
		if _, err := e.prov.Create(context.Background(), providers.Actor{ID: "seed"}, p); err != nil {
			t.Fatalf("seed provider %d: %v", i, err)
		}
		ids[i] = p.ID
	}
	return ids
}

type reply struct {
	code   int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) do(t *testing.T, method, path, ctype, body string, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{code: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func idsBody(ids ...string) string {
	b, _ := json.Marshal(map[string]any{"provider_ids": ids})
	return string(b)
}

// waitDone polls the batch until no item is open.
func (e *env) waitDone(t *testing.T, id string, within time.Duration) *Progress {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		p, err := e.svc.Progress(context.Background(), id, ItemQuery{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status == StatusFinished || p.Status == StatusCanceled {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch %s not done after %s: %+v", id, within, p.Counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}
