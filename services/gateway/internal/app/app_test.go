package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provcred/platform/config"
	"github.com/valyala/fasthttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/provcred/gateway/internal/auth"
	gwconfig "github.com/provcred/gateway/internal/config"
	"github.com/provcred/gateway/internal/ratelimit"
)

// upstream is a real HTTP server standing in for a service; it records what
// reached it and answers with a handler the test may swap.
type upstream struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64

	mu      sync.Mutex
	last    *http.Request
	handler http.HandlerFunc
}

func newUpstream(t *testing.T, name string) *upstream {
	u := &upstream{name: name}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		u.last = r.Clone(context.Background())
		h := u.handler
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"upstream": name, "method": r.Method, "path": r.URL.Path,
			"query": r.URL.RawQuery, "bytes": n, "status": "healthy"})
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) set(h http.HandlerFunc) { u.mu.Lock(); u.handler = h; u.mu.Unlock() }
func (u *upstream) lastReq() *http.Request { u.mu.Lock(); defer u.mu.Unlock(); return u.last }

type keys struct{ admin, operator, reader string }

type env struct {
	t                       *testing.T
	url                     string
	gw                      *Gateway
	credential, stats, chat *upstream
	keys                    keys
}

// deadURL is an address nothing listens on (a port we opened and closed).
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// start runs a gateway in front of three recording upstreams. extra
// overrides the environment; deps injects a clock.
func start(t *testing.T, extra map[string]string, deps Deps) *env {
	t.Helper()
	e := &env{t: t, credential: newUpstream(t, "credential"), stats: newUpstream(t, "stats"), chat: newUpstream(t, "chat")}
	var entries []string
	for _, k := range []struct {
		id   string
		role auth.Role
		dst  *string
	}{{"admin-1", auth.RoleAdmin, &e.keys.admin}, {"operator-1", auth.RoleOperator, &e.keys.operator}, {"reader-1", auth.RoleReader, &e.keys.reader}} {
		secret, entry, err := auth.Generate(k.id, k.role)
		if err != nil {
			t.Fatal(err)
		}
		*k.dst = secret
		entries = append(entries, entry)
	}
	vars := map[string]string{
		"CREDENTIAL_URL": e.credential.srv.URL, "STATS_URL": e.stats.srv.URL, "CHAT_URL": e.chat.srv.URL,
		"API_KEYS": strings.Join(entries, ","), "RATE_LIMIT_REQUESTS_PER_MINUTE": "100000",
		"HEALTH_UPSTREAM_TIMEOUT": "500ms",
	}
	for k, v := range extra {
		vars[k] = v
	}
	cfg, err := config.Parse[gwconfig.Config](vars)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(&cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	e.url, e.gw = "http://"+ln.Addr().String(), g
	return e
}

type result struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (e *env) do(method, path, key string, body io.Reader, hdr map[string]string) result {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func TestRouting(t *testing.T) {
	e := start(t, nil, Deps{})
	tests := []struct {
		method, path, upstream string
	}{
		{"GET", "/providers?limit=5&cursor=abc", "credential"},
		{"POST", "/providers", "credential"},
		{"GET", "/providers/provider_001", "credential"},
		{"PUT", "/providers/provider_001", "credential"},
		{"DELETE", "/providers/provider_001", "credential"},
		{"POST", "/providers/import", "credential"},
		{"POST", "/credential/provider_001", "credential"},
		{"POST", "/batch-credential?wait=30s", "credential"},
		{"DELETE", "/batch/b1", "credential"},
		{"GET", "/results", "credential"},
		{"GET", "/results/provider_001", "credential"},
		{"GET", "/results/batch/b1", "credential"},
		{"GET", "/logs?actor=x", "credential"},
		{"GET", "/logs/provider_001", "credential"},
		{"GET", "/admin/imports", "credential"},
		{"POST", "/admin/imports/leie", "credential"},
		{"POST", "/webhooks", "credential"},
		{"GET", "/webhooks/wh_1/deliveries", "credential"},
		{"POST", "/webhooks/wh_1/deliveries/dlv_1/replay", "credential"},
		{"DELETE", "/webhooks/wh_1", "credential"},
		{"GET", "/events?type=license.expiring.v1", "credential"},
		{"GET", "/reviews?check=leie", "credential"},
		{"POST", "/reviews/3f0c6a52-3c1e-4c7a-9d39-5b8a3e2f1d10/resolve", "credential"},
		{"GET", "/stats/summary", "stats"},
		{"GET", "/stats/turnaround", "stats"},
		{"POST", "/chat", "chat"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := e.do(tt.method, tt.path, e.keys.admin, strings.NewReader(`{"x":1}`), map[string]string{"Content-Type": "application/json"})
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			path, query, _ := strings.Cut(tt.path, "?")
			if r.body["upstream"] != tt.upstream || r.body["path"] != path || r.body["query"] != query || r.body["method"] != tt.method {
				t.Fatalf("reached %v", r.body)
			}
		})
	}
	for _, p := range []string{"/nope", "/providerz", "/admin", "/chat/x"} {
		r := e.do("GET", p, e.keys.admin, nil, nil)
		if r.status != 404 || r.body["code"] != "not_found" {
			t.Fatalf("GET %s: %d %s", p, r.status, r.raw)
		}
	}
	if r := e.do("PUT", "/results", e.keys.admin, nil, nil); r.status != 405 && r.status != 404 {
		t.Fatalf("PUT /results: %d %s", r.status, r.raw)
	} else if r.body["code"] == nil {
		t.Fatalf("PUT /results: no JSON code: %s", r.raw)
	}
}

func TestRoles(t *testing.T) {
	e := start(t, nil, Deps{})
	type want struct{ none, reader, operator, admin int }
	all := want{401, 200, 200, 200}
	op := want{401, 403, 200, 200}
	adm := want{401, 403, 403, 200}
	tests := []struct {
		method, path string
		want         want
	}{
		{"GET", "/providers", all},
		{"HEAD", "/providers/p1", all},
		{"POST", "/providers", adm},
		{"PUT", "/providers/p1", adm},
		{"PATCH", "/providers/p1", adm},
		{"DELETE", "/providers/p1", adm},
		{"POST", "/providers/import", adm},
		{"POST", "/credential/p1", op},
		{"POST", "/batch-credential", op},
		{"DELETE", "/batch/b1", op},
		{"GET", "/results/batch/b1", all},
		{"GET", "/logs/p1", all},
		{"GET", "/admin/imports", adm},
		{"POST", "/admin/imports/sam", adm},
		{"GET", "/webhooks", adm},
		{"POST", "/webhooks", adm},
		{"GET", "/webhooks/wh_1/deliveries", adm},
		{"POST", "/webhooks/wh_1/test", adm},
		{"DELETE", "/webhooks/wh_1", adm},
		{"GET", "/events", all},
		{"GET", "/reviews", all},
		{"GET", "/reviews/3f0c6a52-3c1e-4c7a-9d39-5b8a3e2f1d10", all},
		{"POST", "/reviews/3f0c6a52-3c1e-4c7a-9d39-5b8a3e2f1d10/resolve", op},
		{"GET", "/stats/summary", all},
		{"POST", "/chat", all},
	}
	for _, tt := range tests {
		for _, k := range []struct {
			name, key string
			want      int
		}{{"none", "", tt.want.none}, {"bad", "pc_not-a-key", tt.want.none}, {"reader", e.keys.reader, tt.want.reader},
			{"operator", e.keys.operator, tt.want.operator}, {"admin", e.keys.admin, tt.want.admin}} {
			t.Run(fmt.Sprintf("%s %s as %s", tt.method, tt.path, k.name), func(t *testing.T) {
				before := e.credential.hits.Load() + e.stats.hits.Load() + e.chat.hits.Load()
				r := e.do(tt.method, tt.path, k.key, nil, nil)
				if r.status != k.want {
					t.Fatalf("status %d, want %d: %s", r.status, k.want, r.raw)
				}
				after := e.credential.hits.Load() + e.stats.hits.Load() + e.chat.hits.Load()
				switch k.want {
				case 401:
					if tt.method != "HEAD" && r.body["code"] != "unauthorized" {
						t.Fatalf("body %s", r.raw)
					}
					if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
						t.Fatalf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
					}
				case 403:
					if r.body["code"] != "forbidden" {
						t.Fatalf("body %s", r.raw)
					}
				}
				if (k.want == 200) != (after == before+1) {
					t.Fatalf("upstream calls %d -> %d for status %d", before, after, k.want)
				}
			})
		}
	}
	// Open endpoints need no key.
	for _, p := range []string{"/health", "/health/concurrency", "/livez", "/readyz", "/openapi.json", "/docs", "/metrics"} {
		if r := e.do("GET", p, "", nil, nil); r.status != 200 {
			t.Fatalf("GET %s without a key: %d %s", p, r.status, r.raw)
		}
	}
}

