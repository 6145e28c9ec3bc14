package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/platform/pgtest"
)

func TestMiddlewareLabelsByRouteTemplate(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

// On one keep-alive connection a POST then a GET must leave two intact
// method labels (fasthttp reuses the buffer the method string points into).
func TestMethodLabelSurvivesBufferReuse(t *testing.T) {
	t.Parallel()
	m := New("svc")
	app := fiber.New()
	app.Use(m.Middleware())
	app.Post("/x", func(c *fiber.Ctx) error { return c.SendString("p") })
	app.Get("/x", func(c *fiber.Ctx) error { return c.SendString("g") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	defer app.Shutdown()
	client := &http.Client{}
	for _, method := range []string{"POST", "GET", "POST", "GET"} {
		req, _ := http.NewRequest(method, "http://"+ln.Addr().String()+"/x", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if _, err := m.Gatherer().Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, method := range []string{"GET", "POST"} {
		if v, _ := m.Value("http_server_requests_total", "method="+method, "route=/x"); v != 2 {
			t.Errorf("%s = %v, want 2", method, v)
		}
	}
}
