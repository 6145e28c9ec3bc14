// Package tracing sets up OpenTelemetry: an OTLP/HTTP exporter when
// OTEL_EXPORTER_OTLP_ENDPOINT is set, a no-op tracer otherwise, and W3C
// trace context propagation in both cases, so a traceparent from the ingress
// reaches every service and its SQL even when this hop does not export.
package tracing

import (
	"context"
	"fmt"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Propagator is the W3C trace-context + baggage propagator used everywhere.
var Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Setup installs the tracer provider. endpoint "" keeps tracing off (spans
// are not recorded, but incoming trace ids are still carried onward). The
// returned function flushes and stops the exporter.
func Setup(ctx context.Context, service, endpoint string) (trace.TracerProvider, func(context.Context) error, error) {
	otel.SetTextMapPropagator(Propagator)
	if endpoint == "" {
		tp := noop.NewTracerProvider()
		return tp, func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", service))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp, tp.Shutdown, nil
}

// headerCarrier adapts fasthttp request headers to the propagator.
type headerCarrier struct{ c *fiber.Ctx }

func (h headerCarrier) Get(k string) string { return h.c.Get(k) }
func (h headerCarrier) Set(k, v string)     { h.c.Request().Header.Set(k, v) }
func (h headerCarrier) Keys() []string {
	var keys []string
	h.c.Request().Header.VisitAll(func(k, _ []byte) { keys = append(keys, string(k)) })
	return keys
}

// Middleware extracts the incoming trace context, starts a server span named
// after the route and leaves the span's context in c.UserContext(). When the
// request is proxied onward, its headers are rewritten with the new span so
// the next hop is a child of this one.
func Middleware(tp trace.TracerProvider) fiber.Handler {
	tracer := tp.Tracer("github.com/provcred/platform/tracing")
	return func(c *fiber.Ctx) error {
		ctx := Propagator.Extract(c.UserContext(), headerCarrier{c})
		// Spans outlive the request (batched export) and fasthttp reuses its
		// buffers, so attributes take copies.
		method, path := utils.CopyString(c.Method()), utils.CopyString(c.Path())
		ctx, span := tracer.Start(ctx, method+" "+path, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", method), attribute.String("url.path", path)))
		defer span.End()
		// Only a span that is really recorded may replace the incoming
		// traceparent; with tracing off we pass the caller's on untouched.
		if span.SpanContext().IsValid() {
			Propagator.Inject(ctx, headerCarrier{c})
		}
		c.SetUserContext(ctx)
		err := c.Next()
		span.SetName(method + " " + c.Route().Path)
		status := c.Response().StatusCode()
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if err != nil || status >= 500 {
			span.SetStatus(codes.Error, fmt.Sprint(status))
		}
		return err
	}
}
