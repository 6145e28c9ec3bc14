package checks

import (
	"context"
	"encoding/json"
	"time"

	"github.com/provcred/credential/internal/npi"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/platform/domain"
)

// checkNPIFormat: 10 digits, first 1 or 2, Luhn check digit with the 80840
// prefix. A malformed NPI fails (and denies): no registry can vouch for it.
func (e *Engine) checkNPIFormat(_ context.Context, p *providers.Provider, at time.Time) results.Check {
	rec, _ := json.Marshal(map[string]string{"npi": p.NPI})
	ev := results.Evidence{Source: "npi_format", MatchedRecord: rec, Digest: sources.Digest(rec), CheckedAt: at}
	if err := npi.Validate(p.NPI); err != nil {
		return results.Check{Outcome: domain.Fail, Detail: "NPI " + err.Error(), Evidence: ev}
	}
	return results.Check{Outcome: domain.Pass, Detail: "NPI is well formed (Luhn check digit with the 80840 prefix)", Evidence: ev}
}
