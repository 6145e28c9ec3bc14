// Package config holds the gateway's settings, parsed once from the
// environment. The gateway has no database, so no DATABASE_* settings.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/config"

	"github.com/provcred/gateway/internal/auth"
)

// Config is the gateway's configuration.
type Config struct {
	config.Base
	config.Import

	// Listen address; the gateway's own default differs from Base's.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8000"`

	CredentialURL string `env:"CREDENTIAL_URL" envDefault:"http://127.0.0.1:8001" secret:"true"` // where services live: not for the open /health/concurrency
	StatsURL      string `env:"STATS_URL" envDefault:"http://127.0.0.1:8002" secret:"true"`
	ChatURL       string `env:"CHAT_URL" envDefault:"http://127.0.0.1:8003" secret:"true"`

	// UpstreamTimeout is the default per-request timeout towards a service;
	// the per-upstream variables override it when set.
	UpstreamTimeout   time.Duration `env:"UPSTREAM_TIMEOUT" envDefault:"30s" min:">0"`
	CredentialTimeout time.Duration `env:"CREDENTIAL_TIMEOUT" min:"0"`
	StatsTimeout      time.Duration `env:"STATS_TIMEOUT" min:"0"`
	// ChatTimeout bounds a chat answer, streamed ones included: above the
	// chat service's LLM_QUEUE_WAIT + CHAT_TURN_TIMEOUT (10s + 120s).
	ChatTimeout time.Duration `env:"CHAT_TIMEOUT" envDefault:"150s" min:"0"`
	// ImportBodyLimitBytes caps an import upload (0: unlimited).
	ImportBodyLimitBytes int64 `env:"IMPORT_BODY_LIMIT_BYTES" envDefault:"10737418240"`

	MaxConcurrentConnections int `env:"MAX_CONCURRENT_CONNECTIONS" envDefault:"1000" min:"1"`
	// MaxConnsPerIP caps the connections one client address (IPv6: its
	// /64) holds open; TRUSTED_PROXIES are exempt (0: no cap).
	MaxConnsPerIP int `env:"MAX_CONNS_PER_IP" envDefault:"256"`
	RateLimit

	TrustedProxies []string `env:"TRUSTED_PROXIES" envSeparator:","`

	APIKeys     string `env:"API_KEYS" secret:"true"`
	APIKeysFile string `env:"API_KEYS_FILE" secret:"true"`
	// APIKeysReload is how often API_KEYS_FILE is read again for changes
	// (a Kubernetes Secret update), applied without a restart.
	APIKeysReload time.Duration `env:"API_KEYS_RELOAD_INTERVAL" envDefault:"5s"`

	BreakerFailures    uint32        `env:"BREAKER_FAILURES" envDefault:"5" min:"1"`
	BreakerOpenTimeout time.Duration `env:"BREAKER_OPEN_TIMEOUT" envDefault:"10s" min:">0"`

	// HealthTimeout bounds each upstream probe of /health and /health/concurrency.
	HealthTimeout time.Duration `env:"HEALTH_UPSTREAM_TIMEOUT" envDefault:"2s" min:">0"`

	// Parsed forms, filled by Validate.
	Proxies []netip.Prefix `env:"-"`
	Keys    []auth.Key     `env:"-"`
}

