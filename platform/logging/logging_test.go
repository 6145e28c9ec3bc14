package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestContextFields(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "credential", "info")
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(WithRequestID(context.Background(), "req-1"),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))

	log.InfoContext(ctx, "hello", "k", "v")
	log.DebugContext(ctx, "hidden")

	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil {
		t.Fatalf("want exactly one JSON line, got %q: %v", buf.String(), err)
	}
	want := map[string]string{"service": "credential", "request_id": "req-1",
		"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "msg": "hello", "k": "v"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %s", k, line[k], v)
		}
	}
}

func TestNoContextFields(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, "gw", "debug").With("a", 1).Debug("x")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if _, ok := line["request_id"]; ok {
		t.Fatal("request_id must be absent without a request")
	}
	if line["a"] != float64(1) {
		t.Fatalf("With attrs lost: %v", line)
	}
}
