package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/logging"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/semaphore"
)

func newTestServer(t *testing.T, logs *bytes.Buffer, mutate func(*Options)) *Server {
	t.Helper()
	m := metrics.New("svc")
	o := Options{
		Service: "svc", Logger: slog.New(slog.NewJSONHandler(logs, nil)), Metrics: m, BodyLimit: 1024,
		ShutdownTimeout: 2 * time.Second,
		Semaphores:      []*semaphore.Semaphore{semaphore.New("llm", 5, 0, m)},
		Config:          map[string]any{"max_concurrent_llm_requests": 5},
	}
	if mutate != nil {
		mutate(&o)
	}
	s := New(o)
	s.App.Get("/apierr", func(c *fiber.Ctx) error { return apierr.Invalid("npi", "must be 10 digits") })
	s.App.Get("/boom", func(c *fiber.Ctx) error { return errors.New("db password=secret exploded") })
	s.App.Get("/panic", func(c *fiber.Ctx) error { panic("kaboom") })
	s.App.Get("/busy", func(c *fiber.Ctx) error { return semaphore.ErrBusy })
	s.App.Post("/echo", func(c *fiber.Ctx) error { return c.Send(c.Body()) })
	s.App.Get("/actor", func(c *fiber.Ctx) error { return c.SendString(Actor(c) + "|" + RequestID(c)) })
	return s
}

func do(t *testing.T, s *Server, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := s.App.Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, body
}

func TestErrorsAreJSON(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, &logs, nil)
	tests := []struct {
		name, method, path string
		body               string
		wantStatus         int
		wantCode           string
		route              string // the metrics label
	}{
		{"validation", "GET", "/apierr", "", 422, "validation_failed", "/apierr"},
		{"internal hides cause", "GET", "/boom", "", 500, "internal", "/boom"},
		{"panic", "GET", "/panic", "", 500, "internal", "/panic"},
		{"busy", "GET", "/busy", "", 503, "busy", "/busy"},
		{"unknown route", "GET", "/nope", "", 404, "not_found", "unmatched"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			status, body := do(t, s, req)
			if status != tt.wantStatus || body["code"] != tt.wantCode {
				t.Fatalf("got %d %v, want %d %s", status, body, tt.wantStatus, tt.wantCode)
			}
			if d, _ := body["detail"].(string); d == "" || strings.Contains(d, "secret") {
				t.Fatalf("detail %q must be present and must not leak the cause", d)
			}
			// Metrics count the status the client got, not a 500 for every error.
			code := fmt.Sprint(tt.wantStatus)
			if v, _ := s.opts.Metrics.Value("http_server_requests_total", "route="+tt.route, "code="+code); v != 1 {
				t.Fatalf("http_server_requests_total{route=%s,code=%s} = %v, want 1", tt.route, code, v)
			}
		})
	}
	if !strings.Contains(logs.String(), "exploded") {
		t.Fatal("the cause of a 500 must be logged")
	}
}

func TestBodyTooLargeOverTheWire(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, &logs, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.App.Listener(ln) }()
	t.Cleanup(func() { _ = s.App.Shutdown() })
	resp, err := http.Post("http://"+ln.Addr().String()+"/echo", "text/plain", strings.NewReader(strings.Repeat("x", 5000)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 413 || body["code"] != "body_too_large" {
		t.Fatalf("got %d %v", resp.StatusCode, body)
	}
}

// TestUnknownMethodIsJSON: Fiber answers a method it does not know before
// any middleware, in plain text; the answer must be the JSON every error is.
func TestUnknownMethodIsJSON(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, &logs, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.App.Listener(ln) }()
	t.Cleanup(func() { _ = s.App.Shutdown() })
	base := "http://" + ln.Addr().String()
	for _, tt := range []struct{ method, path string }{
		{"BREW", "/livez"},
		{"PROPFIND", "/echo"},
		{"get", "/livez"}, // methods are case-sensitive (RFC 9110)
		{"X-" + strings.Repeat("A", 300), "/nope"},
	} {
		t.Run(tt.method[:min(len(tt.method), 10)], func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("%s: body is not JSON: %v", tt.method, err)
			}
			if resp.StatusCode != 400 || body["code"] != "bad_request" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("%s: got %d %s %v", tt.method, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		})
	}
	// Known methods still route.
	if resp, err := http.Get(base + "/livez"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /livez: %v %v", resp, err)
	}
}

