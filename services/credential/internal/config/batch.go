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
	BatchJobTimeout time.Duration `env:"BATCH_JOB_TIMEOUT" envDefault:"2m" min:">0"`
	// BatchRescueStuckAfter is how long a job may stay `running` before
	// River's rescuer assumes its replica died and makes it available again.
	// It must exceed BATCH_JOB_TIMEOUT, or live jobs would be run twice.
	BatchRescueStuckAfter time.Duration `env:"BATCH_RESCUE_STUCK_AFTER" envDefault:"10m" min:">0"`
	// BatchSnoozeBase is the first wait before retrying a provider whose
	// result was `incomplete` (a source was down); it doubles per attempt.
	BatchSnoozeBase time.Duration `env:"BATCH_SNOOZE_BASE" envDefault:"30s" min:">0"`
	// BatchSnoozeMax caps that wait.
	BatchSnoozeMax time.Duration `env:"BATCH_SNOOZE_MAX" envDefault:"15m" min:">0"`
	// BatchMaxAttempts is how many times a provider is tried before its
	// item ends `incomplete` (or `failed` when the engine kept erroring).
	BatchMaxAttempts int `env:"BATCH_MAX_ATTEMPTS" envDefault:"5" min:"1" max:"100"`
	// BatchWaitMax bounds `?wait=` on POST /batch-credential.
	BatchWaitMax time.Duration `env:"BATCH_WAIT_MAX" envDefault:"60s" min:">0" max:"10m"`
	// BatchMetricsInterval is how often the queue depth and oldest job age
	// are sampled from River's job table.
	BatchMetricsInterval time.Duration `env:"BATCH_METRICS_INTERVAL" envDefault:"15s" min:">0"`
	// BatchWorkersEnabled: false makes this replica insert-only (it accepts
	// batches but works no jobs).
	BatchWorkersEnabled bool `env:"BATCH_WORKERS_ENABLED" envDefault:"true"`
}

// Validate checks the batch settings; errors name the variable.
func (b Batch) Validate() error {
	if err := config.Bounds(b); err != nil {
		return err
	}
	if b.BatchRescueStuckAfter <= b.BatchJobTimeout {
		return fmt.Errorf("BATCH_RESCUE_STUCK_AFTER: must be longer than BATCH_JOB_TIMEOUT (%s), got %s",
			b.BatchJobTimeout, b.BatchRescueStuckAfter)
	}
	if b.BatchSnoozeMax < b.BatchSnoozeBase {
		return fmt.Errorf("BATCH_SNOOZE_MAX: must be at least BATCH_SNOOZE_BASE (%s), got %s", b.BatchSnoozeBase, b.BatchSnoozeMax)
	}
	return nil
}
