package tools

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/internalauth/internalauthtest"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/server"
)

// TestToolCallsAreSigned: chat calls the services as its caller, signed as
// the gateway signs, and a real service verifying the signature accepts
// them with the caller's identity; unsigned or wrongly signed, it refuses.
func TestToolCallsAreSigned(t *testing.T) {
	t.Parallel()
	k := internalauthtest.Keyring(t, "gw:0123456789abcdef0123456789abcdef")
	s := server.New(server.Options{Service: "credential", Logger: slog.New(slog.DiscardHandler), Metrics: metrics.New("credential"),
		BodyLimit: 1 << 20, Internal: k})
	s.App.Get("/*", func(c *fiber.Ctx) error {
		id := server.Identity(c)
		return c.JSON(fiber.Map{"actor": id.Actor, "role": id.Role, "request_id": id.RequestID, "path": c.OriginalURL()})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + ln.Addr().String()

	client := func(signer *internalauth.Keyring) *Client {
		c, err := NewClient(ClientOptions{CredentialURL: base, StatsURL: base, Timeout: 5 * time.Second,
			Metrics: metrics.New("chat"), Breaker: breaker.Settings{ConsecutiveFailures: 100, OpenTimeout: 10 * time.Second, HalfOpenRequests: 1}, Signer: signer})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	caller := Caller{Actor: "key_ops", Role: "operator", RequestID: "rid-7"}
	cases := []struct {
		name     string
		signer   *internalauth.Keyring
		refused  bool
		route    string
		query    url.Values
		segments []string
	}{
		{name: "signed provider", signer: k, route: "provider", segments: []string{"provider_001"}},
		{name: "signed list with a query", signer: k, route: "providers", query: url.Values{"q": {"Ada Lovelace"}, "limit": {"5"}}},
		{name: "signed stats", signer: k, route: "stats_summary"},
		{name: "unsigned", signer: nil, refused: true, route: "provider", segments: []string{"provider_001"}},
		{name: "another secret", signer: internalauthtest.Keyring(t, "gw:"+strings.Repeat("q", 32)), refused: true, route: "stats_summary"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out map[string]any
			err := client(tc.signer).get(context.Background(), caller, tc.route, tc.query, &out, tc.segments...)
			if tc.refused {
				var ae *apiError
				if !errors.As(err, &ae) || ae.Status != 401 || ae.Code != internalauth.Code {
					t.Fatalf("err %v, want 401 %s", err, internalauth.Code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out["actor"] != "key_ops" || out["role"] != "operator" || out["request_id"] != "rid-7" {
				t.Fatalf("the service saw %v", out)
			}
		})
	}
}