// Validate checks every value and fills the parsed fields. Errors name the
// variable so an operator can fix the deployment from the message alone.
func (c *Config) Validate() error {
	c.Base.HTTPAddr = c.HTTPAddr
	if err := c.Base.Validate(); err != nil {
		return err
	}
	if err := c.Import.Validate(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("HTTP_ADDR: want host:port, got %q", c.HTTPAddr)
	}
	for _, u := range []struct{ name, val string }{
		{"CREDENTIAL_URL", c.CredentialURL}, {"STATS_URL", c.StatsURL}, {"CHAT_URL", c.ChatURL},
	} {
		if err := checkURL(u.val); err != nil {
			return fmt.Errorf("%s: %w", u.name, err)
		}
	}
	if err := config.Bounds(c); err != nil {
		return err
	}
	if c.ImportBodyLimitBytes < 0 {
		return fmt.Errorf("IMPORT_BODY_LIMIT_BYTES: must be 0 (unlimited) or positive, got %d", c.ImportBodyLimitBytes)
	}
	if c.MaxConnsPerIP < 0 {
		return fmt.Errorf("MAX_CONNS_PER_IP: must be 0 (no cap) or more, got %d", c.MaxConnsPerIP)
	}
	if err := c.validateRateLimit(); err != nil {
		return err
	}
	c.Proxies = c.Proxies[:0]
	for _, p := range c.TrustedProxies {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		pfx, err := parsePrefix(p)
		if err != nil {
			return fmt.Errorf("TRUSTED_PROXIES: %q is not a CIDR or IP address", p)
		}
		c.Proxies = append(c.Proxies, pfx)
	}
	keys, err := auth.ParseKeys(c.APIKeys, "API_KEYS")
	if err != nil {
		return err
	}
	if c.APIKeysFile != "" {
		b, err := os.ReadFile(c.APIKeysFile)
		if err != nil {
			return fmt.Errorf("API_KEYS_FILE: %w", err)
		}
		more, err := auth.ParseKeys(string(b), "API_KEYS_FILE")
		if err != nil {
			return err
		}
		keys = append(keys, more...)
	}
	if len(keys) == 0 {
		// Every request would be 401: a gateway started by mistake (it once
		// started for `gateway --help`) must not look like a working one.
		return errors.New("API_KEYS/API_KEYS_FILE: no API keys; make one with `gateway keygen --id ID --role admin`")
	}
	if err := auth.CheckUnique(keys); err != nil {
		return fmt.Errorf("API_KEYS/API_KEYS_FILE: %w", err)
	}
	c.Keys = keys
	return nil
}

// Timeout returns the per-request timeout of the named upstream.
func (c *Config) Timeout(upstream string) time.Duration {
	var d time.Duration
	switch upstream {
	case "credential":
		d = c.CredentialTimeout
	case "stats":
		d = c.StatsTimeout
	case "chat":
		d = c.ChatTimeout
	}
	if d <= 0 {
		return c.UpstreamTimeout
	}
	return d
}

// Public is the effective configuration shown in /health/concurrency: the
// settings (config.Public; keys, key files and Redis addresses are secret)
// and what they come to: each upstream's timeout, how many proxies and keys.
func (c *Config) Public() map[string]any {
	out := config.Public(c)
	for _, u := range []string{"credential", "stats", "chat"} {
		out[u+"_timeout"] = c.Timeout(u).String()
	}
	out["trusted_proxies"] = len(c.Proxies)
	out["api_keys"] = len(c.Keys)
	c.rateLimitPublic(out)
	return out
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %q", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("want an http:// or https:// URL, got %q", s)
	}
	if u.Host == "" {
		return fmt.Errorf("missing host in %q", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must not carry a query or fragment: %q", s)
	}
	return nil
}

// parsePrefix accepts a CIDR or a bare address (as a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// UpstreamBreaker is each service's breaker (BREAKER_*). Half-open lets one
// probe through: the upstream has just failed BreakerFailures times.
func (c *Config) UpstreamBreaker() breaker.Settings {
	return breaker.Settings{ConsecutiveFailures: c.BreakerFailures, OpenTimeout: c.BreakerOpenTimeout, HalfOpenRequests: 1}
}

// RateLimitBreaker is the Redis limiter's breaker (RATE_LIMIT_BREAKER_*),
// one probe at a time like the upstreams'.
func (c *Config) RateLimitBreaker() breaker.Settings {
	return breaker.Settings{ConsecutiveFailures: c.RateLimitBreakerFailures, OpenTimeout: c.RateLimitBreakerOpenTimeout, HalfOpenRequests: 1}
}
