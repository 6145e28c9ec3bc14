package config

import (
	"fmt"
	"time"

	"github.com/provcred/platform/config"
)

// Batch configures durable batch credentialing (package batch, River queue
// `credential_batch`). MAX_CONCURRENT_BATCH_REQUESTS (the workers per
// replica) and BATCH_MAX_PROVIDERS live in config.go.
type Batch struct {
	// BatchJobTimeout bounds one provider's verification inside a job; past
	// it the job's context is cancelled and River retries it.
	BatchJobTimeout time.Duration `env:"BATCH_JOB_TIMEOUT" envDefault:"2m"`
	// BatchRescueStuckAfter is how long a job may stay `running` before
	// River's rescuer assumes its replica died and makes it available again.
	// It must exceed BATCH_JOB_TIMEOUT, or live jobs would be run twice.
	BatchRescueStuckAfter time.Duration `env:"BATCH_RESCUE_STUCK_AFTER" envDefault:"10m"`
	// BatchSnoozeBase is the first wait before retrying a provider whose
	// result was `incomplete` (a source was down); it doubles per attempt.
	BatchSnoozeBase time.Duration `env:"BATCH_SNOOZE_BASE" envDefault:"30s"`
	// BatchSnoozeMax caps that wait.
	BatchSnoozeMax time.Duration `env:"BATCH_SNOOZE_MAX" envDefault:"15m"`
	// BatchMaxAttempts is how many times a provider is tried before its
	// item ends `incomplete` (or `failed` when the engine kept erroring).
	BatchMaxAttempts int `env:"BATCH_MAX_ATTEMPTS" envDefault:"5"`
	// BatchWaitMax bounds `?wait=` on POST /batch-credential.
	BatchWaitMax time.Duration `env:"BATCH_WAIT_MAX" envDefault:"60s"`
	// BatchMetricsInterval is how often the queue depth and oldest job age
	// are sampled from River's job table.
	BatchMetricsInterval time.Duration `env:"BATCH_METRICS_INTERVAL" envDefault:"15s"`
	// BatchWorkersEnabled: false makes this replica insert-only (it accepts
	// batches but works no jobs).
	BatchWorkersEnabled bool `env:"BATCH_WORKERS_ENABLED" envDefault:"true"`
}

// Validate checks the batch settings; errors name the variable.
func (b Batch) Validate() error {
	if err := config.Positive("BATCH_JOB_TIMEOUT", b.BatchJobTimeout, "BATCH_RESCUE_STUCK_AFTER", b.BatchRescueStuckAfter,
		"BATCH_SNOOZE_BASE", b.BatchSnoozeBase, "BATCH_SNOOZE_MAX", b.BatchSnoozeMax, "BATCH_WAIT_MAX", b.BatchWaitMax,
		"BATCH_METRICS_INTERVAL", b.BatchMetricsInterval); err != nil {
		return err
	}
	if b.BatchRescueStuckAfter <= b.BatchJobTimeout {
		return fmt.Errorf("BATCH_RESCUE_STUCK_AFTER: must be longer than BATCH_JOB_TIMEOUT (%s), got %s",
			b.BatchJobTimeout, b.BatchRescueStuckAfter)
	}
	if b.BatchSnoozeMax < b.BatchSnoozeBase {
		return fmt.Errorf("BATCH_SNOOZE_MAX: must be at least BATCH_SNOOZE_BASE (%s), got %s", b.BatchSnoozeBase, b.BatchSnoozeMax)
	}
	if b.BatchMaxAttempts < 1 || b.BatchMaxAttempts > 100 {
		return fmt.Errorf("BATCH_MAX_ATTEMPTS: must be from 1 to 100, got %d", b.BatchMaxAttempts)
	}
	if b.BatchWaitMax > 10*time.Minute {
		return fmt.Errorf("BATCH_WAIT_MAX: must be at most 10m, got %s", b.BatchWaitMax)
	}
	return nil
}
