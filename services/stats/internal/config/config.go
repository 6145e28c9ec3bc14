// Package config is the stats service's typed configuration.
package config

import "github.com/provcred/platform/config"

// Config of the stats service.
type Config struct {
	config.Base
	// ReplicaURL points at a read replica; reports never load the primary.
	// Empty means DATABASE_URL.
	ReplicaURL string `env:"STATS_DATABASE_URL"`
	// CredentialSchema is where the credential service keeps its tables.
	CredentialSchema string `env:"CREDENTIAL_SCHEMA" envDefault:"credential"`
}

// Validate checks the settings.
func (c Config) Validate() error { return c.Base.Validate() }

// Public is the configuration shown in /health/concurrency.
func (c Config) Public() map[string]any {
	return map[string]any{"read_replica": c.ReplicaURL != "", "credential_schema": c.CredentialSchema,
		"database_max_conns": c.DatabaseMaxConns}
}
