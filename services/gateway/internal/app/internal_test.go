package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/platform/config"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/internalauth/internalauthtest"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/server"

	"github.com/provcred/gateway/internal/auth"
	gwconfig "github.com/provcred/gateway/internal/config"
	"github.com/provcred/gateway/internal/routes"
)

// verifyingUpstream is a real platform server that verifies internal
// signatures with k, as every service does, and echoes the identity it was
// given on any route.
func verifyingUpstream(t *testing.T, name string, k *internalauth.Keyring) string {
	t.Helper()
	s := server.New(server.Options{Service: name, Logger: slog.New(slog.DiscardHandler), Metrics: metrics.New(name),
		BodyLimit: 1 << 20, StreamPaths: []string{"/providers/import", "/admin/imports", "/batch-credential"}, Internal: k})
	s.App.All("/*", func(c *fiber.Ctx) error {
		n, _ := io.Copy(io.Discard, server.BodyStream(c))
		id := server.Identity(c)
		return c.JSON(fiber.Map{"upstream": name, "actor": id.Actor, "role": id.Role, "request_id": server.RequestID(c), "bytes": n})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

// signedGateway runs a gateway signing with signer in front of three
// services verifying with verifier; it returns its URL and an admin key.
func signedGateway(t *testing.T, signer, verifier *internalauth.Keyring) (string, string) {
	t.Helper()
	secret, entry, err := auth.Generate("admin-1", auth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse[gwconfig.Config](map[string]string{
		"CREDENTIAL_URL": verifyingUpstream(t, "credential", verifier), "STATS_URL": verifyingUpstream(t, "stats", verifier),
		"CHAT_URL": verifyingUpstream(t, "chat", verifier), "API_KEYS": entry, "RATE_LIMIT_REQUESTS_PER_MINUTE": "100000",
		"HEALTH_UPSTREAM_TIMEOUT": "2s",
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(&cfg, Deps{Signer: signer})
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
	return "http://" + ln.Addr().String(), secret
}

// concrete turns a route pattern into a path that matches it, with
// escapes and a query, so the signed target is not the trivial one.
func concrete(p string) string {
	p = strings.ReplaceAll(p, ":provider_id", "provider_%C3%A9")
	p = strings.ReplaceAll(p, ":batch_id", "batch_1")
	p = strings.ReplaceAll(p, "*", "leie")
	return p + "?limit=5&q=a%20b&x=%2F"
}

// ours: the signed request id is the gateway's own (random, 36 characters),
// never the X-Request-Id the client sent ("rid-42").
func ours(id any) bool { s, _ := id.(string); return len(s) == 36 && s != "rid-42" }

// TestSignedForwarding: on every route of the table, and on the health
// probes, what the gateway passes on verifies at a real service, with the
// authenticated key as the actor and whatever identity the client claimed
// dropped; a gateway with another secret is refused on every one, and
// answers its client 503 upstream_unavailable, never the service's 401.
func TestSignedForwarding(t *testing.T) {
	k := internalauthtest.Keyring(t, "gw-1:0123456789abcdef0123456789abcdef")
	url, admin := signedGateway(t, k, k)
	other := internalauthtest.Keyring(t, "gw-1:"+strings.Repeat("z", 40))
	badURL, badAdmin := signedGateway(t, other, k)
	call := func(base, key, method, path string) (int, map[string]any) {
		t.Helper()
		var body io.Reader
		if method != "GET" && method != "HEAD" {
			body = strings.NewReader("npi,name\n1,a\n")
		}
		req, _ := http.NewRequest(method, base+path, body)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("X-Actor-Id", "ceo")
		req.Header.Set("X-Actor-Role", "admin")
		req.Header.Set("X-Request-Id", "rid-42")
		req.Header.Set(internalauth.HeaderSignature, "v1,gw-1,AAAA")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	for _, rt := range routes.Table {
		for _, m := range rt.Methods {
			path := concrete(rt.Path)
			st, out := call(url, admin, m, path)
			if m == "HEAD" {
				if st != 200 {
					t.Errorf("%s %s: %d", m, path, st)
				}
			} else if st != 200 || out["upstream"] != rt.Upstream || out["actor"] != "admin-1" || out["role"] != "admin" || !ours(out["request_id"]) {
				t.Errorf("%s %s: %d %v", m, path, st, out)
			}
			// Refused by the service, answered as an unavailable service:
			// the client's key is not at fault.
			if st, out := call(badURL, badAdmin, m, path); st != 503 || (m != "HEAD" && out["code"] != "upstream_unavailable") {
				t.Errorf("%s %s with another secret: %d %v", m, path, st, out)
			}
		}
	}
	// The aggregated health asks the services' signed /health and
	// /health/concurrency.
	for _, p := range []string{"/health", "/health/concurrency"} {
		if st, out := call(url, "", "GET", p); st != 200 || out["status"] != "healthy" {
			t.Errorf("%s: %d %v", p, st, out)
		}
		if _, out := call(badURL, "", "GET", p); out["status"] == "healthy" {
			t.Errorf("%s through a gateway with another secret: %v", p, out)
		}
	}
}