// The role is checked against the path the gateway routes on; a path that
// fasthttp would forward as another one (dot segments, encoded slashes)
// must not reach any upstream, or a reader could call an admin endpoint.
func TestPathsThatForwardElsewhereAreRefused(t *testing.T) {
	e := start(t, nil, Deps{})
	tests := []struct{ method, path, key string }{
		{"GET", "/results/..%2Fadmin%2Fimports", e.keys.reader},
		{"GET", "/results/../admin/imports", e.keys.reader},
		{"GET", "/stats/%2E%2E/%2E%2E/admin/imports", e.keys.reader},
		{"POST", "/credential/..%2Fadmin%2Fimports%2Fleie", e.keys.operator},
		{"DELETE", "/batch/..%2Fproviders%2Fp1", e.keys.operator},
		{"GET", "/providers/p1/./x", e.keys.reader},
		{"GET", "/results//p1", e.keys.reader},
		{"DELETE", "/batch/b1%2Fx", e.keys.operator},
		{"POST", "/credential/p1%2fx", e.keys.operator},
		{"GET", "/providers/p1%2Flicenses", e.keys.reader},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			before := e.credential.hits.Load() + e.stats.hits.Load() + e.chat.hits.Load()
			r := e.do(tt.method, tt.path, tt.key, nil, nil)
			after := e.credential.hits.Load() + e.stats.hits.Load() + e.chat.hits.Load()
			if r.status != 400 || r.body["code"] != "bad_request" || after != before {
				up := e.credential.lastReq()
				t.Fatalf("%d %s; upstream calls %d -> %d (credential last saw %s)", r.status, r.raw, before, after, up.URL.Path)
			}
		})
	}
	// Escaped characters that decode to the same path still pass.
	r := e.do("GET", "/providers/John%20Smith%2Bx", e.keys.reader, nil, nil)
	if r.status != 200 || r.body["path"] != "/providers/John Smith+x" {
		t.Fatalf("escaped id: %d %s", r.status, r.raw)
	}
}

