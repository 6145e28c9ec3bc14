package ratelimit

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func allow(t *testing.T, l Limiter, p Policy, k string) Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), p, k)
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
			[]step{{n: 200, allowed: 200, remaining: 0}, {n: 1, allowed: 0, remaining: 0, retry: 150 * time.Millisecond}}},
		{"refill one per interval", Policy{Rate: 60, Period: time.Minute, Burst: 2},
			// A request may come half an interval before its turn.
			[]step{{n: 3, allowed: 2, retry: 500 * time.Millisecond}, {advance: 499 * time.Millisecond, n: 1, allowed: 0, retry: time.Millisecond},
				{advance: time.Millisecond, n: 1, allowed: 1, remaining: 0}, {advance: 2 * time.Second, n: 1, allowed: 1, remaining: 1}}},
		{"small burst", Policy{Rate: 600, Period: time.Minute, Burst: 5},
			[]step{{n: 10, allowed: 5, retry: 50 * time.Millisecond}, {advance: 250 * time.Millisecond, n: 10, allowed: 3, retry: 100 * time.Millisecond}}},
		{"full refill after idle", Policy{Rate: 10, Period: time.Minute},
			[]step{{n: 10, allowed: 10}, {advance: time.Minute, n: 11, allowed: 10, retry: 3 * time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			l := NewLocal(Options{MaxKeys: 100_000, Now: c.now})
			tt.policy.Name = "default"
			if tt.policy.Burst == 0 {
				tt.policy.Burst = tt.policy.Rate
			}
			for i, s := range tt.steps {
				c.add(s.advance)
				got := 0
				var last Decision
				for j := 0; j < s.n; j++ {
					last = allow(t, l, tt.policy, "k")
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
				if last.Limit != tt.policy.Burst {
					t.Fatalf("limit %d", last.Limit)
				}
			}
		})
	}
}

func TestKeysAreIndependent(t *testing.T) {
	c := newClock()
	l := NewLocal(Options{MaxKeys: 100_000, Now: c.now})
	p := Policy{Name: "default", Rate: 1, Period: time.Minute, Burst: 1}
	if !allow(t, l, p, "a").Allowed || allow(t, l, p, "a").Allowed {
		t.Fatal("a: first must pass, second must not")
	}
	if !allow(t, l, p, "b").Allowed {
		t.Fatal("b limited by a's use")
	}
	// The same client under another policy (route group) has its own allowance.
	chat := Policy{Name: "chat", Rate: 1, Period: time.Minute, Burst: 1}
	if !allow(t, l, chat, "a").Allowed {
		t.Fatal("a's chat allowance spent by its default use")
	}
}

func TestRetryAfterIsEnough(t *testing.T) {
	c := newClock()
	l := NewLocal(Options{MaxKeys: 100_000, Now: c.now})
	p := Policy{Name: "default", Rate: 7, Period: time.Minute, Burst: 7}
	for allow(t, l, p, "k").Allowed {
	}
	d := allow(t, l, p, "k")
	secs := RetryAfterSeconds(d)
	if secs != 5 { // half of 60s/7 = 4.29s, rounded up
		t.Fatalf("Retry-After = %d, want 5", secs)
	}
	c.add(time.Duration(secs)*time.Second - time.Nanosecond*0)
	if !allow(t, l, p, "k").Allowed {
		t.Fatal("still limited after waiting Retry-After")
	}
}

func TestHeaders(t *testing.T) {
	p := Policy{Name: "default", Rate: 200, Period: time.Minute, Burst: 200}
	if got := p.HeaderPolicy(); got != `"default";q=200;w=60` {
		t.Fatalf("policy header %q", got)
	}
	if got := (Policy{Name: "chat", Rate: 20, Period: 90 * time.Second}).HeaderPolicy(); got != `"chat";q=20;w=90` {
		t.Fatalf("policy header %q", got)
	}
	d := Decision{Remaining: 3, ResetAfter: 1500 * time.Millisecond}
	if got := p.Header(d); got != `"default";r=3;t=2` {
		t.Fatalf("header %q", got)
	}
	if RetryAfterSeconds(Decision{RetryAfter: time.Millisecond}) != 1 {
		t.Fatal("Retry-After must be at least 1")
	}
}

