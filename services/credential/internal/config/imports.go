package config

import (
	"fmt"
	"time"

	"github.com/provcred/platform/config"
)

// Imports configures source file imports (docs/sources.md).
type Imports struct {
	// ImportShrinkMinRatio: a full source list with fewer rows than this
	// share of the active version's is refused (409 import_shrink_refused)
	// unless the upload says allow_shrink=true; 0 turns the guard off.
	ImportShrinkMinRatio float64 `env:"IMPORT_SHRINK_MIN_RATIO" envDefault:"0.5"`
	// RescreenJobTimeout bounds one attempt of the re-screen job after an
	// LEIE or SAM import (every provider, by NPI and by name). River rescues
	// an attempt whose process died once this has passed (or
	// BATCH_RESCUE_STUCK_AFTER, whichever is longer).
	RescreenJobTimeout time.Duration `env:"RESCREEN_JOB_TIMEOUT" envDefault:"10m" min:">0"`
}

// Validate checks the import settings.
func (c Imports) Validate() error {
	if c.ImportShrinkMinRatio < 0 || c.ImportShrinkMinRatio > 1 {
		return fmt.Errorf("IMPORT_SHRINK_MIN_RATIO: must be from 0 to 1, got %v", c.ImportShrinkMinRatio)
	}
	return config.Bounds(c)
}
