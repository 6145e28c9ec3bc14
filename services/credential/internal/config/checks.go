package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/provcred/credential/internal/sources/licenses"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/config"
)

// Checks configures the verification sources the check engine consults.
type Checks struct {
	// NPPESMode is "table" (the imported bulk file) or "api" (the live NPI Registry).
	NPPESMode string `env:"NPPES_MODE" envDefault:"table"`
	// NPPESAPIURL is the NPI Registry base URL; the client calls {url}/api/?version=2.1&number=N.
	NPPESAPIURL string `env:"NPPES_API_URL" envDefault:"https://npiregistry.cms.hhs.gov"`
	// NPPESTimeout bounds one NPI Registry attempt.
	NPPESTimeout time.Duration `env:"NPPES_TIMEOUT" envDefault:"5s" min:">0"`
	// NPPESRetries is how many times a timed-out or 5xx NPI Registry call is retried.
	NPPESRetries int `env:"NPPES_RETRIES" envDefault:"2" min:"0" max:"10"`
	// NPPESBackoff is the wait before the first retry, doubled for each next one; 0 retries at once.
	NPPESBackoff time.Duration `env:"NPPES_BACKOFF" envDefault:"200ms" min:"0"`
	// NPPESMaxWait bounds the wait for a permit of the NPI Registry
	// semaphore (2 × MAX_CONCURRENT_BATCH_REQUESTS calls in flight).
	NPPESMaxWait time.Duration `env:"NPPES_MAX_WAIT" envDefault:"10s" min:">0"`
	// NPPESCacheTTL keeps the records the NPI Registry found this long; 0 disables the cache.
	NPPESCacheTTL time.Duration `env:"NPPES_CACHE_TTL" envDefault:"5m" min:"0"`
	// NPPESCacheSize bounds the cache's records.
	NPPESCacheSize int `env:"NPPES_CACHE_SIZE" envDefault:"10000" min:"1"`
	// LicenseVerifyURLs lists per-state license verification endpoints,
	// "CA=https://...,NY=https://..."; states not listed use the imported roster.
	LicenseVerifyURLs string `env:"LICENSE_VERIFY_URLS" secret:"true"`
	// LicenseStatusWords adds to or changes the default status table
	// (licenses.DefaultStatusWords, docs/verification.md): "Word=class,...",
	// class one of active, expired, revoked, suspended, probation, inactive,
	// surrendered. A status no entry lists needs review.
	LicenseStatusWords string `env:"LICENSE_STATUS_WORDS"`
	// LicenseVerifyTimeout bounds one state endpoint call.
	LicenseVerifyTimeout time.Duration `env:"LICENSE_VERIFY_TIMEOUT" envDefault:"5s" min:">0"`
	// SourceQueryTimeout bounds one check's queries of the imported sources.
	SourceQueryTimeout time.Duration `env:"SOURCE_QUERY_TIMEOUT" envDefault:"5s" min:">0"`
	// CheckConcurrency is each check's semaphore capacity (check_nppes, check_leie, ...).
	CheckConcurrency int `env:"CHECK_CONCURRENCY" envDefault:"32" min:"1" max:"10000"`
	// CheckMaxWait bounds the wait for a check's permit; past it the check is unavailable.
	CheckMaxWait time.Duration `env:"CHECK_MAX_WAIT" envDefault:"10s" min:">0"`
	// Breaker settings for remote sources (state license endpoints, the NPI Registry).
	BreakerConsecutiveFailures uint32        `env:"BREAKER_CONSECUTIVE_FAILURES" envDefault:"5" min:"1"`
	BreakerOpenTimeout         time.Duration `env:"BREAKER_OPEN_TIMEOUT" envDefault:"30s" min:">0"`
	BreakerHalfOpenRequests    uint32        `env:"BREAKER_HALF_OPEN_REQUESTS" envDefault:"1" min:"1"`
}

// Breaker is the breaker of every remote source (state license endpoints,
// the NPI Registry).
func (c Checks) Breaker() breaker.Settings {
	return breaker.Settings{ConsecutiveFailures: c.BreakerConsecutiveFailures, OpenTimeout: c.BreakerOpenTimeout,
		HalfOpenRequests: c.BreakerHalfOpenRequests}
}

// Defaults is every setting at its struct-tag default (tests and benchmarks).
func Defaults() Config {
	c, err := config.Parse[Config](map[string]string{})
	if err != nil {
		panic(err) // the tags themselves are invalid: a programming error
	}
	return c
}

var stateCode = regexp.MustCompile(`^[A-Z]{2}$`)

// LicenseEndpoints parses LICENSE_VERIFY_URLS into state → base URL.
func (c Checks) LicenseEndpoints() (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(c.LicenseVerifyURLs, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		state, u, ok := strings.Cut(pair, "=")
		state = strings.ToUpper(strings.TrimSpace(state))
		u = strings.TrimSpace(u)
		if !ok || !stateCode.MatchString(state) {
			return nil, fmt.Errorf("LICENSE_VERIFY_URLS: %q is not STATE=URL with a two-letter state", redact(pair))
		}
		if _, dup := out[state]; dup {
			return nil, fmt.Errorf("LICENSE_VERIFY_URLS: state %s is listed twice", state)
		}
		if err := httpURL(u); err != nil {
			return nil, fmt.Errorf("LICENSE_VERIFY_URLS: %s: %w", state, err)
		}
		out[state] = u
	}
	return out, nil
}

func httpURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http(s) URL, got %q", redact(s))
	}
	return nil
}

// userinfo is the user:password@ part of a URL, wherever it sits in s.
var userinfo = regexp.MustCompile(`//[^/@\s]*@`)

// redact hides a URL's credentials before it is quoted in an error (errors
// reach the startup log): endpoints may carry basic auth.
func redact(s string) string { return userinfo.ReplaceAllString(s, "//xxxxx@") }

// LicenseStatuses is the status table: the documented defaults with
// LICENSE_STATUS_WORDS applied.
func (c Checks) LicenseStatuses() (licenses.StatusTable, error) {
	t, err := licenses.NewStatusTable(c.LicenseStatusWords)
	if err != nil {
		return t, fmt.Errorf("LICENSE_STATUS_WORDS: %w", err)
	}
	return t, nil
}

// Validate checks the source settings, naming the variable at fault.
func (c Checks) Validate() error {
	if err := config.Bounds(c); err != nil {
		return err
	}
	switch c.NPPESMode {
	case "table", "api":
	default:
		return fmt.Errorf("NPPES_MODE: must be table or api, got %q", c.NPPESMode)
	}
	if c.NPPESMode == "api" {
		if err := httpURL(c.NPPESAPIURL); err != nil {
			return fmt.Errorf("NPPES_API_URL: %w", err)
		}
	}
	if _, err := c.LicenseEndpoints(); err != nil {
		return err
	}
	if _, err := c.LicenseStatuses(); err != nil {
		return err
	}
	return nil
}
