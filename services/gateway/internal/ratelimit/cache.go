package ratelimit

import (
	"sync"
	"time"
)

// overCache remembers clients that Redis found over their limit, until
// their retry time, so a client hammering past its limit is refused here
// without a Redis call (envoy ratelimit's local cache). It is bounded: past
// its size, expired entries are dropped and, if it is still full, a new
// entry is not remembered (that client is asked about in Redis, as without
// the cache).
type overCache struct {
	per    int
	shards [cacheShards]cacheShard
}

const cacheShards = 16

type cacheShard struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func newOverCache(size int) *overCache {
	c := &overCache{per: max(size/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = map[string]time.Time{}
	}
	return c
}

// get returns the retry time of a key still over its limit at now.
func (c *overCache) get(k string, now time.Time) (time.Time, bool) {
	sh := &c.shards[fnv(k)%cacheShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	until, ok := sh.m[k]
	if !ok {
		return time.Time{}, false
	}
	if !now.Before(until) {
		delete(sh.m, k)
		return time.Time{}, false
	}
	return until, true
}

func (c *overCache) put(k string, until, now time.Time) {
	if !now.Before(until) {
		return
	}
	sh := &c.shards[fnv(k)%cacheShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[k]; !ok && len(sh.m) >= c.per {
		for key, u := range sh.m {
			if !now.Before(u) {
				delete(sh.m, key)
			}
		}
		if len(sh.m) >= c.per {
			return
		}
	}
	sh.m[k] = until
}

func (c *overCache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.Lock()
		n += len(c.shards[i].m)
		c.shards[i].mu.Unlock()
	}
	return n
}