func TestForwardedHeaders(t *testing.T) {
	e := start(t, nil, Deps{})
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := e.do("GET", "/providers", e.keys.reader, nil, map[string]string{
		"X-Actor-Id": "admin-1", "X-Actor-Role": "admin", "X-Request-Id": "req-123", "traceparent": tp,
		"X-Forwarded-For": "198.51.100.1",
	})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	got := e.credential.lastReq()
	checks := map[string]string{
		"X-Actor-Id": "reader-1", "X-Actor-Role": "reader", "Authorization": "",
		"Traceparent": tp, "X-Forwarded-For": "198.51.100.1, 127.0.0.1",
		// The client's id travels apart from ours (the audit log keeps both).
		"X-Client-Request-Id": "req-123",
	}
	for h, want := range checks {
		if v := got.Header.Get(h); v != want {
			t.Errorf("upstream saw %s = %q, want %q", h, v, want)
		}
		if h == "X-Actor-Id" && len(got.Header.Values(h)) != 1 {
			t.Errorf("upstream saw %d X-Actor-Id values", len(got.Header.Values(h)))
		}
	}
	// The gateway makes every request id itself, at random: a client
	// cannot choose the id logs and the audit log are keyed by.
	if id := r.header.Get("X-Request-Id"); id == "req-123" || len(id) != 36 || got.Header.Get("X-Request-Id") != id {
		t.Errorf("response X-Request-Id = %q, upstream saw %q", id, got.Header.Get("X-Request-Id"))
	}
	// A client cannot pose as the gateway's client id either.
	e.do("GET", "/providers", e.keys.reader, nil, map[string]string{"X-Client-Request-Id": "forged"})
	if v := e.credential.lastReq().Header.Get("X-Client-Request-Id"); v != "" {
		t.Errorf("a client's X-Client-Request-Id reached the service: %q", v)
	}
	// Without one, the gateway makes a request id and forwards it.
	r = e.do("GET", "/providers", e.keys.reader, nil, nil)
	if id := e.credential.lastReq().Header.Get("X-Request-Id"); id == "" || id != r.header.Get("X-Request-Id") {
		t.Errorf("generated request id %q not forwarded (response %q)", id, r.header.Get("X-Request-Id"))
	}
}

