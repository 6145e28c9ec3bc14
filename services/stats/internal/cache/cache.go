// Package cache keeps report answers for a short time and makes concurrent
// identical requests share one database query (singleflight). A report
// answer is a snapshot with its as_of, so serving it again for a few seconds
// changes nothing a reader relies on, while a dashboard refreshed by fifty
// people costs the replica one query.
//
// Metrics: stats_cache_requests_total{report,result} with result hit (served
// from the cache), miss (this request ran the query) or shared (it waited
// for another request's query), and stats_query_duration_seconds{report}.
package cache

import (
	"container/list"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/provcred/platform/metrics"
)

// Results of a Get, the values of the result label.
const (
	Hit    = "hit"
	Miss   = "miss"
	Shared = "shared"
)

// Options configure New.
type Options struct {
	// TTL is how long an answer is served again; 0 stores nothing (requests
	// in flight together still share one query).
	TTL time.Duration
	// MaxEntries bounds the answers kept; the least recently used go first.
	MaxEntries int
	// MaxSize: an answer whose Size() (rows) is larger is not kept (a
	// whole-list CSV download); 0 means no bound.
	MaxSize int
	// LoadTimeout bounds one query, which runs detached from the request
	// that started it so that its leaving does not fail the others.
	LoadTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Cache is safe for concurrent use.
type Cache struct {
	o        Options
	mu       sync.Mutex
	entries  map[string]*list.Element
	lru      *list.List // front: most recently used
	flight   singleflight.Group
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// waiting is called when a request starts waiting for a query (tests).
	waiting func()
}

type entry struct {
	key     string
	value   any
	expires time.Time
}

// New returns a cache registering its metrics in reg.
func New(o Options, reg *metrics.Registry) *Cache {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxEntries < 1 {
		o.MaxEntries = 1
	}
	return &Cache{o: o, entries: map[string]*list.Element{}, lru: list.New(),
		requests: reg.CounterVec("stats_cache_requests_total",
			"Report requests by how they were answered: hit (cache), miss (ran the query), shared (joined a query in flight).",
			"report", "result"),
		duration: reg.HistogramVec("stats_query_duration_seconds", "Time a report's database query took (cache misses).",
			[]float64{.001, .0025, .005, .01, .025, .05, .1, .2, .5, 1, 2.5, 5, 10, 30}, "report"),
	}
}

// Register makes the series of report visible at zero before its first request.
func (c *Cache) Register(report string) {
	for _, r := range []string{Hit, Miss, Shared} {
		c.requests.WithLabelValues(report, r)
	}
	c.duration.WithLabelValues(report)
}

// Get returns the answer for key, from the cache or from load, and how it
// was answered. Errors are never cached; every request waiting on a failed
// query gets its error. A request that gives up (ctx) stops waiting; the
// query goes on for the others, bounded by LoadTimeout.
func (c *Cache) Get(ctx context.Context, report, key string, load func(ctx context.Context) (any, error)) (any, string, error) {
	if v, ok := c.lookup(key); ok {
		c.requests.WithLabelValues(report, Hit).Inc()
		return v, Hit, nil
	}
	type outcome struct {
		value  any
		cached bool
	}
	var ran atomic.Bool // set by the one request whose function runs
	ch := c.flight.DoChan(key, func() (any, error) {
		ran.Store(true)
		// An answer stored while this request was getting here is as good.
		if v, ok := c.lookup(key); ok {
			return outcome{v, true}, nil
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.LoadTimeout)
		defer cancel()
		start := time.Now()
		v, err := load(lctx)
		c.duration.WithLabelValues(report).Observe(time.Since(start).Seconds())
		if err != nil {
			return nil, err
		}
		c.store(key, v)
		return outcome{v, false}, nil
	})
	if c.waiting != nil {
		c.waiting()
	}
	select {
	case res := <-ch:
		result := Shared
		switch {
		case ran.Load() && res.Err == nil && res.Val.(outcome).cached:
			result = Hit
		case ran.Load():
			result = Miss
		}
		c.requests.WithLabelValues(report, result).Inc()
		if res.Err != nil {
			return nil, result, res.Err
		}
		return res.Val.(outcome).value, result, nil
	case <-ctx.Done():
		// The query goes on for the others; if this request started it, it
		// still cost one.
		result := Shared
		if ran.Load() {
			result = Miss
		}
		c.requests.WithLabelValues(report, result).Inc()
		return nil, result, ctx.Err()
	}
}

func (c *Cache) lookup(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	if !c.o.Now().Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, key)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return e.value, true
}

// Sized answers say how many rows they hold.
type Sized interface{ Size() int }

func (c *Cache) store(key string, v any) {
	if c.o.TTL <= 0 {
		return
	}
	if s, ok := v.(Sized); ok && c.o.MaxSize > 0 && s.Size() > c.o.MaxSize {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	exp := c.o.Now().Add(c.o.TTL)
	if el, ok := c.entries[key]; ok {
		el.Value.(*entry).value, el.Value.(*entry).expires = v, exp
		c.lru.MoveToFront(el)
		return
	}
	c.entries[key] = c.lru.PushFront(&entry{key: key, value: v, expires: exp})
	for c.lru.Len() > c.o.MaxEntries {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*entry).key)
	}
}

// Len is the number of answers held (expired ones included until looked up).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
