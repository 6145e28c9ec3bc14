// Package config is the credential service's typed configuration, parsed
// once from environment variables (see README.md for every variable).
package config

import (
	"fmt"
	"maps"
	"slices"

	"github.com/provcred/platform/config"
)

// Config of the credential service.
type Config struct {
	config.Base
	config.Database
	config.Import
	// Checks configures the verification sources (checks.go).
	Checks
	// Batch configures durable batch credentialing (batch.go).
	Batch
	// Webhooks configures events, webhooks and expirables (webhooks.go).
	Webhooks
	// Imports configures source file imports (imports.go).
	Imports
	// MaxConcurrentBatchRequests: providers verified at once per replica.
	MaxConcurrentBatchRequests int `env:"MAX_CONCURRENT_BATCH_REQUESTS" envDefault:"10" min:"1" max:"1000"`
	// BatchMaxProviders caps one batch or roster.
	BatchMaxProviders int `env:"BATCH_MAX_PROVIDERS" envDefault:"50000" min:"1"`
	// RosterMaxBytes caps a roster CSV upload.
	RosterMaxBytes int64 `env:"ROSTER_MAX_BYTES" envDefault:"67108864" min:"1024"`
}

// Validate checks values the types alone do not.
func (c Config) Validate() error {
	if err := c.Base.Validate(); err != nil {
		return err
	}
	if err := c.Database.Validate(); err != nil {
		return err
	}
	if err := c.Import.Validate(); err != nil {
		return err
	}
	if err := config.Bounds(c); err != nil {
		return err
	}
	if err := c.Checks.Validate(); err != nil {
		return err
	}
	if err := c.Batch.Validate(); err != nil {
		return err
	}
	if err := c.Imports.Validate(); err != nil {
		return err
	}
	if err := c.Webhooks.Validate(); err != nil {
		return err
	}
	// River's rescuer would run a delivery twice at once if a live one
	// outlasted BATCH_RESCUE_STUCK_AFTER (one River client, one setting).
	if c.BatchRescueStuckAfter <= c.DeliveryJobTimeout() {
		return fmt.Errorf("BATCH_RESCUE_STUCK_AFTER: must be longer than a webhook delivery job (WEBHOOK_TIMEOUT + 20%% + 1s = %s), got %s",
			c.DeliveryJobTimeout(), c.BatchRescueStuckAfter)
	}
	return nil
}

// Public is the configuration shown in /health/concurrency: the settings
// themselves (config.Public; LICENSE_VERIFY_URLS and DATABASE_URL are
// secret) and what is derived from them.
func (c Config) Public() map[string]any {
	out := config.Public(c)
	eps, _ := c.LicenseEndpoints()
	out["license_verify_states"] = slices.Sorted(maps.Keys(eps))
	out["webhook_max_attempts"] = c.MaxAttempts()
	return out
}
