package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/provcred/platform/metrics"

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

// newRedisLimiter connects a limiter to addrs and waits until it is
// connected (unless the test wants it to start without Redis).
func newRedisLimiter(t testing.TB, o RedisOptions, addrs ...string) limiterEnv {
	t.Helper()
	opt, err := ClientOption("", addrs, "", "", "", 25*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if o.Prefix == "" {
		o.Prefix = redistest.UniquePrefix(t)
	}
	if o.Timeout == 0 {
		// Generous unless the test is about timing: -race on two shared
		// cores can stall a healthy call past tens of milliseconds.
		o.Timeout = 500 * time.Millisecond
	}
	o.Logger = slog.New(slog.NewTextHandler(redistest.Writer{T: t}, nil))
	if o.Breaker.OpenTimeout == 0 {
		o.Breaker.OpenTimeout = 200 * time.Millisecond
	}
	o.Client = opt
	reg := metrics.New("gateway")
	o.Registry = reg
	r := NewRedis(o)
	t.Cleanup(r.Close)
	redistest.WaitFor(t, 10*time.Second, "limiter connected", func() bool { return r.client.Load() != nil })
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
