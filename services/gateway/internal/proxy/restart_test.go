package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/metrics"
)

// wireUpstream is a real HTTP/1.1 server on a loopback port whose every
// move is the test's: per request it answers, or reads the request and
// closes the connection without a byte of answer. It records which
// connection carried which request.
type wireUpstream struct {
	ln net.Listener
	// decide is called for each request read: connection number (from 1),
	// the request's number on that connection (from 1), the request.
	decide func(conn, n int, r *http.Request) (answer int)

	mu    sync.Mutex
	seen  []seenRequest
	conns []net.Conn
	next  int
}

type seenRequest struct {
	conn, n        int
	method, path   string
	connectionHdr  string
	answered       bool
	answeredStatus int
}

const drop = -1 // decide's answer: close the connection, answer nothing

func newWireUpstream(t *testing.T, addr string, decide func(conn, n int, r *http.Request) int) *wireUpstream {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	w := &wireUpstream{ln: ln, decide: decide}
	go w.accept()
	t.Cleanup(w.close)
	return w
}

func (w *wireUpstream) accept() {
	for {
		c, err := w.ln.Accept()
		if err != nil {
			return
		}
		w.mu.Lock()
		w.next++
		id := w.next
		w.conns = append(w.conns, c)
		w.mu.Unlock()
		go w.serve(id, c)
	}
}

func (w *wireUpstream) serve(id int, c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for n := 1; ; n++ {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		status := w.decide(id, n, r)
		w.mu.Lock()
		w.seen = append(w.seen, seenRequest{conn: id, n: n, method: r.Method, path: r.URL.Path,
			connectionHdr: r.Header.Get("Connection"), answered: status != drop, answeredStatus: status})
		w.mu.Unlock()
		if status == drop {
			return
		}
		body := fmt.Sprintf(`{"conn":%d,"n":%d}`, id, n)
		fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			status, http.StatusText(status), len(body), body)
		if r.Close {
			return
		}
	}
}

// closeIdle closes every connection accepted so far, as a draining server
// closes its idle keep-alive connections.
func (w *wireUpstream) closeIdle() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.conns {
		c.Close()
	}
	w.conns = nil
}

func (w *wireUpstream) close() { w.ln.Close(); w.closeIdle() }

func (w *wireUpstream) requests() []seenRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]seenRequest(nil), w.seen...)
}

func (w *wireUpstream) url() string { return "http://" + w.ln.Addr().String() }

// front is a Fiber app forwarding everything to up, rendering the proxy's
// errors as the platform server does.
func front(up *Upstream) *fiber.App {
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		var ae *apierr.Error
		if errors.As(err, &ae) {
			return c.Status(ae.Status).JSON(ae)
		}
		return c.Status(500).SendString(err.Error())
	}})
	app.All("/*", func(c *fiber.Ctx) error { return up.Handle(c, Forward{}) })
	return app
}

