// Package seed builds the data tests and benchmarks load: source files in
// the publishers' formats from a few fields per row (LEIE, SAM, NPPES,
// Licenses), providers with valid NPIs whose NPPES and license records match
// (Providers, Files), so the real check engine approves them once the files
// are loaded through the sources importer (Load), and a stand-in NPI
// Registry (Registry). It is the one seeding kit of the credential tests.
package seed

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/sources/importer"
)

// Provider is one generated provider.
type Provider struct {
	ID, NPI, First, Last, LicenseState, LicenseNumber string
}

// Providers makes n providers with valid NPIs, ids <prefix><i>.
func Providers(prefix string, n int) []Provider {
	out := make([]Provider, n)
	for i := range n {
		out[i] = Provider{ID: fmt.Sprintf("%s%05d", prefix, i), NPI: NPI(fmt.Sprintf("1%08d", 20000000+i)),
			First: "Alex", Last: "Tester" + letters(i), LicenseState: "IL", LicenseNumber: fmt.Sprintf("L%06d", i)}
	}
	return out
}

// letters spells i in letters, so names stay valid (no digits).
func letters(i int) string {
	s := ""
	for {
		s = string(rune('a'+i%26)) + s
		i /= 26
		if i == 0 {
			return s
		}
	}
}

// Roster is a roster CSV of ps (see package roster).
func Roster(ps []Provider) string {
	var b strings.Builder
	b.WriteString("id,npi,first_name,last_name,license_state,license_number,license_expires_on\n")
	for _, p := range ps {
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s,2031-12-31\n", p.ID, p.NPI, p.First, p.Last, p.LicenseState, p.LicenseNumber)
	}
	return b.String()
}

// Create stores ps through the providers store (one transaction).
func Create(ctx context.Context, pool *pgxpool.Pool, ps []Provider) error {
	in := make([]*providers.Provider, len(ps))
	for i, p := range ps {
		exp, err := providers.ParseDate("2031-12-31")
		if err != nil {
			return err
		}
		in[i] = &providers.Provider{ID: p.ID, NPI: p.NPI, FirstName: p.First, LastName: p.Last,
			Licenses: []providers.License{{State: p.LicenseState, Number: p.LicenseNumber, ExpiresOn: &exp}}}
	}
	_, err := providers.NewStore(pool).Upsert(ctx, providers.Actor{ID: "seed"}, in)
	return err
}

// Files returns LEIE, SAM, NPPES and license files: the exclusion lists
// name one unrelated person; NPPES and the license roster hold ps, active.
func Files(ps []Provider) map[string]string {
	nppes := make([]NPPESRow, len(ps))
	lic := make([]LicenseRow, len(ps))
	for i, p := range ps {
		nppes[i] = NPPESRow{NPI: p.NPI, Entity: "1", Last: p.Last, First: p.First,
			LicenseNumber: p.LicenseNumber, LicenseState: p.LicenseState}
		lic[i] = LicenseRow{State: p.LicenseState, Number: p.LicenseNumber, Status: "Active", Expiry: "2031-12-31",
			Last: p.Last, First: p.First, NPI: p.NPI}
	}
	return map[string]string{
		"leie":     LEIE(LEIERow{Last: "NOBODY", First: "NEMO", DOB: "19600101"}),
		"sam":      SAM(SAMRow{First: "Nemo", Last: "Nobody", Active: "01/02/2020", Term: "Indefinite"}),
		"nppes":    NPPES(nppes...),
		"licenses": Licenses(lic...),
	}
}

// Load imports Files(ps) through the sources importer, as production does.
func Load(ctx context.Context, pool *pgxpool.Pool, ps []Provider, log *slog.Logger) error {
	im := importer.New(pool, log)
	for _, src := range []string{"leie", "sam", "nppes", "licenses"} {
		if _, err := im.Import(ctx, importer.Request{Source: src, FileName: src + ".csv", Actor: "seed",
			Body: strings.NewReader(Files(ps)[src])}); err != nil {
			return fmt.Errorf("import %s: %w", src, err)
		}
	}
	return nil
}

// Registry is a stand-in NPI Registry (API v2.1 wire format) that knows ps
// and answers every lookup after Delay: the fixed per-provider latency the
// batch tests and benchmark measure against.
type Registry struct {
	Delay  time.Duration
	byNPI  map[string]Provider
	served atomic.Int64
}

// NewRegistry serves ps.
func NewRegistry(ps []Provider, delay time.Duration) *Registry {
	r := &Registry{Delay: delay, byNPI: make(map[string]Provider, len(ps))}
	for _, p := range ps {
		r.byNPI[p.NPI] = p
	}
	return r
}

// Served counts lookups answered.
func (r *Registry) Served() int64 { return r.served.Load() }

// ServeHTTP answers GET /api/?version=2.1&number=N.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	select {
	case <-time.After(r.Delay):
	case <-req.Context().Done():
		return
	}
	r.served.Add(1)
	w.Header().Set("Content-Type", "application/json")
	num := req.URL.Query().Get("number")
	p, ok := r.byNPI[num]
	if !ok {
		_, _ = w.Write([]byte(`{"result_count":0,"results":[]}`))
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"result_count": 1,
		"results": []any{map[string]any{
			"number": p.NPI, "enumeration_type": "NPI-1", "last_updated_epoch": "1700000000000",
			"basic": map[string]any{"first_name": strings.ToUpper(p.First), "last_name": strings.ToUpper(p.Last),
				"credential": "M.D.", "status": "A", "enumeration_date": "2005-05-23", "sex": "F"},
			"addresses":  []any{map[string]any{"address_purpose": "LOCATION", "state": p.LicenseState}},
			"taxonomies": []any{map[string]any{"code": "207Q00000X", "desc": "Family Medicine", "primary": true, "state": p.LicenseState, "license": p.LicenseNumber}},
		}},
	})
}
