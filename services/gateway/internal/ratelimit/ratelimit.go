// Package ratelimit limits each client's request rate with GCRA (the
// generic cell rate algorithm: one "theoretical arrival time" per key, no
// token refill loop), and works out who the client is behind proxies.
//
// Limiter is the seam for the cluster-wide Redis implementation (one atomic
// script per key, Redis server time); Local is the in-process one.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/provcred/platform/metrics"
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

// Limiter decides whether the client called key may make a request now.
// Implementations must be safe for concurrent use. An error means the
// limiter could not decide (e.g. Redis down); the caller chooses to fail open.
type Limiter interface {
	Allow(ctx context.Context, key string) (Decision, error)
}

// Policy is a rate: Rate requests per Period, with bursts up to Burst.
type Policy struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// interval is the emission interval T: the steady-state time between requests.
func (p Policy) interval() time.Duration { return p.Period / time.Duration(p.Rate) }

// HeaderPolicy is the RateLimit-Policy header value (draft-ietf-httpapi-ratelimit-headers-09:
// a named policy with quota q over window w seconds).
func (p Policy) HeaderPolicy() string {
	return fmt.Sprintf(`"default";q=%d;w=%d`, p.Rate, int(math.Ceil(p.Period.Seconds())))
}

// Header is the RateLimit header value for d: remaining quota r and seconds
// t until it is whole again.
func Header(d Decision) string {
	return `"default";r=` + strconv.Itoa(d.Remaining) + ";t=" + strconv.Itoa(ceilSeconds(d.ResetAfter))
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

// Local is an in-process GCRA limiter. Its memory is bounded: a key whose
// allowance is full again holds no information and is dropped; past MaxKeys
// tracked keys, arbitrary keys are evicted (those clients get a fresh
// allowance, i.e. the limiter fails open for them rather than growing).
type Local struct {
	policy  Policy
	tau     time.Duration // burst tolerance: Burst * T
	t       time.Duration // emission interval
	now     func() time.Time
	maxKeys int
	shards  [shardCount]shard

	decisions *prometheus.CounterVec
}

const shardCount = 32

type shard struct {
	mu        sync.Mutex
	tat       map[string]time.Time
	lastSweep time.Time
}

// Options configure NewLocal.
type Options struct {
	Policy  Policy
	MaxKeys int
	// Now is the clock (tests inject one); nil means time.Now.
	Now func() time.Time
	// Metrics, when set, gets ratelimit_decisions_total{decision}.
	Metrics *metrics.Registry
}

// NewLocal builds the in-process limiter.
func NewLocal(o Options) *Local {
	if o.Policy.Rate < 1 || o.Policy.Period <= 0 {
		panic("ratelimit: policy needs a positive rate and period")
	}
	if o.Policy.Burst < 1 {
		o.Policy.Burst = o.Policy.Rate
	}
	if o.MaxKeys < 1 {
		o.MaxKeys = 100_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Local{policy: o.Policy, t: o.Policy.interval(), now: o.Now, maxKeys: o.MaxKeys}
	l.tau = l.t * time.Duration(o.Policy.Burst)
	for i := range l.shards {
		l.shards[i].tat = map[string]time.Time{}
	}
	if o.Metrics != nil {
		l.decisions = NewDecisionsCounter(o.Metrics)
	}
	return l
}

// NewDecisionsCounter registers ratelimit_decisions_total with both series at 0.
func NewDecisionsCounter(m *metrics.Registry) *prometheus.CounterVec {
	v := m.CounterVec("ratelimit_decisions_total", "Rate limit decisions.", "decision")
	v.WithLabelValues("allowed")
	v.WithLabelValues("limited")
	return v
}

// Policy returns the limiter's policy.
func (l *Local) Policy() Policy { return l.policy }

// Allow applies GCRA: the request is allowed when the new theoretical
// arrival time max(tat, now)+T lies within the burst tolerance of now.
func (l *Local) Allow(_ context.Context, key string) (Decision, error) {
	now := l.now()
	sh := &l.shards[fnv(key)%shardCount]
	sh.mu.Lock()
	tat, ok := sh.tat[key]
	if !ok || tat.Before(now) {
		tat = now
	}
	newTAT := tat.Add(l.t)
	d := Decision{Limit: l.policy.Burst}
	if diff := newTAT.Sub(now); diff <= l.tau {
		d.Allowed = true
		if !ok {
			l.makeRoom(sh, now)
		}
		sh.tat[key] = newTAT
		d.ResetAfter = diff
		d.Remaining = int((l.tau - diff) / l.t)
	} else {
		d.RetryAfter = diff - l.tau
		d.ResetAfter = tat.Sub(now)
		d.Remaining = 0
	}
	sh.mu.Unlock()
	if l.decisions != nil {
		if d.Allowed {
			l.decisions.WithLabelValues("allowed").Inc()
		} else {
			l.decisions.WithLabelValues("limited").Inc()
		}
	}
	return d, nil
}

// makeRoom runs before a new key is added to sh (lock held): it drops keys
// whose allowance is full again (at most once a second per shard unless the
// shard is full) and, if the shard is still at its share of MaxKeys, evicts
// arbitrary keys (Go's map order is random).
func (l *Local) makeRoom(sh *shard, now time.Time) {
	limit := l.maxKeys / shardCount
	if limit < 1 {
		limit = 1
	}
	if len(sh.tat) < limit && now.Sub(sh.lastSweep) < time.Second {
		return
	}
	sh.lastSweep = now
	for k, tat := range sh.tat {
		if !tat.After(now) {
			delete(sh.tat, k)
		}
	}
	for k := range sh.tat {
		if len(sh.tat) < limit {
			break
		}
		delete(sh.tat, k)
	}
}

// Keys is the number of keys tracked now (for /health/concurrency).
func (l *Local) Keys() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.tat)
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
