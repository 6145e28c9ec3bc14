package batch

// Tests that run the real credential binary (two replicas on one database;
// SIGKILL mid-batch and restart). The binary is built from
// github.com/provcred/credential/cmd/credential (BATCH_TEST_CREDENTIAL_PKG
// overrides it). Skipped with -short.

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/seed"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/pgtest"
	"github.com/provcred/platform/proctest"
)

// operator calls the binary directly, signed as the gateway would.
var operator = proctest.SignedClient(internalauth.Identity{Actor: "key_operator", Role: "operator"})

func credentialPkg() string {
	if p := os.Getenv("BATCH_TEST_CREDENTIAL_PKG"); p != "" {
		return p
	}
	return "github.com/provcred/credential/cmd/credential"
}

func buildCredential(t *testing.T) string {
	t.Helper()
	return proctest.Binary(proctest.Build(t, credentialPkg()), credentialPkg())
}

// proc is one running credential replica.
type proc struct {
	*proctest.Proc
	t *testing.T
}

// startCredential runs the binary with env and waits until it is ready and
// serves the batch API.
func startCredential(t *testing.T, bin, name string, env map[string]string) *proc {
	t.Helper()
	p := &proc{Proc: proctest.Start(t, bin, name, env), t: t}
	p.WaitReady(t, 90*time.Second)
	if code, _ := p.get("/results/batch/00000000-0000-4000-8000-000000000000"); code != 404 {
		t.Fatalf("%s: GET /results/batch/{id} answered %d", name, code)
	}
	if code, body := p.post("/batch-credential", `{"provider_ids":[]}`); code != 422 {
		t.Fatalf("%s does not serve POST /batch-credential (answered %d %s): cmd/credential/main.go must wire batch (docs/batch.md)",
			name, code, body)
	}
	return p
}