func TestEvictionBoundsMemory(t *testing.T) {
	c := newClock()
	l := NewLocal(Options{MaxKeys: 320, Now: c.now})
	p := Policy{Name: "default", Rate: 60, Period: time.Minute, Burst: 60}
	for i := 0; i < 5000; i++ {
		allow(t, l, p, fmt.Sprintf("k%d", i))
	}
	if n := l.Keys(); n > 320 {
		t.Fatalf("%d keys tracked, max 320", n)
	}
	// Idle keys (allowance full again) are dropped by the next sweep.
	c.add(2 * time.Second)
	allow(t, l, p, "fresh")
	c.add(2 * time.Second)
	for i := 0; i < shardCount*4; i++ {
		allow(t, l, p, fmt.Sprintf("z%d", i))
	}
	if n := l.Keys(); n > shardCount*4+1 {
		t.Fatalf("idle keys not swept: %d", n)
	}
}

// Issue 14: evicting a key must never hand an exhausted client a fresh
// allowance. A flood of new keys (new addresses) against a full table
// evicts idle and partly used keys, never a throttled one.
func TestEvictionNeverResetsAThrottledClient(t *testing.T) {
	c := newClock()
	l := NewLocal(Options{MaxKeys: shardCount * 4, Now: c.now})
	p := Policy{Name: "default", Rate: 10, Period: time.Hour, Burst: 3}
	var throttled []string
	for i := 0; i < shardCount*2; i++ {
		k := fmt.Sprintf("abuser%d", i)
		for allow(t, l, p, k).Allowed {
		}
		throttled = append(throttled, k)
	}
	for i := 0; i < 20_000; i++ {
		allow(t, l, p, fmt.Sprintf("new%d", i))
		if i%1000 == 0 {
			c.add(time.Millisecond)
		}
	}
	if n := l.Keys(); n > shardCount*4 {
		t.Fatalf("%d keys tracked, bound %d", n, shardCount*4)
	}
	for _, k := range throttled {
		if d := allow(t, l, p, k); d.Allowed {
			t.Fatalf("%s was throttled, and eviction gave it a new allowance", k)
		}
	}
	// A table full of throttled keys still answers a new client (as fresh),
	// without growing.
	full := NewLocal(Options{MaxKeys: shardCount, Now: c.now})
	for i := 0; i < shardCount*8; i++ {
		k := fmt.Sprintf("t%d", i)
		for j := 0; j <= p.Burst; j++ { // untracked keys pass every time
			allow(t, full, p, k)
		}
	}
	if n := full.Keys(); n > shardCount {
		t.Fatalf("%d keys, bound %d", n, shardCount)
	}
	if !allow(t, full, p, "newcomer").Allowed {
		t.Fatal("a new client refused because the table is full")
	}
}

// burstCases are the policies both limiters are held to.
var burstCases = []Policy{
	{Rate: 100, Period: time.Second, Burst: 1},
	{Rate: 100, Period: time.Second, Burst: 100},
	{Rate: 100, Period: time.Second, Burst: 20},
	{Rate: 10, Period: time.Second, Burst: 50},
	{Rate: 7, Period: time.Minute, Burst: 3},
}

