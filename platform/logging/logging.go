// Package logging builds the JSON slog logger every service uses. Each line
// carries the service name and, when the context has them, the request id and
// the trace id, so one request can be followed across services.
package logging

import (
	"context"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

type ctxKey struct{}

// WithRequestID returns a context carrying the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

type clientKey struct{}

// WithClientRequestID returns a context carrying the X-Request-Id the
// client chose (kept apart from the platform's own request id).
func WithClientRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, clientKey{}, id)
}

// ClientRequestID returns the client's own request id in ctx, or "".
func ClientRequestID(ctx context.Context) string {
	id, _ := ctx.Value(clientKey{}).(string)
	return id
}

// New returns a JSON logger writing to w at the given level.
func New(w io.Writer, service, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // validated by config; unknown means info
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lv})
	return slog.New(&contextHandler{Handler: h}).With("service", service)
}

// contextHandler adds request_id and trace_id from the record's context.
type contextHandler struct{ slog.Handler }

func (h *contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h *contextHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return &contextHandler{Handler: h.Handler.WithAttrs(a)}
}

func (h *contextHandler) WithGroup(name string) slog.Handler {
	return &contextHandler{Handler: h.Handler.WithGroup(name)}
}