func TestPassThrough(t *testing.T) {
	e := start(t, nil, Deps{})
	tests := []struct {
		status int
		body   string
		hdr    map[string]string
	}{
		{201, `{"id":"p1"}`, map[string]string{"Location": "/providers/p1", "Content-Type": "application/json"}},
		{422, `{"code":"validation_failed","detail":"npi: bad","field":"npi"}`, map[string]string{"Content-Type": "application/json"}},
		{429, `{"code":"busy","detail":"later"}`, map[string]string{"Retry-After": "7", "Content-Type": "application/json"}},
		{503, `{"code":"busy","detail":"later"}`, map[string]string{"Retry-After": "3", "Content-Type": "application/json"}},
		{204, ``, map[string]string{"X-Custom": "yes"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			e.credential.set(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.hdr {
					w.Header().Set(k, v)
				}
				w.Header().Add("Vary", "Accept")
				w.Header().Add("Vary", "Origin")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			r := e.do("POST", "/providers", e.keys.admin, strings.NewReader("{}"), nil)
			if r.status != tt.status || string(r.raw) != tt.body {
				t.Fatalf("got %d %q", r.status, r.raw)
			}
			for k, v := range tt.hdr {
				if r.header.Get(k) != v {
					t.Fatalf("header %s = %q, want %q", k, r.header.Get(k), v)
				}
			}
			if len(r.header.Values("Vary")) != 2 {
				t.Fatalf("Vary = %v", r.header.Values("Vary"))
			}
		})
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestRateLimit(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	e := start(t, map[string]string{"RATE_LIMIT_REQUESTS_PER_MINUTE": "5"}, Deps{Now: clk.Now})
	for i := 0; i < 5; i++ {
		r := e.do("GET", "/providers", e.keys.reader, nil, nil)
		if r.status != 200 {
			t.Fatalf("request %d: %d", i+1, r.status)
		}
		if r.header.Get("RateLimit-Policy") != `"default";q=5;w=60` {
			t.Fatalf("RateLimit-Policy %q", r.header.Get("RateLimit-Policy"))
		}
		if want := fmt.Sprintf(`"default";r=%d;t=%d`, 4-i, 12*(i+1)); r.header.Get("RateLimit") != want {
			t.Fatalf("RateLimit %q, want %q", r.header.Get("RateLimit"), want)
		}
	}
	hits := e.credential.hits.Load()
	r := e.do("GET", "/providers", e.keys.reader, nil, nil)
	if r.status != 429 || string(r.raw) != `{"code":"rate_limited","detail":"Too many requests. Please try again later."}` {
		t.Fatalf("6th: %d %s", r.status, r.raw)
	}
	// T is 12s; a request may come half of it early (see ratelimit.Policy).
	if r.header.Get("Retry-After") != "6" || r.header.Get("RateLimit") != `"default";r=0;t=60` {
		t.Fatalf("429 headers: Retry-After %q RateLimit %q", r.header.Get("Retry-After"), r.header.Get("RateLimit"))
	}
	if e.credential.hits.Load() != hits {
		t.Fatal("a limited request reached the upstream")
	}
	// Another key has its own allowance; health is never limited.
	if r := e.do("GET", "/providers", e.keys.admin, nil, nil); r.status != 200 {
		t.Fatalf("admin limited by reader's use: %d", r.status)
	}
	for i := 0; i < 10; i++ {
		if r := e.do("GET", "/health", "", nil, nil); r.status != 200 {
			t.Fatalf("health limited: %d", r.status)
		}
	}
	clk.Add(12 * time.Second)
	if r := e.do("GET", "/providers", e.keys.reader, nil, nil); r.status != 200 {
		t.Fatalf("after Retry-After: %d", r.status)
	}
	// Without a key the client is limited by address: 401s count.
	for i := 0; i < 5; i++ {
		if r := e.do("GET", "/providers", "", nil, nil); r.status != 401 {
			t.Fatalf("anonymous %d: %d", i, r.status)
		}
	}
	if r := e.do("GET", "/providers", "pc_guess", nil, nil); r.status != 429 {
		t.Fatalf("bad keys from a limited address: %d", r.status)
	}
	a, _ := e.gw.Metrics.Value("ratelimit_decisions_total", "decision=allowed")
	l, _ := e.gw.Metrics.Value("ratelimit_decisions_total", "decision=limited")
	if a != 12 || l != 2 {
		t.Fatalf("metrics allowed=%v limited=%v", a, l)
	}
}

func TestTrustedProxyClientIP(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	e := start(t, map[string]string{"RATE_LIMIT_REQUESTS_PER_MINUTE": "1", "TRUSTED_PROXIES": "127.0.0.0/8"}, Deps{Now: clk.Now})
	xff := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": "6.6.6.6, " + ip} }
	if r := e.do("GET", "/providers", "", nil, xff("198.51.100.1")); r.status != 401 {
		t.Fatal(r.status)
	}
	if r := e.do("GET", "/providers", "", nil, xff("198.51.100.1")); r.status != 429 {
		t.Fatalf("same client twice: %d", r.status)
	}
	if r := e.do("GET", "/providers", "", nil, xff("198.51.100.2")); r.status != 401 {
		t.Fatalf("another client behind the same proxy was limited: %d", r.status)
	}
}

// lockedBuffer collects log lines written from many handlers at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestUnavailableIsCountedNotLoggedEach: with a real upstream down, every
// 503 was an ERROR line of its own (a 30 s outage wrote 317k lines). Now
// each is counted and the log gets the first and then one line per interval
// with the count since.
func TestUnavailableIsCountedNotLoggedEach(t *testing.T) {
	var logs lockedBuffer
	e := start(t, map[string]string{"CREDENTIAL_URL": deadURL(t), "BREAKER_FAILURES": "3"},
		Deps{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	const n = 300
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / 10 {
				req, _ := http.NewRequest("GET", e.url+"/providers", nil)
				req.Header.Set("Authorization", "Bearer "+e.keys.reader)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 503 {
					t.Errorf("worker %d: %d", w, resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	if v, _ := e.gw.Metrics.Value("http_server_unavailable_total", "code=upstream_unavailable"); v != n {
		t.Fatalf("http_server_unavailable_total{code=upstream_unavailable} = %v, want %d", v, n)
	}
	lines := strings.Count(logs.String(), `"code":"upstream_unavailable"`)
	// The first, and a summary each 10 s should the machine be that slow.
	if lines < 1 || lines > 3 {
		t.Fatalf("%d log lines for %d refusals:\n%s", lines, n, logs.String())
	}
}

// TestAPIKeysFileReloads: keys were read once at start; a Kubernetes
// Secret update (an atomic swap of the mounted file) now takes effect
// without a restart, and a bad file keeps the keys in force.
func TestAPIKeysFileReloads(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "keys")
	swap := func(content string) { // as the kubelet does: write aside, rename over
		t.Helper()
		tmp := filepath.Join(dir, "..new")
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	secretA, entryA, _ := auth.Generate("file-a", auth.RoleReader)
	secretB, entryB, _ := auth.Generate("file-b", auth.RoleReader)
	swap(entryA + "\n")
	e := start(t, map[string]string{"API_KEYS_FILE": file, "API_KEYS_RELOAD_INTERVAL": "20ms"}, Deps{})
	status := func(key string) int { return e.do("GET", "/providers", key, nil, nil).status }
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("not within 5s: %s", what)
			}
		}
	}
	if status(secretA) != 200 || status(secretB) != 401 {
		t.Fatalf("at start: a %d, b %d", status(secretA), status(secretB))
	}
	swap(entryB + "\n") // a revoked and a new key
	waitFor("the new file in force", func() bool { return status(secretB) == 200 && status(secretA) == 401 })
	if status(e.keys.admin) != 200 {
		t.Fatal("API_KEYS entries must stay in force")
	}
	for _, bad := range []string{"garbage", "file-c:reader:not-a-hash\n"} {
		before, _ := e.gw.Metrics.Value("gateway_api_keys_reload_failures_total")
		swap(bad)
		waitFor("the failure counted", func() bool {
			v, _ := e.gw.Metrics.Value("gateway_api_keys_reload_failures_total")
			return v > before
		})
		if status(secretB) != 200 {
			t.Fatalf("file %q: the keys in force were dropped", bad)
		}
	}
	if v, _ := e.gw.Metrics.Value("gateway_api_keys"); v != 4 {
		t.Fatalf("gateway_api_keys = %v, want 4 (3 from API_KEYS, 1 from the file)", v)
	}
}

// TestConnectionsPerIPAreCapped: one address could hold any number of
// idle sockets open (3000 were accepted). Past MAX_CONNS_PER_IP a new one
// gets a JSON 429 and is closed; closing one makes room again.
func TestConnectionsPerIPAreCapped(t *testing.T) {
	e := start(t, map[string]string{"MAX_CONNS_PER_IP": "5"}, Deps{})
	addr := strings.TrimPrefix(e.url, "http://")
	var held []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		t.Cleanup(func() { c.Close() })
	}
	// The listener counts a connection when it accepts it: make sure all
	// five were (each answers a request) before the sixth comes.
	for _, c := range held {
		if _, err := c.Write([]byte("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("held connection: %v %v", resp, err)
		}
	}
	sixth, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sixth.Close()
	_ = sixth.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(sixth), nil)
	if err != nil {
		t.Fatalf("the sixth connection got no answer: %v", err)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 429 || body["code"] != "too_many_connections" {
		t.Fatalf("sixth connection: %d %v", resp.StatusCode, body)
	}
	if v, _ := e.gw.Metrics.Value("http_server_connections_refused_total"); v != 1 {
		t.Fatalf("http_server_connections_refused_total = %v, want 1", v)
	}
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if r := e.do("GET", "/livez", "", nil, nil); r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no room after a connection closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUpstreamDown(t *testing.T) {
	e := start(t, map[string]string{"CREDENTIAL_URL": deadURL(t)}, Deps{})
	for _, m := range []string{"GET", "POST"} {
		t0 := time.Now()
		r := e.do(m, "/providers", e.keys.admin, strings.NewReader("{}"), nil)
		if el := time.Since(t0); el > time.Second {
			t.Fatalf("took %s", el)
		}
		if r.status != 503 || r.body["code"] != "upstream_unavailable" || r.body["detail"] == "" {
			t.Fatalf("%s: %d %s", m, r.status, r.raw)
		}
	}
}

func TestSlowUpstream(t *testing.T) {
	e := start(t, map[string]string{"STATS_TIMEOUT": "300ms"}, Deps{})
	release := make(chan struct{})
	defer close(release)
	e.stats.set(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	t0 := time.Now()
	r := e.do("GET", "/stats/summary", e.keys.reader, nil, nil)
	el := time.Since(t0)
	if r.status != 504 || r.body["code"] != "upstream_timeout" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if el < 300*time.Millisecond || el > 1500*time.Millisecond {
		t.Fatalf("answered after %s, want about 300ms", el)
	}
	// The other upstreams keep their own (longer) timeout.
	if r := e.do("GET", "/providers", e.keys.reader, nil, nil); r.status != 200 {
		t.Fatal(r.status)
	}
}

func TestBreaker(t *testing.T) {
	e := start(t, map[string]string{"BREAKER_FAILURES": "3", "BREAKER_OPEN_TIMEOUT": "400ms"}, Deps{})
	var failing atomic.Bool
	failing.Store(true)
	e.stats.set(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(500)
			_, _ = io.WriteString(w, `{"code":"internal","detail":"boom"}`)
			return
		}
		_, _ = io.WriteString(w, `{"providers_total":1}`)
	})
	// 4xx answers are the caller's fault and never trip it.
	e.credential.set(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) })
	for i := 0; i < 5; i++ {
		if r := e.do("GET", "/providers/x", e.keys.reader, nil, nil); r.status != 404 {
			t.Fatal(r.status)
		}
	}
	for i := 0; i < 3; i++ {
		r := e.do("GET", "/stats/summary", e.keys.reader, nil, nil)
		if r.status != 500 || r.body["detail"] != "boom" {
			t.Fatalf("failure %d passed through as %d %s", i, r.status, r.raw)
		}
	}
	hits := e.stats.hits.Load()
	t0 := time.Now()
	r := e.do("GET", "/stats/summary", e.keys.reader, nil, nil)
	if r.status != 503 || r.body["code"] != "upstream_unavailable" || time.Since(t0) > 500*time.Millisecond {
		t.Fatalf("open breaker: %d %s after %s", r.status, r.raw, time.Since(t0))
	}
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After while open")
	}
	if e.stats.hits.Load() != hits {
		t.Fatal("the upstream was called while the breaker was open")
	}
	if v, _ := e.gw.Metrics.Value("circuit_breaker_state", "name=upstream_stats"); v != 2 {
		t.Fatalf("state metric %v", v)
	}
	if v, _ := e.gw.Metrics.Value("circuit_breaker_state", "name=upstream_credential"); v != 0 {
		t.Fatalf("credential breaker tripped by 404s: %v", v)
	}
	failing.Store(false)
	time.Sleep(500 * time.Millisecond)
	for i := 0; i < 3; i++ {
		if r := e.do("GET", "/stats/summary", e.keys.reader, nil, nil); r.status != 200 {
			t.Fatalf("after healing %d: %d %s", i, r.status, r.raw)
		}
	}
	if v, _ := e.gw.Metrics.Value("circuit_breaker_state", "name=upstream_stats"); v != 0 {
		t.Fatalf("state after healing %v", v)
	}
}

// pattern is a deterministic, allocation-free body of n bytes.
type pattern struct{ n, off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rem := p.n - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	for i := range b {
		b[i] = byte((p.off + int64(i)) % 251)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func TestStreamingUpload(t *testing.T) {
	e := start(t, nil, Deps{})
	const size = 50 << 20
	want := sha256.New()
	_, _ = io.Copy(want, &pattern{n: size})
	e.credential.set(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"bytes": n, "sha256": hex.EncodeToString(h.Sum(nil))})
	})
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			runtime.GC()
			var peak atomic.Uint64
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				var ms runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
				}
			}()
			var body io.Reader = &pattern{n: size}
			req, _ := http.NewRequest("POST", e.url+"/providers/import", body)
			if chunked {
				req.ContentLength = -1
			} else {
				req.ContentLength = size
			}
			req.Header.Set("Authorization", "Bearer "+e.keys.admin)
			req.Header.Set("Content-Type", "text/csv")
			resp, err := http.DefaultClient.Do(req)
			close(stop)
			<-sampled
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&got)
			if resp.StatusCode != 200 || got["bytes"] != float64(size) || got["sha256"] != hex.EncodeToString(want.Sum(nil)) {
				t.Fatalf("%d %v", resp.StatusCode, got)
			}
			grew := int64(peak.Load()) - int64(base.HeapInuse)
			t.Logf("heap in use grew by at most %.1f MB for a %d MB upload", float64(grew)/(1<<20), size>>20)
			if grew > 16<<20 {
				t.Fatalf("heap grew by %d MB: the body was buffered", grew>>20)
			}
		})
	}
	// A batch carries a roster CSV: like the imports, it is not capped at
	// BODY_LIMIT_BYTES (4 MiB by default).
	for _, chunked := range []bool{false, true} {
		req, _ := http.NewRequest("POST", e.url+"/batch-credential", &pattern{n: 5 << 20})
		req.ContentLength = 5 << 20
		if chunked {
			req.ContentLength = -1
		}
		req.Header.Set("Authorization", "Bearer "+e.keys.operator)
		req.Header.Set("Content-Type", "text/csv")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != 200 || got["bytes"] != float64(5<<20) {
			t.Fatalf("5 MiB batch roster (chunked=%v): %d %v", chunked, resp.StatusCode, got)
		}
	}
	// Routes that are not imports keep the normal body limit.
	r := e.do("POST", "/providers", e.keys.admin, &pattern{n: 5 << 20}, nil)
	if r.status != 413 || r.body["code"] != "body_too_large" {
		t.Fatalf("large body on a normal route: %d %s", r.status, r.raw)
	}
}

