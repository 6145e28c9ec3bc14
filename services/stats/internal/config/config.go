// Package config is the stats service's typed configuration.
package config

import (
	"fmt"
	"time"

	"github.com/provcred/platform/config"
)

// Config of the stats service.
type Config struct {
	config.Base
	config.Database
	// ReplicaURL points at a read replica; reports never load the primary.
	// Empty means DATABASE_URL. It may hold a password.
	ReplicaURL string `env:"STATS_DATABASE_URL" secret:"true"`
	// ReportingSchema holds the credential service's reporting views, the
	// only relations the stats service reads (docs/reporting.md).
	ReportingSchema string `env:"REPORTING_SCHEMA" envDefault:"reporting"`
	// StatementTimeout bounds every report query on the replica.
	StatementTimeout time.Duration `env:"STATS_STATEMENT_TIMEOUT" envDefault:"10s" min:">0"`
	// CacheTTL is how long one report answer is served again (0: never
	// cached; concurrent identical requests still share one query).
	CacheTTL time.Duration `env:"STATS_CACHE_TTL" envDefault:"30s"`
	// CacheMaxEntries bounds the answers kept (least recently used go first).
	CacheMaxEntries int `env:"STATS_CACHE_MAX_ENTRIES" envDefault:"1000" min:"1"`
	// VerificationMaxAge: a provider's last verification older than this is
	// stale in /stats/summary and /stats/expiring?kind=verification. The
	// credential service has a setting of the same name and default (its
	// providers API and verification.stale events): set both together.
	VerificationMaxAge time.Duration `env:"VERIFICATION_MAX_AGE" envDefault:"2880h" min:">0"`
}

// Validate checks the settings.
func (c Config) Validate() error {
	if err := c.Base.Validate(); err != nil {
		return err
	}
	if err := c.Database.Validate(); err != nil {
		return err
	}
	if err := config.Bounds(c); err != nil {
		return err
	}
	if c.StatementTimeout >= c.RequestTimeout {
		return fmt.Errorf("STATS_STATEMENT_TIMEOUT: must be shorter than REQUEST_TIMEOUT (%s), got %s", c.RequestTimeout, c.StatementTimeout)
	}
	if c.CacheTTL < 0 {
		return fmt.Errorf("STATS_CACHE_TTL: must be 0 (off) or a positive duration, got %s", c.CacheTTL)
	}
	if c.ReportingSchema == "" {
		return fmt.Errorf("REPORTING_SCHEMA: must not be empty")
	}
	return nil
}

// Public is the configuration shown in /health/concurrency: the settings
// (config.Public) and whether a read replica is set.
func (c Config) Public() map[string]any {
	out := config.Public(c)
	out["read_replica"] = c.ReplicaURL != ""
	return out
}

// Defaults is every setting at its struct-tag default (tests and benchmarks).
func Defaults() Config {
	c, err := config.Parse[Config](map[string]string{})
	if err != nil {
		panic(err) // the tags themselves are invalid: a programming error
	}
	return c
}
