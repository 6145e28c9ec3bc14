package health

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fake struct {
	status int
	body   string
	err    error
	delay  time.Duration
	calls  atomic.Int64
}

func (f *fake) Get(ctx context.Context, path string, timeout time.Duration) (int, []byte, error) {
	f.calls.Add(1)
	time.Sleep(f.delay)
	return f.status, []byte(f.body), f.err
}

func TestProbe(t *testing.T) {
	tests := []struct {
		name   string
		target *fake
		status string
		ok     bool
	}{
		{"healthy", &fake{status: 200, body: `{"status":"healthy","x":1}`}, "healthy", true},
		{"ready", &fake{status: 200, body: `{"status":"ready"}`}, "ready", true},
		{"down", &fake{err: errors.New("dial tcp: connection refused")}, Unreachable, false},
		{"unhealthy 503", &fake{status: 503, body: `{"status":"unhealthy"}`}, "unhealthy", false},
		{"503 without status", &fake{status: 503, body: `{}`}, "unhealthy", false},
		{"not JSON", &fake{status: 200, body: `<html>`}, "invalid_response", false},
		{"draining", &fake{status: 200, body: `{"status":"draining"}`}, "draining", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := Probe(context.Background(), map[string]Target{"a": tt.target, "b": &fake{status: 200, body: `{"status":"healthy"}`}}, "/health", time.Second)
			a := r["a"].(map[string]any)
			if a["status"] != tt.status || ok != tt.ok {
				t.Fatalf("got %v ok=%v", a, ok)
			}
			if Short(r)["b"].(map[string]any)["status"] != "healthy" {
				t.Fatalf("short %v", Short(r))
			}
		})
	}
}

func TestProberSharesAndCaches(t *testing.T) {
	f := &fake{status: 200, body: `{"status":"healthy"}`, delay: 50 * time.Millisecond}
	var mu sync.Mutex
	now := time.Unix(0, 0)
	p := &Prober{Targets: map[string]Target{"a": f}, Path: "/health", Timeout: time.Second, TTL: time.Second,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok := p.Probe(context.Background()); !ok {
				t.Error("not ok")
			}
		}()
	}
	wg.Wait()
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("20 concurrent callers made %d probes, want 1", n)
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	p.Probe(context.Background())
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("stale result reused: %d probes", n)
	}
}
