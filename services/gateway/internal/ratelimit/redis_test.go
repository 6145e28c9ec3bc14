package ratelimit

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"github.com/provcred/platform/poll"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provcred/gateway/internal/redistest"
)

// The same burst semantics as the local limiter, in Redis: a fresh client
// gets exactly B at once, then one per T. Periods are stretched so that the
// test's own run time does not earn a request.
func TestRedisBurstIsExact(t *testing.T) {
	t.Parallel()
	l := newRedisLimiter(t, RedisOptions{}, redistest.SharedAddr())
	for _, p := range burstCases {
		p.Name = "default"
		p.Period *= 600
		t.Run(p.String(), func(t *testing.T) {
			var last Decision
			ok := 0
			for i := 0; i < 2*p.Burst+3; i++ {
				d := redisAllow(t, l, p, "key:"+p.String())
				if d.Allowed {
					ok++
					if want := p.Burst - ok; d.Remaining != want {
						t.Fatalf("request %d: remaining %d, want %d", ok, d.Remaining, want)
					}
				}
				last = d
			}
			if ok != p.Burst {
				t.Fatalf("%d allowed at once, want burst %d", ok, p.Burst)
			}
			if last.Allowed || last.RetryAfter <= 0 || last.RetryAfter > p.interval() {
				t.Fatalf("over the burst: %+v (T %s)", last, p.interval())
			}
			if last.Limit != p.Burst || last.ResetAfter < p.tau()-p.interval()-time.Second {
				t.Fatalf("limited decision %+v", last)
			}
		})
	}
	if v := l.value("ratelimit_backend_errors_total"); v != 0 {
		t.Fatalf("%v backend errors", v)
	}
}

// After Retry-After, exactly one more request passes; the key lives until
// the allowance is whole again, and not longer. T is long (2s) so that a
// loaded machine's stalls do not earn a request.
func TestRedisRefillAndTTL(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := newRedisLimiter(t, RedisOptions{}, s.Addr())
	p := Policy{Name: "credential", Rate: 1, Period: 2 * time.Second, Burst: 3}
	t0 := time.Now()
	if n := countAllowed(t, l, p, "key:a", 3); n != 3 {
		t.Fatalf("%d allowed, want 3", n)
	}
	d := redisAllow(t, l, p, "key:a")
	if el := time.Since(t0); !d.Allowed && (d.RetryAfter <= 0 || d.RetryAfter > time.Second) || d.Allowed && el < time.Second {
		t.Fatalf("4th after %s: %+v", el, d)
	}
	key := fmtKey(l.o.Prefix, p, "key:a")
	ttl, _ := strconv.Atoi(s.Cli("PTTL", key))
	// Whole again 3 T = 6s after the first request; redis-cli itself may
	// take a while to start on a loaded machine.
	if el := time.Since(t0).Milliseconds(); ttl > 6000 || int64(ttl) < 6000-el-5 {
		t.Fatalf("PTTL %d ms %d ms after 3 requests of T=2s, want 6000 less the time passed", ttl, el)
	}
	if !redisAllow(t, l, p, "key:b").Allowed {
		t.Fatal("another key limited")
	}
	time.Sleep(d.RetryAfter + 20*time.Millisecond)
	// The over-limit cache released key:a at its retry time; Redis decides:
	// one more now, the next a whole T later.
	t1 := time.Now()
	n := countAllowed(t, l, p, "key:a", 3)
	if el := time.Since(t1); n != 1 && el < time.Second {
		t.Fatalf("%d allowed after Retry-After (in %s), want 1", n, el)
	}
	poll.Until(t, 10*time.Second, "key expired when its allowance is whole", func() bool { return s.Cli("EXISTS", key) == "0" })
	if n := countAllowed(t, l, p, "key:a", 5); n != 3 {
		t.Fatalf("after the key expired: %d allowed, want the whole burst 3", n)
	}
}

