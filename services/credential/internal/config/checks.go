package config

// Checks configures the verification sources. Owned by the check engine.
type Checks struct{}

// Validate checks the source settings.
func (c Checks) Validate() error { return nil }
