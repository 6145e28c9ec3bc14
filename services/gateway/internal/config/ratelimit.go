package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/provcred/gateway/internal/ratelimit"
	"github.com/provcred/gateway/internal/routes"
	"github.com/provcred/platform/config"
)

// RateLimit holds the rate limiter's settings (docs/operations.md, "Rate
// limiting"). Without REDIS_URL or REDIS_ADDRS the limiter is in-process,
// per replica.
type RateLimit struct {
	RateLimitRequestsPerMinute int `env:"RATE_LIMIT_REQUESTS_PER_MINUTE" envDefault:"200" min:"1"`
	// RateLimitBurst is how many requests a client may send at once; it
	// defaults to the per-minute figure, so a client may spend its whole
	// minute in one go, as with the original fixed-window limiter.
	RateLimitBurst int `env:"RATE_LIMIT_BURST" min:"0"`
	// The tighter route groups' policies, "RATE/PERIOD[,burst=N]".
	RateLimitChat       string `env:"RATE_LIMIT_CHAT" envDefault:"20/1m,burst=5"`
	RateLimitBatch      string `env:"RATE_LIMIT_BATCH" envDefault:"10/1m,burst=5"`
	RateLimitCredential string `env:"RATE_LIMIT_CREDENTIAL" envDefault:"60/1m,burst=20"`
	RateLimitImport     string `env:"RATE_LIMIT_IMPORT" envDefault:"30/1h,burst=10"`
	// RateLimitMaxKeys bounds the in-process limiter's memory (also the
	// Redis limiter's fallback).
	RateLimitMaxKeys int `env:"RATE_LIMIT_MAX_KEYS" envDefault:"100000" min:"1"`

	RedisURL        string   `env:"REDIS_URL" secret:"true"`
	RedisAddrs      []string `env:"REDIS_ADDRS" envSeparator:"," secret:"true"`
	RedisMasterName string   `env:"REDIS_MASTER_NAME" secret:"true"`
	RedisUsername   string   `env:"REDIS_USERNAME" secret:"true"`
	RedisPassword   string   `env:"REDIS_PASSWORD" secret:"true"`

	RateLimitKeyPrefix    string        `env:"RATE_LIMIT_KEY_PREFIX" envDefault:"provcred:rl:"`
	RateLimitRedisTimeout time.Duration `env:"RATE_LIMIT_REDIS_TIMEOUT" envDefault:"25ms" min:">0"`
	RateLimitFailureMode  string        `env:"RATE_LIMIT_FAILURE_MODE" envDefault:"open"`
	// RateLimitReplicas is what the fallback divides each limit by; 0
	// counts the live replicas through Redis.
	RateLimitReplicas           int           `env:"RATE_LIMIT_REPLICAS" envDefault:"0"`
	RateLimitBreakerFailures    uint32        `env:"RATE_LIMIT_BREAKER_FAILURES" envDefault:"3" min:"1"`
	RateLimitBreakerOpenTimeout time.Duration `env:"RATE_LIMIT_BREAKER_OPEN_TIMEOUT" envDefault:"1s" min:">0"`
	RateLimitLocalCacheSize     int           `env:"RATE_LIMIT_LOCAL_CACHE_SIZE" envDefault:"10000" min:"1"`

	// Parsed forms, filled by validateRateLimit.
	Policies map[string]ratelimit.Policy `env:"-"`
	// Redis is nil when the limiter is in-process.
	Redis *rueidis.ClientOption `env:"-"`
}

func (c *RateLimit) validateRateLimit() error {
	if err := config.Bounds(c); err != nil {
		return err
	}
	if c.RateLimitBurst == 0 {
		c.RateLimitBurst = c.RateLimitRequestsPerMinute
	}
	c.Policies = map[string]ratelimit.Policy{routes.LimitDefault: {Name: routes.LimitDefault,
		Rate: c.RateLimitRequestsPerMinute, Period: time.Minute, Burst: c.RateLimitBurst}}
	for _, g := range []struct{ name, env, val string }{
		{routes.LimitChat, "RATE_LIMIT_CHAT", c.RateLimitChat},
		{routes.LimitBatch, "RATE_LIMIT_BATCH", c.RateLimitBatch},
		{routes.LimitCredential, "RATE_LIMIT_CREDENTIAL", c.RateLimitCredential},
		{routes.LimitImport, "RATE_LIMIT_IMPORT", c.RateLimitImport},
	} {
		p, err := ratelimit.ParsePolicy(g.name, g.val)
		if err != nil {
			return fmt.Errorf("%s: %w", g.env, err)
		}
		c.Policies[g.name] = p
	}
	switch ratelimit.FailureMode(c.RateLimitFailureMode) {
	case ratelimit.FailOpen, ratelimit.FailClosed:
	default:
		return fmt.Errorf("RATE_LIMIT_FAILURE_MODE: must be open or closed, got %q", c.RateLimitFailureMode)
	}
	if c.RateLimitReplicas < 0 {
		return fmt.Errorf("RATE_LIMIT_REPLICAS: must be 0 (count them through Redis) or more, got %d", c.RateLimitReplicas)
	}
	c.Redis = nil
	if strings.TrimSpace(c.RedisURL) == "" && len(c.RedisAddrs) == 0 {
		return nil
	}
	opt, err := ratelimit.ClientOption(strings.TrimSpace(c.RedisURL), c.RedisAddrs, c.RedisMasterName,
		c.RedisUsername, c.RedisPassword, c.RateLimitRedisTimeout)
	if err != nil {
		return fmt.Errorf("REDIS_URL/REDIS_ADDRS: %w", err)
	}
	c.Redis = &opt
	return nil
}

// rateLimitPublic adds what the limiter's settings come to (the parsed
// policies, the backend) to the public configuration; the REDIS_* settings
// are secret (addresses and credentials).
func (c *RateLimit) rateLimitPublic(out map[string]any) {
	backend := "local"
	if c.Redis != nil {
		backend = "redis"
	}
	pol := map[string]string{}
	for n, p := range c.Policies {
		pol[n] = p.String()
	}
	out["rate_limit_policies"] = pol
	out["rate_limit_backend"] = backend
}
