package checks

import (
	"context"
	"time"

	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/sources"
)

// checkSAM screens the provider against the SAM.gov exclusions extract
// (rules: checkExclusion; a Termination Date in the past ends an exclusion).
func (e *Engine) checkSAM(ctx context.Context, p *providers.Provider, at time.Time) results.Check {
	return e.checkExclusion(ctx, results.CheckSAM, sources.SAM, p, at)
}