func send(t *testing.T, app *fiber.App, method, path string) (int, string) {
	t.Helper()
	resp, err := app.Test(httptest.NewRequest(method, path, strings.NewReader(`{"x":1}`)), 10000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func newTestUpstream(t *testing.T, url string, s breaker.Settings) (*Upstream, *metrics.Registry) {
	t.Helper()
	m := metrics.New("gateway")
	up, err := New(Options{Name: "credential", BaseURL: url, Timeout: 5 * time.Second, MaxConns: 16, Breaker: s, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	return up, m
}

// TestReusedConnectionClosedByUpstream: the upstream closed a pooled
// connection while it was idle (a drain, a restart). The next request, a
// POST, is sent once, on a new connection, and succeeds; the breaker (one
// failure opens it) never counts anything.
func TestReusedConnectionClosedByUpstream(t *testing.T) {
	w := newWireUpstream(t, "", func(int, int, *http.Request) int { return 200 })
	up, _ := newTestUpstream(t, w.url(), breaker.Settings{ConsecutiveFailures: 1, OpenTimeout: time.Hour, HalfOpenRequests: 1})
	app := front(up)
	for _, m := range []string{"GET", "POST"} {
		if st, body := send(t, app, m, "/warm"); st != 200 {
			t.Fatalf("warm-up %s: %d %s", m, st, body)
		}
	}
	w.closeIdle()
	time.Sleep(50 * time.Millisecond) // the FIN reaches the pooled connection
	for _, m := range []string{"POST", "PUT", "DELETE", "GET"} {
		if st, body := send(t, app, m, "/after-close"); st != 200 {
			t.Fatalf("%s after the upstream closed the pooled connection: %d %s", m, st, body)
		}
		w.closeIdle()
		time.Sleep(20 * time.Millisecond)
	}
	n := 0
	for _, r := range w.requests() {
		if r.path == "/after-close" {
			n++
		}
	}
	if n != 4 {
		t.Fatalf("the upstream saw %d requests for 4 sent: %+v", n, w.requests())
	}
	if up.Breaker().State() != "closed" {
		t.Fatalf("breaker %s", up.Breaker().State())
	}
}

// TestUnansweredOnReusedConnectionIsSentAgain covers the race the idle
// check cannot see: the upstream closes the connection as the request
// arrives (a draining fasthttp server drops it unread). Sent on a reused
// connection and unanswered, the POST goes once more on a new connection;
// on a new connection it is never sent twice.
func TestUnansweredOnReusedConnectionIsSentAgain(t *testing.T) {
	w := newWireUpstream(t, "", func(conn, n int, r *http.Request) int {
		switch {
		case r.URL.Path == "/first-on-new" && n == 1:
			return drop
		case r.URL.Path == "/second-on-reused" && n == 2:
			return drop
		}
		return 200
	})
	up, m := newTestUpstream(t, w.url(), breaker.Settings{ConsecutiveFailures: 1, OpenTimeout: time.Hour, HalfOpenRequests: 1})
	app := front(up)
	if st, body := send(t, app, "POST", "/warm"); st != 200 {
		t.Fatalf("warm-up: %d %s", st, body)
	}
	if st, body := send(t, app, "POST", "/second-on-reused"); st != 200 {
		t.Fatalf("POST dropped on a reused connection: %d %s, want the retry's 200", st, body)
	}
	var tries []seenRequest
	for _, r := range w.requests() {
		if r.path == "/second-on-reused" {
			tries = append(tries, r)
		}
	}
	if len(tries) != 2 || tries[0].n != 2 || tries[1].n != 1 || tries[0].conn == tries[1].conn {
		t.Fatalf("want the drop on the reused connection, then one try on a new one: %+v", tries)
	}
	if v, _ := m.Value("circuit_breaker_state", "name=upstream_credential"); v != 0 {
		t.Fatalf("breaker state %v after a retried request", v)
	}
	if v, err := m.Value("gateway_upstream_retries_total", "upstream=credential"); err != nil || v != 1 {
		t.Fatalf("gateway_upstream_retries_total = %v (%v), want 1", v, err)
	}

	// On a new connection the upstream drops the request unanswered: it
	// may have acted on it (a crash mid-request), so no second try.
	up.client.CloseIdleConnections()
	st, _ := send(t, app, "POST", "/first-on-new")
	if st != 503 {
		t.Fatalf("unanswered on a new connection: %d, want 503", st)
	}
	n := 0
	for _, r := range w.requests() {
		if r.path == "/first-on-new" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("a request unanswered on a new connection was sent %d times", n)
	}
	if v, _ := m.Value("gateway_upstream_retries_total", "upstream=credential"); v != 1 {
		t.Fatalf("gateway_upstream_retries_total = %v after a request that was not retried, want still 1", v)
	}
}

// TestHalfOpenProbeUsesNewConnection: the request let through a half-open
// breaker never rides a connection pooled before the failures.
func TestHalfOpenProbeUsesNewConnection(t *testing.T) {
	var mu sync.Mutex
	failing := true
	w := newWireUpstream(t, "", func(int, int, *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return 502
		}
		return 200
	})
	up, _ := newTestUpstream(t, w.url(), breaker.Settings{ConsecutiveFailures: 1, OpenTimeout: 200 * time.Millisecond, HalfOpenRequests: 1})
	app := front(up)
	if st, _ := send(t, app, "GET", "/fail"); st != 502 {
		t.Fatalf("failure passed through as %d", st)
	}
	if up.Breaker().State() != "open" {
		t.Fatal("not open")
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	if st, body := send(t, app, "GET", "/probe"); st != 200 {
		t.Fatalf("half-open probe: %d %s", st, body)
	}
	reqs := w.requests()
	fail, probe := reqs[0], reqs[len(reqs)-1]
	if probe.path != "/probe" || probe.conn == fail.conn || !strings.EqualFold(probe.connectionHdr, "close") {
		t.Fatalf("probe %+v after failure %+v: want a new connection, closed after it", probe, fail)
	}
	if up.Breaker().State() != "closed" {
		t.Fatalf("after the probe: %s", up.Breaker().State())
	}
}

// TestBreakerClosesWhenUnreachableUpstreamIsReady: a breaker opened because
// nothing listened closes as soon as the upstream's /readyz answers, not
// after the open time (an hour here); one opened by error answers waits it
// out.
func TestBreakerClosesWhenUnreachableUpstreamIsReady(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	up, _ := newTestUpstream(t, "http://"+addr, breaker.Settings{ConsecutiveFailures: 2, OpenTimeout: time.Hour, HalfOpenRequests: 1})
	app := front(up)
	for i := 0; i < 3; i++ {
		if st, body := send(t, app, "POST", "/x"); st != 503 || !strings.Contains(body, "upstream_unavailable") {
			t.Fatalf("dead upstream: %d %s", st, body)
		}
	}
	if up.Breaker().State() != "open" {
		t.Fatal("not open")
	}
	var ready sync.Mutex
	readyz := 503
	w := newWireUpstream(t, addr, func(_, _ int, r *http.Request) int {
		if r.URL.Path == "/readyz" {
			ready.Lock()
			defer ready.Unlock()
			return readyz
		}
		return 200
	})
	// Not ready yet: stays open.
	time.Sleep(3 * recoveryProbeInterval)
	if st, _ := send(t, app, "POST", "/x"); st != 503 || up.Breaker().State() != "open" {
		t.Fatalf("closed before the upstream was ready: %d %s", st, up.Breaker().State())
	}
	ready.Lock()
	readyz = 200
	ready.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for up.Breaker().State() == "open" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st, body := send(t, app, "POST", "/x"); st != 200 {
		t.Fatalf("after readiness: %d %s (breaker %s)", st, body, up.Breaker().State())
	}
	for _, r := range w.requests() {
		if r.path == "/readyz" && !strings.EqualFold(r.connectionHdr, "close") {
			t.Fatalf("readiness probe on a pooled connection: %+v", r)
		}
	}

	// Opened by 5xx answers from an upstream whose /readyz is fine: no
	// early close.
	w2 := newWireUpstream(t, "", func(_, _ int, r *http.Request) int {
		if r.URL.Path == "/readyz" {
			return 200
		}
		return 500
	})
	up2, _ := newTestUpstream(t, w2.url(), breaker.Settings{ConsecutiveFailures: 2, OpenTimeout: time.Hour, HalfOpenRequests: 1})
	app2 := front(up2)
	for i := 0; i < 3; i++ {
		send(t, app2, "GET", "/y")
	}
	time.Sleep(5 * recoveryProbeInterval)
	if up2.Breaker().State() != "open" {
		t.Fatalf("a breaker opened by 500s closed early: %s", up2.Breaker().State())
	}
}

// TestTrackedConnSeesIdleClose: a pooled connection the peer closed while
// idle fails its next request at the first write, with nothing sent.
func TestTrackedConnSeesIdleClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		_, _ = c.Write([]byte("answer"))
		c.Close() // closed while the client's connection is idle
		rest, _ := io.ReadAll(c)
		got <- append(buf[:n:n], rest...)
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := newTrackedConn(raw)
	defer c.Close()
	if _, err := c.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 6)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the FIN arrives
	if n, err := c.Write([]byte("second")); n != 0 || !errors.Is(err, errPeerClosed) {
		t.Fatalf("write on a connection the peer closed: n=%d err=%v", n, err)
	}
	if !c.unanswered() {
		t.Fatal("not marked as an unanswered request on a reused connection")
	}
	if b := <-got; string(b) != "first" {
		t.Fatalf("the peer received %q", b)
	}
}
