package checks

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/npi"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/sources/importer"
	"github.com/provcred/credential/internal/sources/leie"
	"github.com/provcred/credential/internal/sources/licenses"
	"github.com/provcred/credential/internal/sources/sam"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/metrics"
)

// kit is one test database with the real importer and provider store.
type kit struct {
	t     testing.TB
	pool  *pgxpool.Pool
	reg   *metrics.Registry
	im    *importer.Importer
	store *providers.Store
	log   *slog.Logger
}

func newKit(t testing.TB) *kit {
	t.Helper()
	pool, _ := testdb.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &kit{t: t, pool: pool, reg: metrics.New("credential"), im: importer.New(pool, log),
		store: providers.NewStore(pool), log: log}
}

// importCSV loads a source file through the sources helper's importer, as production does.
func (k *kit) importCSV(source, file string) int64 {
	k.t.Helper()
	rec, err := k.im.Import(context.Background(), importer.Request{Source: source, FileName: source + ".csv",
		Actor: "test", Body: strings.NewReader(file)})
	if err != nil {
		k.t.Fatalf("import %s: %v", source, err)
	}
	return rec.ID
}

func (k *kit) create(p *providers.Provider) {
	k.t.Helper()
	if _, err := k.store.Create(context.Background(), providers.Actor{ID: "test"}, p); err != nil {
		k.t.Fatalf("create provider %s: %v", p.ID, err)
	}
}

// makeNPI turns a 9-digit base into a valid NPI.
func makeNPI(base9 string) string { return base9 + string(npi.CheckDigit(base9)) }

func date(s string) *providers.Date {
	d, err := providers.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return &d
}

func quoteAll(fields []string) string {
	q := make([]string, len(fields))
	for i, f := range fields {
		q[i] = `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
	}
	return strings.Join(q, ",")
}

// leieRow is an LEIE UPDATED.csv row: every field quoted, missing NPI 0000000000, empty dates 00000000.
type leieRow struct {
	Last, First, Mid, NPI, DOB, ExclType, ExclDate, Rein, Waiver, WvrState string
}

func leieFile(rows ...leieRow) string {
	var b strings.Builder
	b.WriteString(quoteAll(leie.Columns) + "\n")
	for _, r := range rows {
		or := func(s, d string) string {
			if s == "" {
				return d
			}
			return s
		}
		b.WriteString(quoteAll([]string{r.Last, r.First, r.Mid, "", "IND- LIC HC SERV PRO", "NURSE/NURSES AIDE", "",
			or(r.NPI, "0000000000"), or(r.DOB, "00000000"), "1 MAIN ST", "SPRINGFIELD", "IL", "62701",
			or(r.ExclType, "1128a1"), or(r.ExclDate, "20200115"), or(r.Rein, "00000000"), or(r.Waiver, "00000000"), r.WvrState}) + "\n")
	}
	return b.String()
}

// samRow is a SAM.gov extract row (dates MM/DD/YYYY, Termination Date may be Indefinite).
type samRow struct {
	First, Last, NPI, Active, Term string
}

func samFile(rows ...samRow) string {
	var b strings.Builder
	b.WriteString(quoteAll(sam.Columns) + "\n")
	for _, r := range rows {
		rec := make([]string, len(sam.Columns))
		set := func(col, v string) {
			for i, c := range sam.Columns {
				if c == col {
					rec[i] = v
				}
			}
		}
		set("Classification", "Individual")
		set("First", r.First)
		set("Last", r.Last)
		set("Exclusion Type", "Ineligible (Proceedings Completed)")
		set("Active Date", r.Active)
		set("Termination Date", r.Term)
		set("Record Status", "Active")
		set("NPI", r.NPI)
		set("Excluding Agency", "HHS")
		set("Creation_Date", "01/02/2020")
		b.WriteString(quoteAll(rec) + "\n")
	}
	return b.String()
}

// nppesRow is an NPPES bulk row (the columns the importer reads, by name).
type nppesRow struct {
	NPI, Entity, Last, First, Middle, Suffix, Deact, React string
}

var nppesHeader = []string{"NPI", "Entity Type Code", "Provider Organization Name (Legal Business Name)",
	"Provider Last Name (Legal Name)", "Provider First Name", "Provider Middle Name", "Provider Name Suffix Text",
	"Provider Credential Text", "Provider Business Practice Location Address State Name", "Provider Enumeration Date",
	"NPI Deactivation Date", "NPI Reactivation Date", "Healthcare Provider Taxonomy Code_1",
	"Healthcare Provider Primary Taxonomy Switch_1", "Provider License Number_1", "Provider License Number State Code_1"}

func nppesFile(rows ...nppesRow) string {
	var b strings.Builder
	b.WriteString(quoteAll(nppesHeader) + "\n")
	for _, r := range rows {
		org := ""
		if r.Entity == "2" {
			org = r.Last
		}
		b.WriteString(quoteAll([]string{r.NPI, r.Entity, org, r.Last, r.First, r.Middle, r.Suffix, "M.D.", "IL",
			"05/23/2005", r.Deact, r.React, "207Q00000X", "Y", "036123456", "IL"}) + "\n")
	}
	return b.String()
}

// licRow is a license roster row (docs/sources.md columns).
type licRow struct {
	State, Number, Status, Expiry, Last, First, Middle, NPI string
}

func licenseFile(rows ...licRow) string {
	var b strings.Builder
	b.WriteString(strings.Join(licenses.Columns, ",") + "\n")
	for _, r := range rows {
		b.WriteString(quoteAll([]string{r.State, r.Number, "MD", r.Status, "2015-01-01", r.Expiry, r.Last, r.First, r.Middle, r.NPI}) + "\n")
	}
	return b.String()
}

func (k *kit) engine(o Options) *Engine {
	o.DB, o.Metrics, o.Log = k.pool, k.reg, k.log
	return New(o)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return v
}

var _ = time.Now