func TestShedding(t *testing.T) {
	e := start(t, map[string]string{"MAX_CONCURRENT_CONNECTIONS": "2"}, Deps{})
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	var inside sync.WaitGroup
	var blocked atomic.Int64
	inside.Add(2)
	e.credential.set(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/providers" { // a health probe
			_, _ = io.WriteString(w, `{"status":"healthy"}`)
			return
		}
		if blocked.Add(1) <= 2 {
			inside.Done()
			<-release
		}
		_, _ = io.WriteString(w, "{}")
	})
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", e.url+"/providers", nil)
			req.Header.Set("Authorization", "Bearer "+e.keys.reader)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	inside.Wait()
	t0 := time.Now()
	r := e.do("GET", "/providers", e.keys.reader, nil, nil)
	if r.status != 503 || r.body["code"] != "overloaded" || r.header.Get("Retry-After") == "" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if time.Since(t0) > 500*time.Millisecond {
		t.Fatalf("shedding took %s", time.Since(t0))
	}
	// Probes are never shed.
	if r := e.do("GET", "/livez", "", nil, nil); r.status != 200 {
		t.Fatalf("livez shed: %d", r.status)
	}
	r = e.do("GET", "/health/concurrency", e.keys.operator, nil, nil)
	conns := r.body["concurrency"].(map[string]any)["connections"].(map[string]any)
	if conns["in_use"] != float64(2) || conns["total"] != float64(2) {
		t.Fatalf("connections %v", conns)
	}
	free()
	wg.Wait()
	if v, _ := e.gw.Metrics.Value("gateway_shed_requests_total"); v != 1 {
		t.Fatalf("shed metric %v", v)
	}
	if r := e.do("GET", "/providers", e.keys.reader, nil, nil); r.status != 200 {
		t.Fatalf("after the load: %d", r.status)
	}
}

