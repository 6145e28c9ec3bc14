package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
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

func newCache(t *testing.T, o Options) (*Cache, *metrics.Registry, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	o.Now = clk.now
	if o.LoadTimeout == 0 {
		o.LoadTimeout = 5 * time.Second
	}
	reg := metrics.New("stats")
	return New(o, reg), reg, clk
}

func counted(t *testing.T, reg *metrics.Registry, report, result string) float64 {
	t.Helper()
	v, err := reg.Value("stats_cache_requests_total", "report="+report, "result="+result)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTTLAndErrors(t *testing.T) {
	t.Parallel()
	c, reg, clk := newCache(t, Options{TTL: 30 * time.Second, MaxEntries: 10})
	var loads atomic.Int32
	load := func(context.Context) (any, error) { return int(loads.Add(1)), nil }
	ctx := context.Background()
	for i, want := range []struct {
		advance time.Duration
		value   int
		how     string
	}{{0, 1, Miss}, {10 * time.Second, 1, Hit}, {19 * time.Second, 1, Hit}, {time.Second, 2, Miss}, {0, 2, Hit}} {
		clk.add(want.advance)
		v, how, err := c.Get(ctx, "r", "k", load)
		if err != nil || v != want.value || how != want.how {
			t.Errorf("step %d: %v %s %v, want %d %s", i, v, how, err, want.value, want.how)
		}
	}
	boom := errors.New("boom")
	fail := func(context.Context) (any, error) { loads.Add(1); return nil, boom }
	before := loads.Load()
	for i := 0; i < 2; i++ {
		if _, _, err := c.Get(ctx, "r", "bad", fail); !errors.Is(err, boom) {
			t.Fatalf("error not passed on: %v", err)
		}
	}
	if loads.Load()-before != 2 {
		t.Error("an error was cached")
	}
	if counted(t, reg, "r", Hit) != 3 || counted(t, reg, "r", Miss) != 4 {
		t.Errorf("hits %v misses %v", counted(t, reg, "r", Hit), counted(t, reg, "r", Miss))
	}
}

func TestBoundsAndOff(t *testing.T) {
	t.Parallel()
	c, _, _ := newCache(t, Options{TTL: time.Minute, MaxEntries: 2, MaxSize: 3})
	ctx := context.Background()
	val := func(v any) func(context.Context) (any, error) {
		return func(context.Context) (any, error) { return v, nil }
	}
	c.Get(ctx, "r", "a", val(1))
	c.Get(ctx, "r", "b", val(2))
	c.Get(ctx, "r", "a", val(1)) // a is now the most recent
	c.Get(ctx, "r", "c", val(3)) // evicts b
	if _, how, _ := c.Get(ctx, "r", "a", val(1)); how != Hit {
		t.Error("a was evicted, b should have been")
	}
	if _, how, _ := c.Get(ctx, "r", "b", val(2)); how != Miss {
		t.Error("b was kept past MaxEntries")
	}
	if c.Len() != 2 {
		t.Errorf("%d entries, MaxEntries is 2", c.Len())
	}
	c.Get(ctx, "r", "big", val(sized(4)))
	if _, how, _ := c.Get(ctx, "r", "big", val(sized(4))); how != Miss {
		t.Error("an answer larger than MaxSize was kept")
	}
	off, _, _ := newCache(t, Options{TTL: 0, MaxEntries: 10})
	off.Get(ctx, "r", "a", val(1))
	if _, how, _ := off.Get(ctx, "r", "a", val(1)); how != Miss || off.Len() != 0 {
		t.Error("TTL 0 kept an answer")
	}
}

type sized int

func (s sized) Size() int { return int(s) }

// Fifty identical requests at once run one load; the others share it, and
// one that gives up does not stop it for the rest.
func TestSingleflight(t *testing.T) {
	t.Parallel()
	c, reg, _ := newCache(t, Options{TTL: 0, MaxEntries: 10})
	release := make(chan struct{})
	var loads atomic.Int32
	load := func(ctx context.Context) (any, error) {
		loads.Add(1)
		select {
		case <-release:
			return "answer", ctx.Err()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var waiting atomic.Int32
	c.waiting = func() { waiting.Add(1) }
	leaver, leave := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	results := make(chan string, 50)
	for i := 0; i < 50; i++ {
		ctx := context.Background()
		if i == 0 {
			ctx = leaver // the first one starts the load, then leaves
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _, err := c.Get(ctx, "r", "k", load)
			if err != nil {
				results <- "error: " + err.Error()
				return
			}
			results <- v.(string)
		}()
		if i == 0 {
			for loads.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	for waiting.Load() < 50 {
		time.Sleep(time.Millisecond)
	}
	leave()
	for counted(t, reg, "r", Miss) < 1 { // the leaver gave up (it still caused the query)
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(results)
	var answers, canceled int
	for r := range results {
		switch r {
		case "answer":
			answers++
		case "error: context canceled":
			canceled++
		default:
			t.Errorf("unexpected %q", r)
		}
	}
	if loads.Load() != 1 || answers != 49 || canceled != 1 {
		t.Errorf("%d loads, %d answers, %d canceled; want 1, 49, 1", loads.Load(), answers, canceled)
	}
	if m, s := counted(t, reg, "r", Miss), counted(t, reg, "r", Shared); m != 1 || s != 49 {
		t.Errorf("miss %v shared %v, want 1 and 49", m, s)
	}
}
