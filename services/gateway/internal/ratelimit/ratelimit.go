// Package ratelimit limits each client's request rate with GCRA (the
// generic cell rate algorithm: one "theoretical arrival time" per key, no
// token refill loop), and works out who the client is behind proxies.
//
// Redis is the cluster-wide limiter (one atomic script per decision, Redis
// server time, a breaker and a local fallback); Local is the in-process one.
package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Decision is the outcome of one Allow.
type Decision struct {
	Allowed bool
	// Limit is the burst: the most requests a fresh client may send at once.
	Limit int
	// Remaining is how many more requests would be allowed right now.
	Remaining int
	// ResetAfter is how long until the client's allowance is full again.
	ResetAfter time.Duration
	// RetryAfter is how long to wait before the next request can pass (0 when allowed).
	RetryAfter time.Duration
}

// Limiter decides whether the client called key may make a request now
// under policy p. Implementations must be safe for concurrent use. An error
// means the limiter could not decide; the caller lets the request through.
type Limiter interface {
	Allow(ctx context.Context, p Policy, key string) (Decision, error)
}

// RetryAfterSeconds rounds up, so a client that waits that long passes.
func RetryAfterSeconds(d Decision) int {
	s := ceilSeconds(d.RetryAfter)
	if s < 1 {
		s = 1
	}
	return s
}

func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// Local is an in-process GCRA limiter: the limiter when no Redis is
// configured, and the fallback of the Redis one. Its memory is bounded to
// MaxKeys. A key whose allowance is whole again holds no information and is
// dropped first; past the bound, the key with the most allowance left is
// evicted, and a throttled key (one whose next request would be refused)
// never is: evicting it would hand an exhausted client a fresh burst. When
// every tracked key is throttled, a new client is decided as fresh without
// being remembered until room frees up (at most its burst's worth later).
type Local struct {
	now     func() time.Time
	maxKeys int
	shards  [shardCount]shard
}

const shardCount = 32

type shard struct {
	mu        sync.Mutex
	m         map[localKey]entry
	lastSweep time.Time
}

// localKey is a client under a policy (a struct, not a joined string: no
// allocation per decision).
type localKey struct{ policy, client string }

// entry is one key's state: its theoretical arrival time, and the moment
// from which its next request passes (before it, the client is throttled).
type entry struct {
	tat, passFrom time.Time
}

// Options configure NewLocal.
type Options struct {
	// MaxKeys bounds the clients tracked (RATE_LIMIT_MAX_KEYS; at least 1).
	MaxKeys int
	// Now is the clock (tests inject one); nil means time.Now.
	Now func() time.Time
}

// NewLocal builds the in-process limiter. It panics on MaxKeys below 1:
// the value comes from validated configuration.
func NewLocal(o Options) *Local {
	if o.MaxKeys < 1 {
		panic(fmt.Sprintf("ratelimit: MaxKeys must be at least 1, got %d", o.MaxKeys))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Local{now: o.Now, maxKeys: o.MaxKeys}
	for i := range l.shards {
		l.shards[i].m = map[localKey]entry{}
	}
	return l
}

// Allow applies GCRA: the request is allowed when the new theoretical
// arrival time max(tat, now)+T lies within the tolerance τ of now (see
// Policy).
func (l *Local) Allow(_ context.Context, p Policy, key string) (Decision, error) {
	now := l.now()
	t, tau := p.interval(), p.tau()
	k := localKey{p.Name, key}
	sh := &l.shards[(fnv(key)^fnv(p.Name))%shardCount]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[k]
	tat := e.tat
	if !ok || tat.Before(now) {
		tat = now
	}
	newTAT := tat.Add(t)
	d := Decision{Limit: p.Burst}
	diff := newTAT.Sub(now)
	if diff > tau {
		d.RetryAfter = diff - tau
		d.ResetAfter = tat.Sub(now)
		return d, nil
	}
	d.Allowed = true
	d.ResetAfter = diff
	d.Remaining = int((tau - diff) / t)
	if ok || l.makeRoom(sh, now) {
		sh.m[k] = entry{tat: newTAT, passFrom: newTAT.Add(t - tau)}
	}
	return d, nil
}

// makeRoom runs before a new key is added to sh (lock held) and says
// whether it may be. It drops keys whose allowance is whole again (at most
// once a second per shard unless the shard is full); if the shard is still
// at its share of MaxKeys, it evicts the unthrottled key with the earliest
// theoretical arrival time (the most allowance left), never a throttled one.
func (l *Local) makeRoom(sh *shard, now time.Time) bool {
	limit := max(l.maxKeys/shardCount, 1)
	if len(sh.m) < limit && now.Sub(sh.lastSweep) < time.Second {
		return true
	}
	sh.lastSweep = now
	for k, e := range sh.m {
		if !e.tat.After(now) {
			delete(sh.m, k)
		}
	}
	if len(sh.m) < limit {
		return true
	}
	victim, found := localKey{}, false
	var earliest time.Time
	for k, e := range sh.m {
		if now.Before(e.passFrom) {
			continue // throttled: keep
		}
		if !found || e.tat.Before(earliest) {
			victim, earliest, found = k, e.tat, true
		}
	}
	if !found {
		return false
	}
	delete(sh.m, victim)
	return true
}

// Keys is the number of keys tracked now (for /health/concurrency).
func (l *Local) Keys() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// fnv is FNV-1a, inlined to avoid an allocation per request.
func fnv(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
