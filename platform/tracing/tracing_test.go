package tracing

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestMiddlewareContinuesIncomingTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	app := fiber.New()
	app.Use(Middleware(tp))
	var outgoing string
	var inCtx trace.SpanContext
	app.Get("/providers/:id", func(c *fiber.Ctx) error {
		inCtx = trace.SpanContextFromContext(c.UserContext())
		// What a proxy would send onward.
		outgoing = string(c.Request().Header.Peek("traceparent"))
		return c.SendString("ok")
	})
	req := httptest.NewRequest("GET", "/providers/p1", nil)
	req.Header.Set("traceparent", incoming)
	if _, err := app.Test(req); err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("spans = %d", len(spans))
	}
	s := spans[0]
	if s.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("span not a child of the incoming trace: trace %s parent %s", s.SpanContext().TraceID(), s.Parent().SpanID())
	}
	if s.Name() != "GET /providers/:id" {
		t.Fatalf("span name %q", s.Name())
	}
	if inCtx.SpanID() != s.SpanContext().SpanID() {
		t.Fatal("handler context does not carry the server span")
	}
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + s.SpanContext().SpanID().String() + "-01"
	if outgoing != want {
		t.Fatalf("onward traceparent %q, want %q", outgoing, want)
	}
}

func TestTracingOffStillPropagates(t *testing.T) {
	tp, shutdown, err := Setup(context.Background(), "svc", "")
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	app := fiber.New()
	app.Use(Middleware(tp))
	var got trace.SpanContext
	var outgoing string
	app.Get("/", func(c *fiber.Ctx) error {
		got = trace.SpanContextFromContext(c.UserContext())
		outgoing = string(c.Request().Header.Peek("traceparent"))
		return nil
	})
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("traceparent", incoming)
	if _, err := app.Test(req); err != nil {
		t.Fatal(err)
	}
	if got.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("trace id lost with tracing off: %v", got.TraceID())
	}
	if outgoing != incoming {
		t.Fatalf("traceparent changed with tracing off: %q", outgoing)
	}
}