func TestHealthAggregation(t *testing.T) {
	e := start(t, map[string]string{"STATS_URL": deadURL(t)}, Deps{})
	e.credential.set(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "healthy", "service": "credential",
			"concurrency": map[string]any{"active_tasks": 3, "batch_semaphore": map[string]any{"available": 7, "total": 10}}})
	})
	// Open, and with a reader's key: status words only.
	for _, key := range []string{"", e.keys.reader} {
		r := e.do("GET", "/health/concurrency", key, nil, nil)
		if r.status != 200 || r.body["status"] != "degraded" || len(r.body) != 4 || r.body["detail"] == nil {
			t.Fatalf("open report (key %q): %d %s", key, r.status, r.raw)
		}
		ups := r.body["upstreams"].(map[string]any)
		if len(ups) != 3 || len(ups["credential"].(map[string]any)) != 1 || ups["credential"].(map[string]any)["status"] != "healthy" ||
			ups["stats"].(map[string]any)["status"] != "unreachable" {
			t.Fatalf("open report upstreams (key %q): %s", key, r.raw)
		}
		for _, secret := range []string{`"config"`, `"concurrency"`, `"system"`, "rate_limit", "timeout", "active_tasks"} {
			if strings.Contains(string(r.raw), secret) {
				t.Fatalf("open report (key %q) shows %q: %s", key, secret, r.raw)
			}
		}
	}
	t0 := time.Now()
	r := e.do("GET", "/health/concurrency", e.keys.operator, nil, nil)
	if r.status != 200 || r.body["status"] != "degraded" || time.Since(t0) > 2*time.Second {
		t.Fatalf("%d %s after %s", r.status, r.raw, time.Since(t0))
	}
	ups := r.body["upstreams"].(map[string]any)
	if ups["stats"].(map[string]any)["status"] != "unreachable" {
		t.Fatalf("stats: %v", ups["stats"])
	}
	// The endpoint is open: it must not reveal where the services live.
	if dead := strings.TrimPrefix(deadURL(t), "http://"); strings.Contains(string(r.raw), "127.0.0.1:") || strings.Contains(string(r.raw), dead) {
		t.Fatalf("health body reveals an upstream address: %s", r.raw)
	}
	cred := ups["credential"].(map[string]any)
	if cred["status"] != "healthy" || cred["concurrency"].(map[string]any)["active_tasks"] != float64(3) {
		t.Fatalf("credential: %v", cred)
	}
	if ups["chat"].(map[string]any)["status"] != "healthy" {
		t.Fatalf("chat: %v", ups["chat"])
	}
	conc := r.body["concurrency"].(map[string]any)
	for _, k := range []string{"connections", "rate_limiter", "breakers", "active_tasks"} {
		if conc[k] == nil {
			t.Fatalf("missing concurrency.%s: %v", k, conc)
		}
	}
	if conc["breakers"].(map[string]any)["upstream_stats"].(map[string]any)["state"] != "closed" {
		t.Fatalf("breakers %v", conc["breakers"])
	}
	if r.body["system"] == nil || r.body["config"] == nil {
		t.Fatalf("missing system/config: %s", r.raw)
	}
	if strings.Contains(string(r.raw), e.keys.admin) || strings.Contains(string(r.raw), auth.Hash(e.keys.admin)) {
		t.Fatal("health leaks a key")
	}
	r = e.do("GET", "/health", "", nil, nil)
	if r.status != 200 || r.body["status"] != "degraded" ||
		r.body["upstreams"].(map[string]any)["stats"].(map[string]any)["status"] != "unreachable" ||
		r.body["upstreams"].(map[string]any)["credential"].(map[string]any)["status"] != "healthy" {
		t.Fatalf("/health: %d %s", r.status, r.raw)
	}
	// All up: healthy.
	e2 := start(t, nil, Deps{})
	if r := e2.do("GET", "/health", "", nil, nil); r.body["status"] != "healthy" {
		t.Fatalf("all up: %s", r.raw)
	}
}

