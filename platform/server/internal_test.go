package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/internalauth/internalauthtest"
)

const testSecret = "0123456789abcdef0123456789abcdef"

// signedServer is a server verifying internal calls, with routes that
// count every time a handler runs.
func signedServer(t *testing.T, k *internalauth.Keyring) (*Server, *atomic.Int64) {
	t.Helper()
	var logs bytes.Buffer
	var ran atomic.Int64
	s := newTestServer(t, &logs, func(o *Options) {
		o.Internal = k
		o.StreamPaths = []string{"/upload"}
	})
	s.App.Delete("/things/:id", func(c *fiber.Ctx) error { ran.Add(1); return c.SendString("deleted by " + Actor(c)) })
	s.App.Post("/upload", func(c *fiber.Ctx) error {
		ran.Add(1)
		b, _ := io.ReadAll(BodyStream(c))
		return c.SendString(fmt.Sprintf("%d bytes by %s", len(b), Actor(c)))
	})
	s.App.Get("/who", func(c *fiber.Ctx) error {
		ran.Add(1)
		id := Identity(c)
		return c.SendString(id.Actor + "|" + id.Role + "|" + RequestID(c))
	})
	return s, &ran
}

// sign sets the headers the gateway would send for (method, target) on req.
func sign(t *testing.T, k *internalauth.Keyring, req *http.Request, method, target string, id internalauth.Identity) {
	t.Helper()
	ts, sig, err := k.Sign(method, target, id)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(HeaderActor, id.Actor)
	req.Header.Set(HeaderRole, id.Role)
	req.Header.Set(HeaderRequestID, id.RequestID)
	req.Header.Set(internalauth.HeaderTimestamp, ts)
	req.Header.Set(internalauth.HeaderSignature, sig)
}

// TestInternalCallsAreVerified: every route but the open ones refuses a
// call that is unsigned, forged, stale, or signed for another route,
// method or identity, with 401 unauthenticated_internal before its
// handler runs; a signed call runs with the signed identity.
func TestInternalCallsAreVerified(t *testing.T) {
	t.Parallel()
	k := internalauthtest.Keyring(t, "gw:"+testSecret)
	s, ran := signedServer(t, k)
	admin := internalauth.Identity{Actor: "key_admin", Role: "admin", RequestID: "rid-1"}
	routes := []struct{ method, target string }{
		{"DELETE", "/things/p1"}, {"POST", "/upload?file=a.csv"}, {"GET", "/who"}, {"POST", "/echo"},
		{"GET", "/health"}, {"GET", "/health/concurrency"}, {"GET", "/LIVEZ"}, {"GET", "/nowhere"},
	}
	staleKeyring := internalauthtest.Keyring(t, "gw:"+testSecret)
	staleKeyring.Now = func() time.Time { return time.Now().Add(-45 * time.Second) }
	forger := internalauthtest.Keyring(t, "gw:"+strings.Repeat("x", 32))
	attacks := []struct {
		name  string
		build func(req *http.Request, method, target string)
	}{
		{"unsigned", func(req *http.Request, _, _ string) {
			req.Header.Set(HeaderActor, "ceo")
			req.Header.Set(HeaderRole, "admin")
		}},
		{"forged secret", func(req *http.Request, m, tg string) { sign(t, forger, req, m, tg, admin) }},
		{"stale", func(req *http.Request, m, tg string) { sign(t, staleKeyring, req, m, tg, admin) }},
		{"another route's signature", func(req *http.Request, m, _ string) { sign(t, k, req, m, "/things/other", admin) }},
		{"another method's signature", func(req *http.Request, m, tg string) {
			sign(t, k, req, map[bool]string{true: "GET", false: "PUT"}[m != "GET"], tg, admin)
		}},
		{"actor rewritten after signing", func(req *http.Request, m, tg string) {
			sign(t, k, req, m, tg, internalauth.Identity{Actor: "key_reader", Role: "reader", RequestID: "rid-1"})
			req.Header.Set(HeaderActor, "ceo")
		}},
		{"role raised after signing", func(req *http.Request, m, tg string) {
			sign(t, k, req, m, tg, internalauth.Identity{Actor: "key_reader", Role: "reader", RequestID: "rid-1"})
			req.Header.Set(HeaderRole, "admin")
		}},
	}
	for _, rt := range routes {
		for _, a := range attacks {
			t.Run(rt.method+" "+rt.target+" "+a.name, func(t *testing.T) {
				before := ran.Load()
				req := httptest.NewRequest(rt.method, rt.target, strings.NewReader("a,b\n"))
				a.build(req, rt.method, rt.target)
				resp, err := s.App.Test(req, 5000)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 401 || !bytes.Contains(b, []byte(`"code":"unauthenticated_internal"`)) {
					t.Fatalf("%d %s", resp.StatusCode, b)
				}
				if !resp.Close {
					t.Errorf("a refused call leaves its connection open")
				}
				if resp.Header.Get(internalauth.HeaderRefused) == "" {
					t.Errorf("a refusal without %s: the gateway could not tell it from the key's 401", internalauth.HeaderRefused)
				}
				if ran.Load() != before {
					t.Fatal("the handler ran")
				}
			})
		}
	}
	// Signed for itself: runs, with the signed identity.
	for _, rt := range []struct{ method, target, want string }{
		{"DELETE", "/things/p1", "deleted by key_admin"},
		{"POST", "/upload?file=a.csv", "4 bytes by key_admin"},
		{"GET", "/who", "key_admin|admin|rid-1"},
		{"GET", "/health", "healthy"},
	} {
		req := httptest.NewRequest(rt.method, rt.target, strings.NewReader("a,b\n"))
		sign(t, k, req, rt.method, rt.target, admin)
		resp, err := s.App.Test(req, 5000)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), rt.want) {
			t.Errorf("signed %s %s: %d %s", rt.method, rt.target, resp.StatusCode, b)
		}
	}
}

