package app

import (
	"fmt"
	"github.com/provcred/platform/poll"
	"strings"
	"testing"
	"time"

	"github.com/provcred/gateway/internal/redistest"
)

// redisGateway starts a gateway whose limiter is on the Redis at addr,
// with a key prefix of its own, and waits until it decides there.
func redisGateway(t *testing.T, addr string, extra map[string]string) *env {
	t.Helper()
	vars := map[string]string{"REDIS_URL": "redis://" + addr + "/0", "RATE_LIMIT_KEY_PREFIX": redistest.UniquePrefix(t),
		"RATE_LIMIT_REDIS_TIMEOUT": "500ms"}
	for k, v := range extra {
		vars[k] = v
	}
	e := start(t, vars, Deps{})
	poll.Until(t, 10*time.Second, "the limiter on Redis", func() bool {
		r := e.do("GET", "/health", "", nil, nil)
		rl, _ := r.body["rate_limiter"].(map[string]any)
		return rl["backend"] == "redis" && rl["status"] == "ok"
	})
	return e
}

func TestRedisLimitThroughTheGateway(t *testing.T) {
	t.Parallel()
	e := redisGateway(t, redistest.SharedAddr(), map[string]string{
		"RATE_LIMIT_REQUESTS_PER_MINUTE": "5", "RATE_LIMIT_CHAT": "2/1m,burst=2", "RATE_LIMIT_CREDENTIAL": "3/1h,burst=1",
	})
	for i := 0; i < 5; i++ {
		r := e.do("GET", "/providers", e.keys.reader, nil, nil)
		if r.status != 200 || r.header.Get("RateLimit-Policy") != `"default";q=5;w=60` ||
			r.header.Get("RateLimit") != fmt.Sprintf(`"default";r=%d;t=%d`, 4-i, 12*(i+1)) {
			t.Fatalf("request %d: %d %q %q", i+1, r.status, r.header.Get("RateLimit-Policy"), r.header.Get("RateLimit"))
		}
	}
	r := e.do("GET", "/providers", e.keys.reader, nil, nil)
	if r.status != 429 || string(r.raw) != `{"code":"rate_limited","detail":"Too many requests. Please try again later."}` ||
		r.header.Get("Retry-After") != "6" {
		t.Fatalf("6th: %d %s Retry-After %q", r.status, r.raw, r.header.Get("Retry-After"))
	}
	// Route groups have their own policies; a request is charged to its
	// group only.
	for i, want := range []int{200, 200, 429} {
		r := e.do("POST", "/chat", e.keys.operator, strings.NewReader(`{"message":"hi"}`), nil)
		if r.status != want || r.header.Get("RateLimit-Policy") != `"chat";q=2;w=60` {
			t.Fatalf("chat %d: %d %q", i+1, r.status, r.header.Get("RateLimit-Policy"))
		}
	}
	if r := e.do("POST", "/credential/p1", e.keys.operator, nil, nil); r.status != 200 || r.header.Get("RateLimit-Policy") != `"credential";q=3;w=3600` {
		t.Fatalf("credential: %d %q", r.status, r.header.Get("RateLimit-Policy"))
	}
	if r := e.do("POST", "/credential/p2", e.keys.operator, nil, nil); r.status != 429 || r.header.Get("Retry-After") != "600" {
		t.Fatalf("credential burst 1: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if r := e.do("GET", "/providers", e.keys.operator, nil, nil); r.status != 200 {
		t.Fatalf("the operator's chat and credential use spent its default allowance: %d", r.status)
	}
	// An anonymous flood from one address is limited by address, whatever
	// X-Forwarded-For it claims (the peer is not a trusted proxy), and
	// spends no key's allowance.
	limited := 0
	for i := 0; i < 12; i++ {
		r := e.do("GET", "/providers", "", nil, map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i)})
		switch r.status {
		case 401:
		case 429:
			limited++
		default:
			t.Fatalf("anonymous: %d", r.status)
		}
	}
	if limited != 7 {
		t.Fatalf("%d of 12 anonymous requests limited, want 7 (burst 5, one address)", limited)
	}
	if r := e.do("GET", "/providers", e.keys.admin, nil, nil); r.status != 200 {
		t.Fatalf("admin key limited after an anonymous flood: %d", r.status)
	}
	// /health/concurrency (an operator's view) says where decisions are made.
	r = e.do("GET", "/health/concurrency", e.keys.operator, nil, nil)
	rl := r.body["concurrency"].(map[string]any)["rate_limiter"].(map[string]any)
	if rl["backend"] != "redis" || rl["status"] != "ok" || rl["breaker"] != "closed" || rl["failure_mode"] != "open" {
		t.Fatalf("rate_limiter %v", rl)
	}
	if pol := rl["policies"].(map[string]any)["chat"].(map[string]any); pol["rate"] != float64(2) || pol["burst"] != float64(2) {
		t.Fatalf("policies %v", rl["policies"])
	}
	if strings.Contains(string(r.raw), redistest.SharedAddr()) {
		t.Fatal("the health report shows the Redis address")
	}
}

func TestLocalLimiterWhenNoRedis(t *testing.T) {
	t.Parallel()
	e := start(t, nil, Deps{})
	r := e.do("GET", "/health", "", nil, nil)
	if rl := r.body["rate_limiter"].(map[string]any); rl["backend"] != "local" || rl["status"] != "ok" {
		t.Fatalf("/health rate_limiter %v", rl)
	}
}

// Redis killed under a gateway: no request fails or waits for it, /health
// says degraded and the fallback is visible, and the gateway is back on
// Redis by itself after Redis restarts.
func TestRedisOutageThroughTheGateway(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	e := redisGateway(t, s.Addr(), map[string]string{"RATE_LIMIT_REDIS_TIMEOUT": "20ms",
		"RATE_LIMIT_BREAKER_OPEN_TIMEOUT": "200ms", "RATE_LIMIT_REPLICAS": "2", "RATE_LIMIT_REQUESTS_PER_MINUTE": "10"})
	s.Kill()
	codes := map[int]int{}
	for i := 0; i < 30; i++ {
		codes[e.do("GET", "/providers", e.keys.reader, nil, nil).status]++
	}
	// The local fallback enforces this replica's share: 10 / 2 replicas.
	if codes[200] != 5 || codes[429] != 25 {
		t.Fatalf("during the outage: %v, want 5×200 and 25×429", codes)
	}
	r := e.do("GET", "/health", "", nil, nil)
	if r.status != 200 || r.body["status"] != "degraded" || r.body["rate_limiter"].(map[string]any)["status"] != "fallback" {
		t.Fatalf("/health during the outage: %d %s", r.status, r.raw)
	}
	if v, _ := e.gw.Metrics.Value("ratelimit_fallback_active"); v != 1 {
		t.Fatalf("ratelimit_fallback_active %v", v)
	}
	s.Start()
	poll.Until(t, 10*time.Second, "back on Redis", func() bool {
		e.do("GET", "/providers", e.keys.admin, nil, nil)
		v, _ := e.gw.Metrics.Value("ratelimit_fallback_active")
		return v == 0
	})
	if r := e.do("GET", "/health", "", nil, nil); r.body["status"] != "healthy" {
		t.Fatalf("/health after Redis healed: %s", r.raw)
	}
}