// Two limiters (two replicas) on one Redis share one allowance.
func TestRedisReplicasShareTheLimit(t *testing.T) {
	t.Parallel()
	a := newRedisLimiter(t, RedisOptions{}, redistest.SharedAddr())
	b := newRedisLimiter(t, RedisOptions{Prefix: a.o.Prefix}, redistest.SharedAddr())
	p := Policy{Name: "default", Rate: 20, Period: time.Hour, Burst: 20}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for _, l := range []limiterEnv{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := countAllowed(t, l, p, "key:shared", 20)
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != 20 {
		t.Fatalf("%d allowed across two replicas, want 20", total)
	}
	// Heartbeats run on each limiter's own goroutine after it connects, so
	// a's first one may land after b's: b counts two replicas by its next
	// heartbeat (asked for here rather than waited for).
	poll.Until(t, 10*time.Second, "b counts two replicas", func() bool {
		b.heartbeat(context.Background())
		return b.replicaCount() == 2
	})
}

// A client over its limit is refused from the local cache until its retry
// time, without a Redis call.
func TestRedisOverLimitCache(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := newRedisLimiter(t, RedisOptions{}, s.Addr())
	p := Policy{Name: "default", Rate: 1, Period: time.Minute, Burst: 1}
	if n := countAllowed(t, l, p, "ip:203.0.113.9", 2); n != 1 {
		t.Fatalf("%d allowed", n)
	}
	before := redistest.CommandCalls(s, "evalsha") + redistest.CommandCalls(s, "eval")
	for i := 0; i < 200; i++ {
		d := redisAllow(t, l, p, "ip:203.0.113.9")
		if d.Allowed || d.RetryAfter < 28*time.Second { // half an interval: 30s
			t.Fatalf("cached refusal %+v", d)
		}
	}
	if after := redistest.CommandCalls(s, "evalsha") + redistest.CommandCalls(s, "eval"); after != before {
		t.Fatalf("%d script calls for clients known to be over their limit", after-before)
	}
}

// SCRIPT FLUSH (or a restarted Redis) loses the script: the next call gets
// NOSCRIPT and loads it again, without an error or a fallback.
func TestRedisNoScriptReloads(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := newRedisLimiter(t, RedisOptions{}, s.Addr())
	p := Policy{Name: "default", Rate: 100, Period: time.Hour, Burst: 100}
	if n := countAllowed(t, l, p, "k", 5); n != 5 {
		t.Fatal(n)
	}
	if sha := s.Cli("SCRIPT", "EXISTS", scriptSHA(GCRAScript)); sha != "1" {
		t.Fatalf("script not loaded by SHA at connect: %q", sha)
	}
	s.Cli("SCRIPT", "FLUSH")
	if n := countAllowed(t, l, p, "k", 5); n != 5 {
		t.Fatal(n)
	}
	if l.value("ratelimit_backend_errors_total") != 0 || l.value("ratelimit_fallback_active") != 0 {
		t.Fatal("NOSCRIPT counted as a backend failure")
	}
	if calls := redistest.CommandCalls(s, "evalsha"); calls < 10 {
		t.Fatalf("evalsha calls %d: decisions must run by SHA", calls)
	}
}

// checkOutage drives decisions while Redis is broken by breakIt and healed
// by healIt: every decision answers (no error) within 50 ms, the fallback
// gauge and the error counter say so, the fallback applies each replica's
// share of the limit, and decisions go back to Redis by themselves.
func checkOutage(t *testing.T, s *redistest.Server, mode FailureMode, breakIt, healIt func()) {
	l := newRedisLimiter(t, RedisOptions{FailureMode: mode, Replicas: 2, Timeout: 15 * time.Millisecond}, s.Addr())
	p := Policy{Name: "default", Rate: 10, Period: time.Hour, Burst: 10}
	// The timeout is short for this test: on a loaded machine a healthy
	// call may miss it; wait for one that does not.
	poll.Until(t, 10*time.Second, "a decision in Redis", func() bool {
		return redisAllow(t, l, p, "key:before").Allowed && l.Healthy()
	})
	breakIt()
	stall := watchStalls(t)
	allowed, slowest, slowAt := 0, time.Duration(0), 0
	deadline := time.Now().Add(700 * time.Millisecond)
	for i := 0; time.Now().Before(deadline) || i < 30; i++ {
		t0 := time.Now()
		d, err := l.Allow(context.Background(), p, "key:during")
		if el := time.Since(t0); el > slowest {
			slowest, slowAt = el, i
		}
		if err != nil {
			t.Fatalf("decision %d: error %v (must decide by the failure mode)", i, err)
		}
		if d.Allowed {
			allowed++
		}
		time.Sleep(2 * time.Millisecond) // a few hundred decisions, as requests would come
	}
	if st := stall(); slowest > 50*time.Millisecond+st {
		t.Fatalf("slowest decision (#%d) took %s, want under 50ms (the machine stalled this process by up to %s)", slowAt, slowest, st)
	}
	if l.value("ratelimit_fallback_active") != 1 || l.value("ratelimit_backend_errors_total") < 1 {
		t.Fatalf("fallback gauge %v, backend errors %v", l.value("ratelimit_fallback_active"), l.value("ratelimit_backend_errors_total"))
	}
	if st := l.Status(); st["status"] != "fallback" || st["last_error"] == "" {
		t.Fatalf("status %v", st)
	}
	switch mode {
	case FailOpen:
		if allowed != 5 { // burst 10 shared by 2 replicas
			t.Fatalf("fallback allowed %d, want this replica's share 5", allowed)
		}
	case FailClosed:
		if allowed != 0 {
			t.Fatalf("fail-closed allowed %d", allowed)
		}
	}
	healIt()
	poll.Until(t, 10*time.Second, "decisions back on Redis", func() bool {
		_, _ = l.Allow(context.Background(), p, "key:after")
		return l.value("ratelimit_fallback_active") == 0
	})
	if s.Cli("EXISTS", fmtKey(l.o.Prefix, p, "key:after")) != "1" {
		t.Fatal("after healing, the decision was not made in Redis")
	}
	if st := l.Status(); st["status"] != "ok" {
		t.Fatalf("status after healing %v", st)
	}
}

func TestRedisKilledAndRestarted(t *testing.T) {
	s := redistest.Start(t)
	checkOutage(t, s, FailOpen, s.Kill, s.Start)
}

func TestRedisPaused(t *testing.T) {
	s := redistest.Start(t)
	checkOutage(t, s, FailOpen, func() { s.Cli("CLIENT", "PAUSE", "1500", "ALL") },
		func() { s.Cli("CLIENT", "UNPAUSE") })
}

func TestRedisDownFailClosed(t *testing.T) {
	s := redistest.Start(t)
	checkOutage(t, s, FailClosed, s.Kill, s.Start)
}

// A gateway started while Redis is down decides by its failure mode and
// moves to Redis when Redis comes up.
func TestRedisDownAtStart(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	s.Kill()
	opt, _ := ClientOption("", []string{s.Addr()}, "", "", "", 25*time.Millisecond)
	r := NewRedis(testOptions(t, RedisOptions{Client: opt, Timeout: 25 * time.Millisecond}))
	t.Cleanup(r.Close)
	p := Policy{Name: "default", Rate: 2, Period: time.Hour, Burst: 2}
	if n := countAllowed(t, r, p, "k", 5); n != 2 {
		t.Fatalf("fallback with one replica known: %d allowed, want 2", n)
	}
	if st := r.Status(); st["status"] != "fallback" {
		t.Fatalf("status %v", st)
	}
	s.Start()
	poll.Until(t, 10*time.Second, "connected after Redis came up", func() bool {
		_, _ = r.Allow(context.Background(), p, "k2")
		return r.Healthy()
	})
}

// A primary turned replica (failover behind a Service or VIP that now
// points at the new primary): the READONLY answers make the limiter
// reconnect, and its new connections reach the new primary. Without the
// reconnect its pooled connections would stay on the replica for good.
func TestRedisPrimaryTurnedReplica(t *testing.T) {
	t.Parallel()
	a, b := redistest.Start(t), redistest.Start(t)
	fw := redistest.NewForwarder(t, a.Addr())
	l := newRedisLimiter(t, RedisOptions{}, fw.Addr())
	p := Policy{Name: "default", Rate: 100, Period: time.Hour, Burst: 100}
	if n := countAllowed(t, l, p, "k", 3); n != 3 {
		t.Fatal(n)
	}
	fw.Point(b.Addr())
	a.Cli("REPLICAOF", "127.0.0.1", strconv.Itoa(b.Port()))
	poll.Until(t, 10*time.Second, "decisions on the new primary", func() bool {
		_, _ = l.Allow(context.Background(), p, "k")
		return l.Healthy() && b.Cli("EXISTS", fmtKey(l.o.Prefix, p, "k")) == "1"
	})
	if l.value("ratelimit_backend_errors_total") < 1 {
		t.Fatal("the READONLY answers were not counted")
	}
}

// Sentinel: the limiter finds the primary through a Sentinel and follows a
// failover to the new primary without a restart.
func TestRedisSentinelFailover(t *testing.T) {
	t.Parallel()
	a, b := redistest.Start(t), redistest.Start(t)
	b.Cli("REPLICAOF", "127.0.0.1", strconv.Itoa(a.Port()))
	poll.Until(t, 10*time.Second, "replica in sync", func() bool {
		return strings.Contains(b.Cli("INFO", "replication"), "master_link_status:up")
	})
	s := redistest.StartSentinel(t, "provcred", a)
	poll.Until(t, 10*time.Second, "sentinel sees the replica", func() bool {
		return strings.Contains(s.Cli("SENTINEL", "REPLICAS", "provcred"), strconv.Itoa(b.Port()))
	})
	opt, err := ClientOption("", []string{s.Addr()}, "provcred", "", "", 25*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	l := NewRedis(testOptions(t, RedisOptions{Client: opt}))
	t.Cleanup(l.Close)
	p := Policy{Name: "default", Rate: 100, Period: time.Hour, Burst: 100}
	poll.Until(t, 10*time.Second, "a decision on the primary", func() bool {
		_, _ = l.Allow(context.Background(), p, "before")
		return l.Healthy() && a.Cli("EXISTS", fmtKey(l.o.Prefix, p, "before")) == "1"
	})
	// The promotion closes b's client connections (Sentinel's CLIENT KILL),
	// so a redis-cli call may fail while it happens: not yet, not a failure.
	cli := func(args ...string) string { out, _ := b.CliErr(args...); return out }
	// A Sentinel that has not yet read the replica's own INFO refuses the
	// failover (NOGOODSLAVE) and forgets it: ask again each second until
	// one starts (while one runs, the answer is INPROG).
	var asked time.Time
	poll.Until(t, 20*time.Second, "b promoted", func() bool {
		if strings.Contains(cli("INFO", "replication"), "role:master") {
			return true
		}
		if time.Since(asked) > time.Second {
			asked = time.Now()
			_, _ = s.CliErr("SENTINEL", "FAILOVER", "provcred")
		}
		return false
	})
	poll.Until(t, 20*time.Second, "decisions on the new primary", func() bool {
		_, _ = l.Allow(context.Background(), p, "after")
		return l.Healthy() && cli("EXISTS", fmtKey(l.o.Prefix, p, "after")) == "1" &&
			strings.Contains(cli("INFO", "replication"), "role:master")
	})
}

// Three Redis Cluster nodes started by the test: every key is one slot
// (hash tag), so there is no CROSSSLOT, limits hold on every node, and
// the script is loaded again on a node that lost it.
func TestRedisCluster(t *testing.T) {
	t.Parallel()
	var nodes []*redistest.Server
	var addrs []string
	for i := 0; i < 3; i++ {
		s := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		nodes = append(nodes, s)
		addrs = append(addrs, s.Addr())
	}
	nodes[0].Cli(append([]string{"--cluster", "create"}, append(addrs, "--cluster-replicas", "0", "--cluster-yes")...)...)
	for _, n := range nodes {
		poll.Until(t, 15*time.Second, "cluster_state:ok", func() bool {
			return strings.Contains(n.Cli("CLUSTER", "INFO"), "cluster_state:ok")
		})
	}
	l := newRedisLimiter(t, RedisOptions{}, addrs[0])
	p := Policy{Name: "chat", Rate: 3, Period: time.Hour, Burst: 3}
	check := func(round int) {
		for i := 0; i < 60; i++ {
			key := fmt.Sprintf("key:client-%d-%d", round, i)
			if n := countAllowed(t, l, p, key, 5); n != 3 {
				t.Fatalf("%s: %d allowed, want 3", key, n)
			}
		}
	}
	check(0)
	for _, n := range nodes {
		if keys, _ := strconv.Atoi(n.Cli("DBSIZE")); keys == 0 {
			t.Fatalf("node %s holds no key: keys do not spread over the slots", n.Addr())
		}
	}
	nodes[1].Cli("SCRIPT", "FLUSH")
	check(1)
	if v := l.value("ratelimit_backend_errors_total"); v != 0 {
		t.Fatalf("%v backend errors on the cluster (CROSSSLOT or NOSCRIPT?)", v)
	}
}

// Redis URL forms and settings; errors never repeat a password.
func TestClientOption(t *testing.T) {
	tests := []struct {
		url    string
		addrs  []string
		master string
		want   []string
		err    bool
	}{
		{url: "redis://127.0.0.1:6379/0", want: []string{"127.0.0.1:6379"}},
		{url: "redis://:pw@10.0.0.1:6380/2?addr=10.0.0.2:6380&addr=10.0.0.3:6380", want: []string{"10.0.0.1:6380", "10.0.0.2:6380", "10.0.0.3:6380"}},
		{addrs: []string{"s1:26379", " s2:26379"}, master: "mymaster", want: []string{"s1:26379", "s2:26379"}},
		{url: "http://x", err: true},
		{url: "redis://u:secret@h:1/notanumber", err: true},
		{err: true},
	}
	for _, tt := range tests {
		opt, err := ClientOption(tt.url, tt.addrs, tt.master, "", "", 25*time.Millisecond)
		if (err != nil) != tt.err {
			t.Errorf("%q %v: err %v", tt.url, tt.addrs, err)
			continue
		}
		if err != nil {
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows the password: %v", err)
			}
			continue
		}
		if strings.Join(opt.InitAddress, ",") != strings.Join(tt.want, ",") || opt.Sentinel.MasterSet != tt.master {
			t.Errorf("%q: %v master %q", tt.url, opt.InitAddress, opt.Sentinel.MasterSet)
		}
	}
}

func scriptSHA(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// watchStalls measures how late this process gets the CPU back (a 1ms
// sleep that takes longer), so that a decision held up by a loaded machine
// (two cores shared with other builds) is told from one held up by Redis.
// It returns a func giving the worst delay seen so far.
func watchStalls(t *testing.T) func() time.Duration {
	var mu sync.Mutex
	var worst time.Duration
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			t0 := time.Now()
			time.Sleep(time.Millisecond)
			if late := time.Since(t0) - time.Millisecond; late > 0 {
				mu.Lock()
				worst = max(worst, late)
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { close(done) })
	return func() time.Duration { mu.Lock(); defer mu.Unlock(); return worst }
}
