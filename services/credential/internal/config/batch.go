package config

// Batch configures durable batch credentialing. Owned by the batch package.
type Batch struct{}

// Validate checks the batch settings.
func (b Batch) Validate() error { return nil }