func TestEventStream(t *testing.T) {
	e := start(t, nil, Deps{})
	next := make(chan struct{})
	e.chat.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		_, _ = io.WriteString(w, "data: one\n\n")
		fl.Flush()
		select {
		case <-next:
		case <-time.After(3 * time.Second):
		}
		_, _ = io.WriteString(w, "data: two\n\n")
	})
	req, _ := http.NewRequest("POST", e.url+"/chat", strings.NewReader(`{"message":"hi"}`))
	req.Header.Set("Authorization", "Bearer "+e.keys.operator)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(resp.Body, buf, len("data: one\n\n"))
	if err != nil || !bytes.HasPrefix(buf[:n], []byte("data: one")) {
		t.Fatalf("first event not streamed before the upstream finished: %q %v", buf[:n], err)
	}
	close(next)
	rest, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(rest), "data: two") {
		t.Fatalf("rest %q", rest)
	}
}

func TestDocs(t *testing.T) {
	e := start(t, nil, Deps{})
	r := e.do("GET", "/openapi.json", "", nil, nil)
	if r.status != 200 || r.body["openapi"] == nil {
		t.Fatalf("%d %.200s", r.status, r.raw)
	}
	// The pages and their assets are open: no key, and served by the gateway.
	for path, want := range map[string]string{"/docs": "swagger-ui-bundle.js", "/redoc": `spec-url="openapi.json"`,
		"/docs/assets/docs.js": `url: "openapi.json"`, "/docs/assets/swagger-ui/swagger-ui.css": ".swagger-ui"} {
		r = e.do("GET", path, "", nil, nil)
		if r.status != 200 || !strings.Contains(string(r.raw), want) || strings.Contains(string(r.raw), "https://cdn") {
			t.Fatalf("%s: %d", path, r.status)
		}
	}
}

