package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provcred/platform/pgtest"
	"github.com/provcred/platform/proctest"
)

// TestRollingRestart restarts each service behind the gateway under steady
// load (issue 14): a graceful restart, as a rolling deploy does one (the new
// process up and ready on the same address, SO_REUSEPORT, before the old
// one gets SIGTERM), loses no request, over three rounds; after a SIGKILL,
// the service's routes answer 200 again within a second of its readiness,
// and the other services' routes never fail.
func TestRollingRestart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs every service")
	}
	llmSrv := newLocalServer(t, &slowLLM{})
	bin := build(t)
	dbURL := pgtest.NewDatabase(t)
	adminKey, adminEntry := keygen(t, bin, "restart-admin", "admin")

	envs := map[string]map[string]string{
		"credential": {},
		"stats":      {},
		"chat":       {"LLM_BASE_URL": llmSrv + "/v1", "LLM_TIMEOUT": "30s"},
	}
	for _, e := range envs {
		e["DATABASE_URL"] = dbURL
		e["HTTP_REUSE_PORT"] = "true"
		e["SHUTDOWN_TIMEOUT"] = "15s"
	}
	launch := func(name, addr string) *proctest.Proc {
		env := map[string]string{"HTTP_ADDR": addr}
		for k, v := range envs[name] {
			env[k] = v
		}
		return proctest.Start(t, filepath.Join(bin, name), name, env)
	}
	procs := map[string]*proctest.Proc{}
	// credential migrates the schema the others read: it comes first.
	for _, name := range []string{"credential", "stats", "chat"} {
		procs[name] = launch(name, proctest.FreeAddr(t))
		procs[name].WaitReady(t, 60*time.Second)
	}
	gateway := start(t, bin, "gateway", map[string]string{
		"CREDENTIAL_URL": procs["credential"].URL, "STATS_URL": procs["stats"].URL, "CHAT_URL": procs["chat"].URL,
		"API_KEYS": adminEntry, "RATE_LIMIT_REQUESTS_PER_MINUTE": "1000000", "RATE_LIMIT_CHAT": "1000000/1m,burst=1000000",
	})
	gateway.WaitReady(t, 30*time.Second)

	l := &restartLoad{base: gateway.URL, key: adminKey, http: &http.Client{Timeout: 30 * time.Second}}
	// Something for GET /providers to list.
	if rec := l.once(opCreate, 0); !rec.ok {
		t.Fatalf("create a provider: %d %s", rec.status, rec.detail)
	}
	stop := l.run(4)
	t.Cleanup(stop)
	l.waitFor(t, 50)

	t.Run("graceful restarts lose no request", func(t *testing.T) {
		from := time.Now()
		for round := 1; round <= 3; round++ {
			for _, name := range []string{"credential", "stats", "chat"} {
				old := procs[name]
				next := launch(name, strings.TrimPrefix(old.URL, "http://"))
				// /readyz on the shared address may be the old process's
				// answer: the new one is ready when it listens (it has
				// connected to the database and migrated before).
				next.WaitOutput(t, `"msg":"listening"`, 60*time.Second)
				old.Stop(30 * time.Second)
				procs[name] = next
				// Traffic on the new process before the next restart.
				l.waitFor(t, 20)
			}
		}
		until := time.Now()
		served, failed := l.between(from, until)
		t.Logf("%d requests during 9 graceful restarts, %d failed", len(served), len(failed))
		for _, f := range first(failed, 20) {
			t.Errorf("failed: %s", f)
		}
		for _, op := range allOps {
			if countOp(served, op) == 0 {
				t.Errorf("no %s request was served during the restarts", op)
			}
		}
		if v := scrapeValue(t, gateway.URL, `circuit_breaker_transitions_total{name="upstream_`); v != 0 {
			// The series of every upstream breaker, every target state:
			// none moved.
			for _, to := range []string{"open", "half-open", "closed"} {
				for _, name := range []string{"credential", "stats", "chat"} {
					if n := scrapeValue(t, gateway.URL, fmt.Sprintf(`circuit_breaker_transitions_total{name="upstream_%s",service="gateway",to="%s"}`, name, to)); n != 0 {
						t.Errorf("breaker upstream_%s went %s %v times", name, to, n)
					}
				}
			}
		}
	})

	t.Run("after SIGKILL, 200s within a second of readiness", func(t *testing.T) {
		for _, name := range []string{"credential", "stats", "chat"} {
			old := procs[name]
			addr := strings.TrimPrefix(old.URL, "http://")
			killed := time.Now()
			if err := old.Kill(); err != nil {
				t.Fatal(err)
			}
			// Long enough for the breaker to open on the refused connects.
			time.Sleep(time.Second)
			next := launch(name, addr)
			next.WaitReady(t, 60*time.Second)
			ready := time.Now()
			procs[name] = next
			time.Sleep(1500 * time.Millisecond)
			l.waitFor(t, 20)

			served, failed := l.between(killed, time.Now())
			var recovered time.Time
			for _, r := range served {
				if r.op.upstream() == name && r.ok && r.start.After(ready) && (recovered.IsZero() || r.end.Before(recovered)) {
					recovered = r.end
				}
			}
			if recovered.IsZero() {
				t.Fatalf("%s: no request succeeded after the restart", name)
			}
			t.Logf("%s: first 200 %s after readiness; %d requests failed while it was down", name,
				recovered.Sub(ready).Round(time.Millisecond), len(failed))
			for _, f := range failed {
				switch {
				case f.op.upstream() != name:
					t.Errorf("%s down: a request to another service failed: %s", name, f)
				case f.status != 503 || f.code != "upstream_unavailable":
					t.Errorf("%s down: not a 503 upstream_unavailable: %s", name, f)
				case f.start.After(ready.Add(time.Second)):
					t.Errorf("%s: failed more than a second after readiness: %s", name, f)
				}
			}
		}
	})
}