func TestOpenPathsNeedNoSignature(t *testing.T) {
	t.Parallel()
	s, _ := signedServer(t, internalauthtest.Keyring(t, "gw:"+testSecret))
	for _, p := range []string{"/livez", "/readyz", "/metrics", "/readyz?verbose=1"} {
		resp, err := s.App.Test(httptest.NewRequest("GET", p, nil), 5000)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

// TestRotationOnTheServer: a call signed with the old key is accepted while
// both keys are configured, and refused once the old one is removed.
func TestRotationOnTheServer(t *testing.T) {
	t.Parallel()
	old := "old:" + testSecret
	next := "new:" + strings.Repeat("n", 40)
	oldSigner := internalauthtest.Keyring(t, old)
	verifier := internalauthtest.Keyring(t, next+","+old)
	s, _ := signedServer(t, verifier)
	call := func() int {
		req := httptest.NewRequest("GET", "/who", nil)
		sign(t, oldSigner, req, "GET", "/who", internalauth.Identity{Actor: "a"})
		resp, err := s.App.Test(req, 5000)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := call(); st != 200 {
		t.Fatalf("old key with both configured: %d", st)
	}
	keys, _ := internalauth.ParseKeys(next)
	if err := verifier.SetKeys(keys); err != nil {
		t.Fatal(err)
	}
	if st := call(); st != 401 {
		t.Fatalf("old key after its removal: %d", st)
	}
}

// TestSignedCallsOverTheWire: the target a Go client puts on the wire
// (escapes, query) is the one the server checks; a refused upload's body
// never runs as a request of its own.
func TestSignedCallsOverTheWire(t *testing.T) {
	t.Parallel()
	k := internalauthtest.Keyring(t, "gw:"+testSecret)
	s, ran := signedServer(t, k)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.App.Listener(ln) }()
	t.Cleanup(func() { _ = s.App.Shutdown() })
	base := "http://" + ln.Addr().String()
	c := &http.Client{Transport: &internalauth.Transport{Keyring: k, Identity: internalauth.Identity{Actor: "key_ops", Role: "operator"}}}
	for _, target := range []string{"/who", "/who?q=a%20b&x=%2F&y=%C3%A9", "/things/a%2Fb?x=1"} {
		method := "GET"
		if strings.HasPrefix(target, "/things") {
			method = "DELETE"
		}
		req, _ := http.NewRequest(method, base+target, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "key_ops") {
			t.Errorf("%s %s: %d %s", method, target, resp.StatusCode, b)
		}
	}

	before := ran.Load()
	smuggled := "GET /who HTTP/1.1\r\nHost: x\r\nX-Actor-Id: evil\r\n\r\n"
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	rest, _ := io.ReadAll(br)
	if resp.StatusCode != 401 || len(bytes.TrimSpace(rest)) > 0 || ran.Load() != before {
		t.Fatalf("unsigned upload: %d, then %q", resp.StatusCode, rest)
	}
}