func TestTraceparentWithRecordingTracer(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e := start(t, nil, Deps{Tracer: tp})
	in := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if r := e.do("GET", "/providers", e.keys.reader, nil, map[string]string{"traceparent": in}); r.status != 200 {
		t.Fatal(r.status)
	}
	out := e.credential.lastReq().Header.Get("Traceparent")
	parts := strings.Split(out, "-")
	if len(parts) != 4 || parts[1] != "4bf92f3577b34da6a3ce929d0e0e4736" || parts[2] == "00f067aa0ba902b7" {
		t.Fatalf("upstream traceparent %q: want the same trace with the gateway's span as parent", out)
	}
	if n := len(e.credential.lastReq().Header.Values("Traceparent")); n != 1 {
		t.Fatalf("%d traceparent headers", n)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := start(t, nil, Deps{})
	r := e.do("PUT", "/results", e.keys.admin, nil, nil)
	t.Logf("PUT /results: %d %s", r.status, r.raw)
	if r.status != 405 || r.body["code"] != "method_not_allowed" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

// TestUnknownMethod: a method Fiber does not know is a JSON 400 at the
// gateway too, and never reaches a service.
func TestUnknownMethod(t *testing.T) {
	e := start(t, nil, Deps{})
	for _, m := range []string{"BREW", "PROPFIND", "get"} {
		r := e.do(m, "/providers", e.keys.admin, nil, nil)
		if r.status != 400 || r.body["code"] != "bad_request" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s /providers: %d %s %s", m, r.status, r.header.Get("Content-Type"), r.raw)
		}
	}
	if e.credential.lastReq() != nil {
		t.Fatal("an unknown method reached the credential service")
	}
}

func TestImportLimitIsTheClientsFault(t *testing.T) {
	e := start(t, map[string]string{"IMPORT_BODY_LIMIT_BYTES": "1048576", "BREAKER_FAILURES": "1"}, Deps{})
	e.credential.set(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"bytes": n})
	})
	for _, chunked := range []bool{false, true} {
		req, _ := http.NewRequest("POST", e.url+"/providers/import", &pattern{n: 3 << 20})
		req.ContentLength = 3 << 20
		if chunked {
			req.ContentLength = -1
		}
		req.Header.Set("Authorization", "Bearer "+e.keys.admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("chunked=%v: %v", chunked, err)
		}
		var b map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&b)
		resp.Body.Close()
		if resp.StatusCode != 413 || b["code"] != "body_too_large" {
			t.Fatalf("chunked=%v: %d %v", chunked, resp.StatusCode, b)
		}
	}
	// Not held against the upstream: the breaker (1 failure trips it) is closed.
	r := e.do("POST", "/providers/import", e.keys.admin, strings.NewReader("a,b\n1,2\n"), nil)
	if r.status != 200 || r.body["bytes"] != float64(8) {
		t.Fatalf("after oversize uploads: %d %s", r.status, r.raw)
	}
	if v, _ := e.gw.Metrics.Value("circuit_breaker_state", "name=upstream_credential"); v != 0 {
		t.Fatalf("breaker state %v", v)
	}
}

func TestImportReadTimeoutOnlyForAdmins(t *testing.T) {
	e := start(t, map[string]string{"IMPORT_TIMEOUT": "45m"}, Deps{})
	tests := []struct {
		uri, key string
		want     time.Duration
	}{
		{"/providers/import", e.keys.admin, 45 * time.Minute},
		{"/admin/imports/leie?file_date=2026-11-01", e.keys.admin, 45 * time.Minute},
		// Routed case-insensitively, so an import route too.
		{"/ADMIN/Imports/leie", e.keys.admin, 45 * time.Minute},
		{"/admin/imports/leie", e.keys.operator, 0},
		{"/batch-credential?wait=60s", e.keys.operator, 45 * time.Minute},
		{"/batch-credential", e.keys.reader, 0},
		{"/providers/import", "", 0},
		{"/providers/import", "pc_wrong", 0},
		{"/providers", e.keys.admin, 0},
	}
	for _, tt := range tests {
		var h fasthttp.RequestHeader
		h.SetRequestURI(tt.uri)
		if tt.key != "" {
			h.Set("Authorization", "Bearer "+tt.key)
		}
		rc := e.gw.requestConfig(&h)
		if rc.ReadTimeout != tt.want || rc.WriteTimeout != tt.want {
			t.Errorf("%s (key given: %v): %+v, want %s", tt.uri, tt.key != "", rc, tt.want)
		}
	}
}

type brokenLimiter struct{}

func (brokenLimiter) Allow(context.Context, ratelimit.Policy, string) (ratelimit.Decision, error) {
	return ratelimit.Decision{}, errors.New("redis: connection refused")
}

func TestLimiterErrorFailsOpen(t *testing.T) {
	e := start(t, nil, Deps{Limiter: brokenLimiter{}})
	for i := 0; i < 3; i++ {
		if r := e.do("GET", "/providers", e.keys.reader, nil, nil); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	}
	if v, _ := e.gw.Metrics.Value("ratelimit_backend_errors_total"); v != 3 {
		t.Fatalf("backend errors %v", v)
	}
	r := e.do("GET", "/health/concurrency", e.keys.operator, nil, nil)
	rl := r.body["concurrency"].(map[string]any)["rate_limiter"].(map[string]any)
	if rl["backend"] == "local" {
		t.Fatalf("rate_limiter %v", rl)
	}
}
