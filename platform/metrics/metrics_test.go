package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/platform/pgtest"
)

func TestMiddlewareLabelsByRouteTemplate(t *testing.T) {
	m := New("credential")
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		return c.Status(fiber.StatusNotFound).SendString("nf")
	}})
	app.Use(m.Middleware())
	app.Get("/providers/:id", func(c *fiber.Ctx) error {
		if c.Params("id") == "missing" {
			return fiber.ErrNotFound
		}
		return c.SendString("ok")
	})
	for _, p := range []string{"/providers/a", "/providers/b", "/providers/missing", "/nope"} {
		if _, err := app.Test(httptest.NewRequest("GET", p, nil)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		labels []string
		want   float64
	}{
		{[]string{"route=/providers/:id", "code=200", "method=GET", "service=credential"}, 2},
		{[]string{"route=/providers/:id", "code=404"}, 1},
		{[]string{"route=unmatched", "code=404"}, 1},
	}
	for _, tt := range tests {
		if v, _ := m.Value("http_server_requests_total", tt.labels...); v != tt.want {
			t.Errorf("%v = %v, want %v", tt.labels, v, tt.want)
		}
	}
	if v, _ := m.Value("http_server_request_duration_seconds", "route=/providers/:id"); v != 3 {
		t.Errorf("histogram count = %v", v)
	}
	if v, _ := m.Value("http_server_inflight_requests"); v != 0 {
		t.Errorf("inflight = %v", v)
	}
}

func TestPoolCollectorAndHandler(t *testing.T) {
	pool, _ := pgtest.NewPool(t, "")
	if err := pool.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := New("stats")
	m.RegisterPool("stats", pool)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{`pgxpool_total_conns{pool="stats",service="stats"} 1`, `pgxpool_acquire_count_total{pool="stats",service="stats"}`, "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}
}
