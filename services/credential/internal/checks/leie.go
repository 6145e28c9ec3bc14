package checks

import (
	"context"
	"time"

	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/sources"
)

// checkLEIE screens the provider against the OIG List of Excluded
// Individuals/Entities (rules: checkExclusion).
func (e *Engine) checkLEIE(ctx context.Context, p *providers.Provider, at time.Time) results.Check {
	return e.checkExclusion(ctx, results.CheckLEIE, sources.LEIE, p, at)
}
