package ratelimit

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/poll"

	"github.com/provcred/gateway/internal/redistest"
)

type limiterEnv struct {
	*Redis
	reg *metrics.Registry
}

func (e limiterEnv) value(name string) float64 {
	v, _ := e.reg.Value(name)
	return v
}

// testOptions fills what a test leaves out with the settings most tests
// want (the gateway's own come from RATE_LIMIT_*).
func testOptions(t testing.TB, o RedisOptions) RedisOptions {
	if o.Prefix == "" {
		o.Prefix = redistest.UniquePrefix(t)
	}
	if o.Timeout == 0 {
		// Generous unless the test is about timing: -race on two shared
		// cores can stall a healthy call past tens of milliseconds.
		o.Timeout = 500 * time.Millisecond
	}
	o.FailureMode = cmp.Or(o.FailureMode, FailOpen)
	if o.Breaker == (breaker.Settings{}) {
		o.Breaker = breaker.Settings{ConsecutiveFailures: 5, OpenTimeout: 200 * time.Millisecond, HalfOpenRequests: 1}
	}
	o.CacheSize = cmp.Or(o.CacheSize, 10_000)
	o.MaxKeys = cmp.Or(o.MaxKeys, 100_000)
	return o
}

// newRedisLimiter connects a limiter to addrs and waits until it is
// connected (unless the test wants it to start without Redis).
func newRedisLimiter(t testing.TB, o RedisOptions, addrs ...string) limiterEnv {
	t.Helper()
	opt, err := ClientOption("", addrs, "", "", "", 25*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	o = testOptions(t, o)
	o.Logger = slog.New(slog.NewTextHandler(redistest.Writer{T: t}, nil))
	o.Client = opt
	reg := metrics.New("gateway")
	o.Registry = reg
	r := NewRedis(o)
	t.Cleanup(r.Close)
	poll.Until(t, 10*time.Second, "limiter connected", func() bool { return r.client.Load() != nil })
	return limiterEnv{r, reg}
}

func redisAllow(t testing.TB, l Limiter, p Policy, key string) Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), p, key)
	if err != nil {
		t.Fatalf("Allow: %v", err)
	}
	return d
}

func countAllowed(t testing.TB, l Limiter, p Policy, key string, n int) int {
	t.Helper()
	ok := 0
	for i := 0; i < n; i++ {
		if redisAllow(t, l, p, key).Allowed {
			ok++
		}
	}
	return ok
}

func fmtKey(prefix string, p Policy, key string) string {
	return fmt.Sprintf("%s{%s:%s}", prefix, p.Name, key)
}
