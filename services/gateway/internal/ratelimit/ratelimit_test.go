package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/provcred/platform/metrics"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func allow(t *testing.T, l *Local, k string) Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGCRA(t *testing.T) {
	type step struct {
		advance   time.Duration
		n         int // requests made at this instant
		allowed   int // how many of them must pass
		remaining int // Remaining of the last decision
		retry     time.Duration
	}
	tests := []struct {
		name   string
		policy Policy
		steps  []step
	}{
		{"burst equals rate: 200 pass then limited", Policy{Rate: 200, Period: time.Minute},
			[]step{{n: 200, allowed: 200, remaining: 0}, {n: 1, allowed: 0, remaining: 0, retry: 300 * time.Millisecond}}},
		{"refill one per interval", Policy{Rate: 60, Period: time.Minute, Burst: 2},
			[]step{{n: 3, allowed: 2, retry: time.Second}, {advance: 999 * time.Millisecond, n: 1, allowed: 0, retry: time.Millisecond},
				{advance: time.Millisecond, n: 1, allowed: 1, remaining: 0}, {advance: 2 * time.Second, n: 1, allowed: 1, remaining: 1}}},
		{"small burst", Policy{Rate: 600, Period: time.Minute, Burst: 5},
			[]step{{n: 10, allowed: 5, retry: 100 * time.Millisecond}, {advance: 250 * time.Millisecond, n: 10, allowed: 2, retry: 50 * time.Millisecond}}},
		{"full refill after idle", Policy{Rate: 10, Period: time.Minute},
			[]step{{n: 10, allowed: 10}, {advance: time.Minute, n: 11, allowed: 10, retry: 6 * time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			l := NewLocal(Options{Policy: tt.policy, Now: c.now})
			for i, s := range tt.steps {
				c.add(s.advance)
				got := 0
				var last Decision
				for j := 0; j < s.n; j++ {
					last = allow(t, l, "k")
					if last.Allowed {
						got++
					}
				}
				if got != s.allowed {
					t.Fatalf("step %d: %d allowed, want %d", i, got, s.allowed)
				}
				if last.Remaining != s.remaining {
					t.Fatalf("step %d: remaining %d, want %d", i, last.Remaining, s.remaining)
				}
				if !last.Allowed && last.RetryAfter != s.retry {
					t.Fatalf("step %d: retry after %s, want %s", i, last.RetryAfter, s.retry)
				}
				if last.Limit != l.Policy().Burst {
					t.Fatalf("limit %d", last.Limit)
				}
			}
		})
	}
}

func TestKeysAreIndependent(t *testing.T) {
	c := newClock()
	l := NewLocal(Options{Policy: Policy{Rate: 1, Period: time.Minute}, Now: c.now})
	if !allow(t, l, "a").Allowed || allow(t, l, "a").Allowed {
		t.Fatal("a: first must pass, second must not")
	}
	if !allow(t, l, "b").Allowed {
		t.Fatal("b limited by a's use")
	}
}

func TestRetryAfterIsEnough(t *testing.T) {
	c := newClock()
	l := NewLocal(Options{Policy: Policy{Rate: 7, Period: time.Minute}, Now: c.now})
	for allow(t, l, "k").Allowed {
	}
	d := allow(t, l, "k")
	secs := RetryAfterSeconds(d)
	if secs != 9 { // 60s/7 = 8.57s, rounded up
		t.Fatalf("Retry-After = %d, want 9", secs)
	}
	c.add(time.Duration(secs)*time.Second - time.Nanosecond*0)
	if !allow(t, l, "k").Allowed {
		t.Fatal("still limited after waiting Retry-After")
	}
}

func TestHeaders(t *testing.T) {
	p := Policy{Rate: 200, Period: time.Minute, Burst: 200}
	if got := p.HeaderPolicy(); got != `"default";q=200;w=60` {
		t.Fatalf("policy header %q", got)
	}
	d := Decision{Remaining: 3, ResetAfter: 1500 * time.Millisecond}
	if got := Header(d); got != `"default";r=3;t=2` {
		t.Fatalf("header %q", got)
	}
	if RetryAfterSeconds(Decision{RetryAfter: time.Millisecond}) != 1 {
		t.Fatal("Retry-After must be at least 1")
	}
}

func TestEvictionBoundsMemory(t *testing.T) {
	c := newClock()
	l := NewLocal(Options{Policy: Policy{Rate: 60, Period: time.Minute}, MaxKeys: 320, Now: c.now})
	for i := 0; i < 5000; i++ {
		allow(t, l, fmt.Sprintf("k%d", i))
	}
	if n := l.Keys(); n > 320 {
		t.Fatalf("%d keys tracked, max 320", n)
	}
	// Idle keys (allowance full again) are dropped by the next sweep.
	c.add(2 * time.Second)
	allow(t, l, "fresh")
	c.add(2 * time.Second)
	for i := 0; i < shardCount*4; i++ {
		allow(t, l, fmt.Sprintf("z%d", i))
	}
	if n := l.Keys(); n > shardCount*4+1 {
		t.Fatalf("idle keys not swept: %d", n)
	}
}

func TestMetrics(t *testing.T) {
	m := metrics.New("test")
	l := NewLocal(Options{Policy: Policy{Rate: 2, Period: time.Minute}, Metrics: m, Now: newClock().now})
	for i := 0; i < 3; i++ {
		allow(t, l, "k")
	}
	a, _ := m.Value("ratelimit_decisions_total", "decision=allowed")
	b, _ := m.Value("ratelimit_decisions_total", "decision=limited")
	if a != 2 || b != 1 {
		t.Fatalf("allowed=%v limited=%v", a, b)
	}
}

func TestConcurrentUse(t *testing.T) {
	l := NewLocal(Options{Policy: Policy{Rate: 100, Period: time.Hour}, Now: newClock().now})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if d, _ := l.Allow(context.Background(), "shared"); d.Allowed {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if ok != 100 {
		t.Fatalf("%d allowed under contention, want exactly 100", ok)
	}
}

func BenchmarkLocalAllow(b *testing.B) {
	l := NewLocal(Options{Policy: Policy{Rate: 1 << 30, Period: time.Minute}})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%d", i)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_, _ = l.Allow(context.Background(), keys[i&1023])
			i++
		}
	})
}