// Burst semantics: with rate R per period and burst B, a fresh client gets
// exactly B at once and one more per T = period/R after; over a span e of
// steady demand, B + floor(e/T) in all. No more (redis_rate over-admits
// when burst != rate), no less.
func TestBurstIsExact(t *testing.T) {
	for _, p := range burstCases {
		t.Run(p.String(), func(t *testing.T) {
			p.Name = "default"
			c := newClock()
			l := NewLocal(Options{MaxKeys: 100_000, Now: c.now})
			n := 0
			for i := 0; i < p.Burst*3+3; i++ {
				if allow(t, l, p, "k").Allowed {
					n++
				}
			}
			if n != p.Burst {
				t.Fatalf("at once: %d allowed, want burst %d", n, p.Burst)
			}
			// Then twice the rate for 50 T.
			step := p.interval()/2 + 1 // T/2 rounds down; land just past 50 T
			for i := 0; i < 100; i++ {
				c.add(step)
				if allow(t, l, p, "k").Allowed {
					n++
				}
			}
			if want := p.Burst + 50; n != want {
				t.Fatalf("after 50 T: %d allowed, want %d", n, want)
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		in   string
		want Policy
		err  bool
	}{
		{"20/1m,burst=5", Policy{Rate: 20, Period: time.Minute, Burst: 5}, false},
		{"20/m", Policy{Rate: 20, Period: time.Minute, Burst: 20}, false},
		{" 1000 / 1h , burst = 10 ", Policy{Rate: 1000, Period: time.Hour, Burst: 10}, false},
		{"5/90s", Policy{Rate: 5, Period: 90 * time.Second, Burst: 5}, false},
		{"20", Policy{}, true},
		{"0/1m", Policy{}, true},
		{"x/1m", Policy{}, true},
		{"5/soon", Policy{}, true},
		{"5/1m,burst=0", Policy{}, true},
		{"5/1m,bust=3", Policy{}, true},
		{"5000000/1s", Policy{}, true},
	}
	for _, tt := range tests {
		got, err := ParsePolicy("chat", tt.in)
		if (err != nil) != tt.err {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		tt.want.Name = "chat"
		if !tt.err && got != tt.want {
			t.Errorf("%q: %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestSharedDividesByReplicas(t *testing.T) {
	p := Policy{Name: "default", Rate: 200, Period: time.Minute, Burst: 50}
	s := p.Shared(3)
	if s.Burst != 17 || s.interval() != 3*p.interval() {
		t.Fatalf("shared %+v", s)
	}
	if p.Shared(1) != p || p.Shared(0) != p {
		t.Fatal("one replica keeps the policy")
	}
	if (Policy{Rate: 1, Period: time.Second, Burst: 1}).Shared(5).Burst != 1 {
		t.Fatal("burst at least 1")
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"::1", "::/64"},
	}
	for _, tt := range tests {
		if got := ClientKey(netip.MustParseAddr(tt.in)); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestOverCacheIsBounded(t *testing.T) {
	c := newOverCache(cacheShards * 2)
	now := time.Unix(1000, 0)
	for i := 0; i < 1000; i++ {
		c.put(fmt.Sprint(i), now.Add(time.Minute), now)
	}
	if n := c.len(); n > cacheShards*2 {
		t.Fatalf("%d entries, bound %d", n, cacheShards*2)
	}
	c.put("gone", now.Add(-time.Second), now)
	if _, ok := c.get("gone", now); ok {
		t.Fatal("an expired retry time cached")
	}
	// Once their retry times pass, entries make room for new ones.
	later := now.Add(2 * time.Minute)
	c.put("new", later.Add(time.Second), later)
	if _, ok := c.get("new", later); !ok {
		t.Fatal("expired entries did not make room")
	}
	if _, ok := c.get("new", later.Add(time.Second)); ok {
		t.Fatal("entry outlived its retry time")
	}
}

func TestConcurrentUse(t *testing.T) {
	l := NewLocal(Options{MaxKeys: 100_000, Now: newClock().now})
	p := Policy{Name: "default", Rate: 100, Period: time.Hour, Burst: 100}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if d, _ := l.Allow(context.Background(), p, "shared"); d.Allowed {
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
	l := NewLocal(Options{MaxKeys: 100_000})
	p := Policy{Name: "default", Rate: 1 << 30, Period: time.Minute, Burst: 1 << 30}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%d", i)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_, _ = l.Allow(context.Background(), p, keys[i&1023])
			i++
		}
	})
}