type restartOp int

const (
	opList restartOp = iota
	opCreate
	opStats
	opChat
)

var allOps = []restartOp{opList, opCreate, opStats, opChat}

func (o restartOp) String() string {
	return [...]string{"GET /providers", "POST /providers", "GET /stats/summary", "POST /chat"}[o]
}

func (o restartOp) upstream() string {
	return [...]string{"credential", "credential", "stats", "chat"}[o]
}

type restartRecord struct {
	op         restartOp
	start, end time.Time
	ok         bool
	status     int
	code       string
	detail     string
}

func (r restartRecord) String() string {
	return fmt.Sprintf("%s at %s: %d %s %s", r.op, r.start.Format("15:04:05.000"), r.status, r.code, r.detail)
}

// restartLoad sends a steady mix of reads and writes to every service
// through the gateway and records every answer.
type restartLoad struct {
	base, key string
	http      *http.Client
	seq       atomic.Int64

	mu      sync.Mutex
	records []restartRecord
}

func (l *restartLoad) run(workers int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-done:
					return
				case <-time.After(10 * time.Millisecond):
				}
				rec := l.once(allOps[i%len(allOps)], w)
				l.mu.Lock()
				l.records = append(l.records, rec)
				l.mu.Unlock()
			}
		}(w)
	}
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

func (l *restartLoad) once(op restartOp, worker int) restartRecord {
	method, path, want := "GET", "", 200
	var body any
	switch op {
	case opList:
		path = "/providers?limit=5"
	case opCreate:
		n := l.seq.Add(1)
		method, path, want = "POST", "/providers", 201
		body = map[string]any{"id": fmt.Sprintf("provider_restart_%d_%d", worker, n), "npi": luhnNPI(100000000 + n),
			"first_name": "Grace", "last_name": "Hopper", "date_of_birth": "1970-01-31", "specialty": "Cardiology",
			"licenses": []map[string]any{{"state": "CA", "number": fmt.Sprintf("R%d", n), "type": "MD", "expires_on": "2030-01-01"}}}
	case opStats:
		path = "/stats/summary"
	case opChat:
		method, path = "POST", "/chat"
		body = map[string]any{"message": "How many providers are approved?"}
	}
	rec := restartRecord{op: op, start: time.Now()}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, l.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+l.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := l.http.Do(req)
	rec.end = time.Now()
	if err != nil {
		rec.detail = err.Error()
		return rec
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rec.end = time.Now()
	rec.status = resp.StatusCode
	rec.ok = resp.StatusCode == want
	if !rec.ok {
		var e struct{ Code, Detail string }
		_ = json.Unmarshal(raw, &e)
		rec.code, rec.detail = e.Code, e.Detail
		if rec.code == "" {
			rec.detail = string(first([]byte(raw), 200))
		}
	}
	return rec
}

// between returns the records of requests that started in [from, until),
// served and failed.
func (l *restartLoad) between(from, until time.Time) (served, failed []restartRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.records {
		if r.start.Before(from) || !r.start.Before(until) {
			continue
		}
		if r.ok {
			served = append(served, r)
		} else {
			failed = append(failed, r)
		}
	}
	return served, failed
}

// waitFor waits until n more requests have been answered.
func (l *restartLoad) waitFor(t *testing.T, n int) {
	t.Helper()
	l.mu.Lock()
	want := len(l.records) + n
	l.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		got := len(l.records)
		l.mu.Unlock()
		if got >= want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the load stalled: fewer than %d answers in 60s", n)
}

func countOp(rs []restartRecord, op restartOp) int {
	n := 0
	for _, r := range rs {
		if r.op == op {
			n++
		}
	}
	return n
}

func first[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// luhnNPI makes a valid NPI from nine digits: the check digit is the Luhn
// digit of 80840 followed by them.
func luhnNPI(nine int64) string {
	digits := fmt.Sprintf("80840%09d", nine)
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return fmt.Sprintf("%09d%d", nine, (10-sum%10)%10)
}