func (p *proc) get(path string) (int, string) {
	resp, err := operator.Get(p.URL + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (p *proc) post(path, body string) (int, string) {
	resp, err := operator.Post(p.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// progress reads GET /results/batch/{id} (counts only).
func (p *proc) progress(t *testing.T, id string) Progress {
	t.Helper()
	code, body := p.get("/results/batch/" + id + "?limit=1")
	if code != 200 {
		t.Fatalf("%s progress: %d %s", p.Name, code, body)
	}
	var pr Progress
	if err := json.Unmarshal([]byte(body), &pr); err != nil {
		t.Fatal(err)
	}
	return pr
}

// itemsDone reads the process's credential_batch_items_total (all outcomes).
func (p *proc) itemsDone(t *testing.T) float64 {
	t.Helper()
	code, body := p.get("/metrics")
	if code != 200 {
		t.Fatalf("%s /metrics: %d", p.Name, code)
	}
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "credential_batch_items_total{") && !strings.Contains(line, `outcome="unknown_provider"`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// processSetup makes a database, the binary, n providers and a registry
// answering after delay; the first replica migrates, then the providers and
// the local source files are loaded through the importer.
type processSetup struct {
	url  string
	bin  string
	pool *pgxpool.Pool
	ps   []seed.Provider
	env  map[string]string
}

func newProcessSetup(t *testing.T, n int, delay time.Duration, env map[string]string) *processSetup {
	t.Helper()
	if testing.Short() {
		t.Skip("starts credential processes; skipped with -short")
	}
	s := &processSetup{url: pgtest.NewDatabase(t), bin: buildCredential(t), ps: seed.Providers("proc_", n)}
	reg := seed.NewRegistry(s.ps, delay)
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	s.env = map[string]string{"DATABASE_URL": s.url, "LOG_LEVEL": "warn", "NPPES_MODE": "api", "NPPES_API_URL": srv.URL,
		"NPPES_TIMEOUT": "10s", "SHUTDOWN_TIMEOUT": "3s", "BATCH_METRICS_INTERVAL": "1s", "BATCH_SNOOZE_BASE": "200ms",
		"BATCH_SNOOZE_MAX": "1s", "DATABASE_MAX_CONNS": "20", "CHECK_CONCURRENCY": "64"}
	for k, v := range env {
		s.env[k] = v
	}
	return s
}

// load connects (after a replica migrated) and loads providers and sources.
func (s *processSetup) load(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	s.pool = testdb.Connect(t, s.url)
	if err := seed.Create(ctx, s.pool, s.ps); err != nil {
		t.Fatal(err)
	}
	if err := seed.Load(ctx, s.pool, s.ps, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
}

func (s *processSetup) submit(t *testing.T, p *proc) string {
	t.Helper()
	ids := make([]string, len(s.ps))
	for i, pr := range s.ps {
		ids[i] = pr.ID
	}
	code, body := p.post("/batch-credential", idsBody(ids...))
	if code != 202 {
		t.Fatalf("submit: %d %s", code, body)
	}
	var out struct {
		BatchID string `json:"batch_id"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	return out.BatchID
}

// exactlyOneFinalResult checks every provider has one final run for the
// batch and that its item points at it.
func (s *processSetup) exactlyOneFinalResult(t *testing.T, batchID string) {
	t.Helper()
	ctx := context.Background()
	rows, err := s.pool.Query(ctx, `SELECT i.provider_id, i.state, COALESCE(i.run_id, ''),
			(SELECT count(*) FROM credential_runs r WHERE r.batch_id = i.batch_id::uuid AND r.provider_id = i.provider_id AND r.decision <> 'incomplete'),
			(SELECT COALESCE(min(r.id::text), '') FROM credential_runs r WHERE r.batch_id = i.batch_id::uuid AND r.provider_id = i.provider_id AND r.decision <> 'incomplete')
		FROM batch_items i WHERE i.batch_id = $1`, batchID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var pid, state, runID, finalRun string
		var finals int
		if err := rows.Scan(&pid, &state, &runID, &finals, &finalRun); err != nil {
			t.Fatal(err)
		}
		n++
		if !finalState(state) || state == StateFailed || state == StateCanceled {
			t.Errorf("%s: item state %s", pid, state)
		}
		if finals != 1 {
			t.Errorf("%s: %d final runs in the batch, want exactly 1", pid, finals)
		}
		if runID != finalRun {
			t.Errorf("%s: item run %s, final run %s", pid, runID, finalRun)
		}
	}
	if n != len(s.ps) {
		t.Fatalf("%d items, want %d", n, len(s.ps))
	}
}

func waitFinished(t *testing.T, p *proc, id string, within time.Duration) Progress {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		pr := p.progress(t, id)
		if pr.Status == StatusFinished {
			return pr
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch not finished after %s: %v", within, pr.Counts)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestTwoProcessesShareTheQueue: two replicas on one database both take
// jobs of one batch, and every provider gets exactly one final result.
func TestTwoProcessesShareTheQueue(t *testing.T) {
	t.Parallel()
	s := newProcessSetup(t, 80, 100*time.Millisecond, map[string]string{"MAX_CONCURRENT_BATCH_REQUESTS": "2"})
	a := startCredential(t, s.bin, "replica-a", s.env)
	s.load(t)
	b := startCredential(t, s.bin, "replica-b", s.env)
	id := s.submit(t, a)
	pr := waitFinished(t, b, id, 90*time.Second)
	if pr.Counts[StateApproved] != len(s.ps) {
		t.Fatalf("counts %v, want all approved", pr.Counts)
	}
	da, db := a.itemsDone(t), b.itemsDone(t)
	t.Logf("items finished: replica-a %.0f, replica-b %.0f", da, db)
	if da == 0 || db == 0 || da+db < float64(len(s.ps)) {
		t.Fatalf("items per replica a=%.0f b=%.0f: both replicas must take jobs", da, db)
	}
	s.exactlyOneFinalResult(t, id)
}

// TestKillMidBatchAndRestart: SIGKILL a replica half-way through a batch,
// start it again; River's rescuer makes the orphaned jobs run again and
// every provider still ends with exactly one final result.
func TestKillMidBatchAndRestart(t *testing.T) {
	t.Parallel()
	n := 120
	s := newProcessSetup(t, n, 150*time.Millisecond, map[string]string{"MAX_CONCURRENT_BATCH_REQUESTS": "4",
		"BATCH_JOB_TIMEOUT": "2s", "BATCH_RESCUE_STUCK_AFTER": "3s",
		"WEBHOOK_TIMEOUT": "1s"})
	a := startCredential(t, s.bin, "replica-a", s.env)
	s.load(t)
	id := s.submit(t, a)
	deadline := time.Now().Add(60 * time.Second)
	for {
		pr := a.progress(t, id)
		if pr.Done >= n/4 {
			if pr.Status == StatusFinished {
				t.Fatal("the batch finished before the kill: raise the registry delay")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress: %v", pr.Counts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.Kill(); err != nil {
		t.Fatal(err)
	}
	var running, done int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE state = 'running'),
		count(*) FILTER (WHERE state NOT IN ('queued', 'running')) FROM batch_items WHERE batch_id = $1`, id).Scan(&running, &done); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed with %d items done and %d running", done, running)
	if done >= n {
		t.Fatal("nothing left to do after the kill")
	}

	a2 := startCredential(t, s.bin, "replica-a-restarted", s.env)
	pr := waitFinished(t, a2, id, 150*time.Second)
	if pr.Counts[StateApproved] != n {
		t.Fatalf("counts %v, want all %d approved", pr.Counts, n)
	}
	s.exactlyOneFinalResult(t, id)
	if running > 0 {
		var rerun int
		if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM batch_items WHERE batch_id = $1 AND attempts >= 2`, id).Scan(&rerun); err != nil {
			t.Fatal(err)
		}
		if rerun < 1 {
			t.Fatalf("no item ran twice although %d were running at the kill", running)
		}
		t.Logf("%d items ran again after the rescue", rerun)
	}
}