func TestHealthEndpoints(t *testing.T) {
	var logs bytes.Buffer
	dbUp := true
	s := newTestServer(t, &logs, func(o *Options) {
		o.Checks = []Check{{Name: "postgres", Fn: func(context.Context) error {
			if dbUp {
				return nil
			}
			return errors.New("connection refused")
		}}}
		o.Info = func(context.Context) map[string]any { return map[string]any{"llm_configured": false} }
	})
	if st, body := do(t, s, httptest.NewRequest("GET", "/readyz", nil)); st != 200 || body["status"] != "ready" {
		t.Fatalf("readyz %d %v", st, body)
	}
	if st, body := do(t, s, httptest.NewRequest("GET", "/health", nil)); st != 200 || body["llm_configured"] != false {
		t.Fatalf("health %d %v", st, body)
	}
	dbUp = false
	// The open answers say "down", never the driver's error (it names the
	// database user, host and port); the log has it.
	for _, path := range []string{"/readyz", "/health"} {
		st, body := do(t, s, httptest.NewRequest("GET", path, nil))
		checks, _ := body["checks"].(map[string]any)
		if st != 503 || checks["postgres"] != "down" {
			t.Fatalf("%s with db down: %d %v", path, st, body)
		}
	}
	if !strings.Contains(logs.String(), "connection refused") {
		t.Fatal("the cause of a failed check must be logged")
	}
	if st, _ := do(t, s, httptest.NewRequest("GET", "/livez", nil)); st != 200 {
		t.Fatalf("livez must not depend on the db: %d", st)
	}
	st, body := do(t, s, httptest.NewRequest("GET", "/health/concurrency", nil))
	if st != 200 {
		t.Fatal(st)
	}
	conc := body["concurrency"].(map[string]any)
	llm := conc["llm_semaphore"].(map[string]any)
	if llm["total"] != float64(5) || llm["utilization"] != "0.0%" {
		t.Fatalf("llm_semaphore = %v", llm)
	}
	sys := body["system"].(map[string]any)
	if sys["memory_available_gb"].(float64) <= 0 {
		t.Fatalf("system = %v", sys)
	}
	if body["config"].(map[string]any)["max_concurrent_llm_requests"] != float64(5) {
		t.Fatalf("config = %v", body["config"])
	}
}

func TestActorAndRequestID(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, &logs, nil)
	req := httptest.NewRequest("GET", "/actor", nil)
	req.Header.Set(HeaderActor, "key_ops")
	req.Header.Set(HeaderRequestID, "rid-9")
	resp, _ := s.App.Test(req)
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "key_ops|rid-9" || resp.Header.Get(HeaderRequestID) != "rid-9" {
		t.Fatalf("got %q, header %q", b, resp.Header.Get(HeaderRequestID))
	}
	// An id that is too long or not plain visible ASCII is replaced, not
	// carried into logs, the audit trail and the next service.
	for _, bad := range []string{strings.Repeat("r", 129), "a\xffb", "two words", "tab\tid"} {
		req := httptest.NewRequest("GET", "/actor", nil)
		req.Header.Set(HeaderRequestID, bad)
		resp, err := s.App.Test(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		got := resp.Header.Get(HeaderRequestID)
		if got == bad || len(got) != 36 || string(b) != "anonymous|"+got {
			t.Fatalf("X-Request-Id %q: answered %q with body %q", bad, got, b)
		}
	}
}

// TestRequestIDsAreRandomAndOurs: the ids made here are random (Fiber's
// default is a counter on a random seed, so consecutive requests got ids
// differing in a few digits); at the edge (OwnRequestIDs) a client's
// X-Request-Id never becomes ours but is kept as X-Client-Request-Id, which
// the handler's context carries (the audit log records it).
func TestRequestIDsAreRandomAndOurs(t *testing.T) {
	var logs bytes.Buffer
	echo := func(c *fiber.Ctx) error {
		return c.SendString(RequestID(c) + "|" + c.Get(HeaderClientRequestID) + "|" + logging.ClientRequestID(c.UserContext()))
	}
	get := func(s *Server, hdr map[string]string) (string, []string) {
		t.Helper()
		req := httptest.NewRequest("GET", "/ids", nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := s.App.Test(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.Header.Get(HeaderRequestID), strings.Split(string(b), "|")
	}
	edge := newTestServer(t, &logs, func(o *Options) { o.OwnRequestIDs = true })
	edge.App.Get("/ids", echo)
	svc := newTestServer(t, &logs, nil)
	svc.App.Get("/ids", echo)

	tails := map[string]bool{}
	for range 200 {
		id, _ := get(edge, nil)
		if len(id) != 36 {
			t.Fatalf("id %q", id)
		}
		// Any 12 hex digits repeating across 200 random UUIDs is a 2^-40 event.
		for _, part := range []string{id[:8], id[24:]} {
			if tails[part] {
				t.Fatalf("id %q repeats %q of an earlier one: ids are not random", id, part)
			}
			tails[part] = true
		}
	}

	tests := []struct {
		name       string
		s          *Server
		hdr        map[string]string
		keepsOurs  string // "" when the id must be made here
		wantClient string
	}{
		{"edge: the client's id is kept apart", edge, map[string]string{HeaderRequestID: "client-77"}, "", "client-77"},
		{"edge: a forged X-Client-Request-Id is dropped", edge, map[string]string{HeaderClientRequestID: "forged"}, "", ""},
		{"edge: both: the client's X-Request-Id wins", edge, map[string]string{HeaderRequestID: "mine", HeaderClientRequestID: "forged"}, "", "mine"},
		{"edge: an invalid client id is dropped", edge, map[string]string{HeaderRequestID: "two words"}, "", ""},
		{"service: the gateway's ids are kept", svc, map[string]string{HeaderRequestID: "gw-1", HeaderClientRequestID: "client-77"}, "gw-1", "client-77"},
		{"service: an invalid client id is dropped", svc, map[string]string{HeaderRequestID: "gw-1", HeaderClientRequestID: "a\tb"}, "gw-1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, body := get(tt.s, tt.hdr)
			if tt.keepsOurs != "" && id != tt.keepsOurs {
				t.Fatalf("X-Request-Id %q, want %q", id, tt.keepsOurs)
			}
			if tt.keepsOurs == "" && (len(id) != 36 || id == tt.hdr[HeaderRequestID]) {
				t.Fatalf("X-Request-Id %q: the client chose it", id)
			}
			if len(body) != 3 || body[0] != id || body[1] != tt.wantClient || body[2] != tt.wantClient {
				t.Fatalf("handler saw %q, want id %q and client id %q in header and context", body, id, tt.wantClient)
			}
		})
	}
}

func TestGracefulShutdownDrains(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, &logs, nil)
	release := make(chan struct{})
	s.App.Get("/slow", func(c *fiber.Ctx) error { <-release; return c.SendString("done") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan struct{})
	served := make(chan error, 1)
	go func() {
		served <- s.Serve(ctx, ln, func(context.Context) error { close(closed); return nil })
	}()
	url := "http://" + ln.Addr().String()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(url + "/slow")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	// Wait until the slow request is in flight, then ask to stop.
	for s.inflight.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	time.Sleep(50 * time.Millisecond)
	if !s.Draining() {
		t.Fatal("not draining after cancel")
	}
	select {
	case <-closed:
		t.Fatal("closers ran before the in-flight request finished")
	default:
	}
	close(release)
	if r := <-got; r != "done" {
		t.Fatalf("in-flight request got %q", r)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	<-closed
	if _, err := http.Get(url + "/livez"); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

func TestStreamPathsKeepLimitElsewhere(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, &logs, func(o *Options) { o.StreamPaths = []string{"/upload"} })
	s.App.Post("/upload", func(c *fiber.Ctx) error {
		r := BodyStream(c)
		n, err := io.Copy(io.Discard, r)
		if err != nil {
			return err
		}
		// Reading again after EOF must not block (fasthttp's chunked stream does).
		if m, err := r.Read(make([]byte, 8)); m != 0 || err != io.EOF {
			return fmt.Errorf("read after EOF: %d %v", m, err)
		}
		return c.JSON(map[string]int64{"bytes": n})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.App.Listener(ln) }()
	t.Cleanup(func() { _ = s.App.Shutdown() })
	base := "http://" + ln.Addr().String()
	post := func(path string, n int, chunked bool) (int, map[string]any) {
		var r io.Reader = strings.NewReader(strings.Repeat("x", n))
		if chunked {
			r = io.MultiReader(r) // hides the length: sent chunked
		}
		resp, err := http.Post(base+path, "text/plain", r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	for _, size := range []int{3 << 20, 500} {
		for _, chunked := range []bool{false, true} {
			if st, body := post("/upload", size, chunked); st != 200 || body["bytes"] != float64(size) {
				t.Fatalf("stream path (%d bytes, chunked %v): %d %v", size, chunked, st, body)
			}
		}
	}
	// Fiber routes paths case-insensitively: the streamed paths match so too.
	if st, body := post("/UPLOAD", 3<<20, false); st != 200 || body["bytes"] != float64(3<<20) {
		t.Fatalf("upper-case stream path: %d %v", st, body)
	}
	// Twice on the same keep-alive client: the refused body must not be
	// read as the next request.
	for i := 0; i < 2; i++ {
		if st, body := post("/echo", 5000, false); st != 413 || body["code"] != "body_too_large" {
			t.Fatalf("sized %d: %d %v", i, st, body)
		}
	}
	if st, _ := post("/echo", 10, false); st != 200 {
		t.Fatalf("after a 413: %d", st)
	}
	// A chunked body past the limit is refused with a 4xx JSON error; fasthttp
	// may refuse it while reading (431) before our handler runs.
	if st, body := post("/echo", 200000, true); st < 400 || st > 499 || body["code"] == nil {
		t.Fatalf("chunked: %d %v", st, body)
	}
	if st, _ := post("/echo", 500, true); st != 200 {
		t.Fatalf("small chunked body: %d", st)
	}
}

// An upload on a stream path may take longer than ReadTimeout (a bulk file
// through the gateway streams for minutes); every other request keeps it.
func TestStreamPathsOutliveReadTimeout(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, &logs, func(o *Options) {
		o.StreamPaths = []string{"/upload"}
		o.ReadTimeout = 300 * time.Millisecond
		o.StreamReadTimeout = 10 * time.Second
	})
	s.App.Post("/upload", func(c *fiber.Ctx) error {
		n, err := io.Copy(io.Discard, BodyStream(c))
		if err != nil {
			return apierr.BadRequest("bad_request", err.Error())
		}
		return c.JSON(map[string]int64{"bytes": n})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.App.Listener(ln) }()
	t.Cleanup(func() { _ = s.App.Shutdown() })
	slowPost := func(path string) string {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n", path)
		for i := 0; i < 4; i++ {
			fmt.Fprintf(conn, "5\r\nabcde\r\n")
			time.Sleep(150 * time.Millisecond) // 600 ms in all, twice ReadTimeout
		}
		fmt.Fprintf(conn, "0\r\n\r\n")
		b, _ := io.ReadAll(conn)
		return string(b)
	}
	if got := slowPost("/upload"); !strings.HasPrefix(got, "HTTP/1.1 200") || !strings.Contains(got, `{"bytes":20}`) {
		t.Fatalf("slow upload on a stream path: %q", got)
	}
	if got := slowPost("/echo"); strings.HasPrefix(got, "HTTP/1.1 200") {
		t.Fatalf("slow upload elsewhere outlived ReadTimeout: %q", got)
	}
}

// A handler that refuses a streamed upload part-way must not leave the rest
// of the body on the connection: fasthttp would run it as the next request,
// X-Actor-Id and all.
func TestUnreadStreamIsNeverParsedAsARequest(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, &logs, func(o *Options) { o.StreamPaths = []string{"/upload"} })
	s.App.Post("/upload", func(c *fiber.Ctx) error {
		if c.Query("read") == "none" {
			return apierr.Invalid("wait", "refused before the body is read")
		}
		// What a handler with a size cap does: read up to it, then refuse.
		_, _ = io.ReadAll(io.LimitReader(BodyStream(c), 70001))
		return apierr.New(fiber.StatusRequestEntityTooLarge, "body_too_large", "too big")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.App.Listener(ln) }()
	t.Cleanup(func() { _ = s.App.Shutdown() })
	smuggled := "GET /actor HTTP/1.1\r\nHost: x\r\nX-Actor-Id: evil\r\n\r\n"
	for _, tt := range []struct {
		query string
		pad   int
	}{{"", 70001}, {"", 20 << 20}, {"?read=none", 0}, {"?read=none", 100000}, {"?read=none", 20 << 20}} {
		body := strings.Repeat("A", tt.pad) + smuggled
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// Generous for the first answer: 20 MiB over loopback on a loaded
		// machine can take seconds.
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		go func() {
			fmt.Fprintf(conn, "POST /upload%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", tt.query, len(body))
			_, _ = io.WriteString(conn, body) // fails once the server closes: fine
		}()
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			conn.Close()
			t.Fatalf("%s pad %d: no answer to the upload: %v", tt.query, tt.pad, err)
		}
		first, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// Anything after the first answer is a second request's answer:
		// the smuggled one would be answered at once.
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		rest, _ := io.ReadAll(br)
		conn.Close()
		if bytes.Contains(first, []byte("evil")) || len(bytes.TrimSpace(rest)) > 0 {
			t.Fatalf("%s pad %d: the rest of the body ran as a request:\n%.600s", tt.query, tt.pad, rest)
		}
	}
}

// TestDrainClosesKeepAliveConnections: once the drain begins, an idle
// keep-alive connection is closed at once (its client must not send there
// again), the answer of a request in flight says Connection: close, and
// /readyz says 503.
func TestDrainClosesKeepAliveConnections(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, &logs, nil)
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	s.App.Get("/slow", func(c *fiber.Ctx) error { entered <- struct{}{}; <-release; return c.SendString("done") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	defer cancel()
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	get := func(c net.Conn, path string) {
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: svc\r\n\r\n", path); err != nil {
			t.Fatal(err)
		}
	}
	read := func(c net.Conn, r *bufio.Reader) *http.Response {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp
	}

	idle, idleR := dial()
	get(idle, "/livez")
	if resp := read(idle, idleR); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("before the drain: %d close=%v", resp.StatusCode, resp.Close)
	}
	busy, busyR := dial()
	get(busy, "/slow")
	<-entered

	handler := s.App.Handler()
	cancel()
	for !s.Draining() {
		time.Sleep(time.Millisecond)
	}
	// The idle connection is closed by the server, not left for the client
	// to find dead on its next request.
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := idleR.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("idle keep-alive connection during the drain: n=%d err=%v, want EOF", n, err)
	}
	// Asked in process: the listener is closed (and App.Test waits for
	// the shutdown to end).
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI("/readyz")
	rc.Request.Header.SetMethod("GET")
	handler(&rc)
	if rc.Response.StatusCode() != 503 || !rc.Response.ConnectionClose() {
		t.Fatalf("/readyz while draining: %d close=%v", rc.Response.StatusCode(), rc.Response.ConnectionClose())
	}

	close(release)
	if resp := read(busy, busyR); resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("request in flight at the drain: %d close=%v, want 200 with Connection: close", resp.StatusCode, resp.Close)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the drain did not end")
	}
}

func TestListenReusePort(t *testing.T) {
	ctx := context.Background()
	first, err := Listen(ctx, "127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	addr := first.Addr().String()
	if _, err := Listen(ctx, addr, false); err == nil {
		t.Fatal("a second listener without SO_REUSEPORT was allowed on a used address")
	}
	second, err := Listen(ctx, addr, true)
	if err != nil {
		t.Fatalf("second listener with SO_REUSEPORT: %v", err)
	}
	defer second.Close()
	// With the first one closed, the second still takes connections: a
	// restart that overlaps the old process never refuses one.
	first.Close()
	go func() {
		if c, err := second.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial after the first listener closed: %v", err)
	}
	c.Close()
}
