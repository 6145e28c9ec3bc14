// Package gen writes consistent, deterministic demo and test data for the
// verification pipeline: a provider roster and the source files that verify
// it (NPPES bulk CSV, OIG LEIE UPDATED.csv, SAM.gov exclusions extract, a
// state license roster), with seeded edge cases and an expected.csv of the
// decision each provider should get. The same seed and as-of date always
// give the same bytes.
package gen

import (
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/provcred/credential/internal/names"
	"github.com/provcred/credential/internal/npi"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/leie"
	"github.com/provcred/credential/internal/sources/licenses"
	"github.com/provcred/credential/internal/sources/sam"
	"github.com/provcred/platform/domain"
)

// Case is the situation a provider was generated in.
type Case string

// The seeded cases. Expected decisions follow the product brief: denied only
// for an exclusion matched by NPI or a revoked/expired license; anything
// unclear is needs_review; an exclusion that no longer applies is no exclusion.
const (
	Clean             Case = "clean"
	ExcludedLEIE      Case = "excluded_leie_npi"
	ExcludedSAM       Case = "excluded_sam_npi"
	LEIENameDOB       Case = "leie_name_dob_only"
	LEIEReinstated    Case = "leie_reinstated"
	LEIEWaiver        Case = "leie_waiver"
	SAMTerminated     Case = "sam_terminated"
	LicenseExpired    Case = "license_expired"
	LicenseRevoked    Case = "license_revoked"
	LicenseOtherState Case = "license_other_state"
	NPIDeactivated    Case = "npi_deactivated"
	NameCase          Case = "name_case"
	NamePunctuation   Case = "name_punctuation"
	NameSuffix        Case = "name_suffix"
	NameMiddleInitial Case = "name_middle_initial"
)

// Expectation is what the engine should decide for a case, and why.
type Expectation struct {
	Decision domain.Decision
	Reason   string
}

// Expected maps every case to its expected decision.
var Expected = map[Case]Expectation{
	Clean:             {domain.Approved, "NPPES, LEIE, SAM and license all agree"},
	ExcludedLEIE:      {domain.Denied, "LEIE row with the provider's NPI, not reinstated"},
	ExcludedSAM:       {domain.Denied, "SAM row with the provider's NPI, Termination Date Indefinite"},
	LEIENameDOB:       {domain.NeedsReview, "LEIE row with NPI 0000000000 matching last+first name and DOB"},
	LEIEReinstated:    {domain.Approved, "LEIE row with the provider's NPI but a REINDATE in the past: no longer excluded"},
	LEIEWaiver:        {domain.NeedsReview, "LEIE row with the provider's NPI and a WAIVERDATE in the past (WVRSTATE = the license state): not an exclusion in force, but a human confirms the waiver covers the practice"},
	SAMTerminated:     {domain.Approved, "SAM row with the provider's NPI and a Termination Date in the past: no longer excluded"},
	LicenseExpired:    {domain.Denied, "license roster: status expired, expiration date in the past"},
	LicenseRevoked:    {domain.Denied, "license roster: status revoked"},
	LicenseOtherState: {domain.NeedsReview, "license number found only in another state than the one claimed"},
	NPIDeactivated:    {domain.NeedsReview, "NPPES: NPI deactivated (no reactivation); the NPPES check fails, which is not a denial reason"},
	NameCase:          {domain.Approved, "roster name in lower case, sources in upper case"},
	NamePunctuation:   {domain.Approved, "roster drops the apostrophe/hyphen/period the sources have"},
	NameSuffix:        {domain.Approved, "roster appends the suffix to the last name ('Smith Jr.'), NPPES has it in the suffix column"},
	NameMiddleInitial: {domain.Approved, "roster has the middle initial, the sources the full middle name"},
}

var edgeCases = []Case{ExcludedLEIE, ExcludedSAM, LEIENameDOB, LEIEReinstated, LEIEWaiver, SAMTerminated,
	LicenseExpired, LicenseRevoked, LicenseOtherState, NPIDeactivated, NameCase, NamePunctuation, NameSuffix,
	NameMiddleInitial}

// Options size and seed the data. New takes them as given: start from
// DefaultOptions.
type Options struct {
	Providers int
	Seed      uint64
	// AsOf is the day the data is "current" on: expiries, exclusions and
	// reinstatements are placed relative to it (its time of day is dropped).
	AsOf time.Time
	// EdgeRate is the share of providers given an edge case (at least one of
	// each case when there are enough providers).
	EdgeRate float64
	// Extra rows of unrelated records in each source, as in the real files.
	NPPESExtra, LEIEExtra, SAMExtra, LicenseExtra int
	// Deltas also writes the files published between full lists: the LEIE
	// supplements of the month before AsOf and the NPPES increment of the
	// week before it (deltas.go).
	Deltas bool
	// Windows1252 writes the license roster in Windows-1252 with a trailing
	// DOS end-of-file byte, as an old Windows export would.
	Windows1252 bool
}

// Provider is one roster provider, with the source spelling of its name.
type Provider struct {
	ID, NPI                     string
	First, Middle, Last, Suffix string // as the roster spells it
	// SrcFirst... are as the sources (NPPES, LEIE, SAM, license board) spell it.
	SrcFirst, SrcMiddle, SrcLast, SrcSuffix string
	DOB                                     time.Time
	Spec                                    specialty
	LicenseState, LicenseNumber             string
	LicenseIssued, LicenseExpires           time.Time
	DEA                                     string
	Case                                    Case
}

// Generator holds the roster; the source writers stream the rest.
type Generator struct {
	o         Options
	Providers []Provider
	used      map[string]bool // normalized last|first of roster names: unrelated rows avoid them
}

// DefaultOptions are the options for a roster of providers (seed 0): the
// data current today (UTC), an edge case for 15% of the providers, and
// unrelated rows in each source as in the real files: NPPES 2×providers,
// LEIE 1× (at least 20), SAM and licenses 0.5× (at least 10).
func DefaultOptions(providers int) Options {
	return Options{Providers: providers, AsOf: time.Now().UTC(), EdgeRate: 0.15,
		NPPESExtra: 2 * providers, LEIEExtra: max(providers, 20),
		SAMExtra: max(providers/2, 10), LicenseExtra: max(providers/2, 10)}
}

// New builds the roster for o, taken as given (0 extra rows are none).
func New(o Options) *Generator {
	o.AsOf = time.Date(o.AsOf.Year(), o.AsOf.Month(), o.AsOf.Day(), 0, 0, 0, 0, time.UTC)
	g := &Generator{o: o, used: map[string]bool{}}
	r := g.rng(0)
	cases := make([]Case, o.Providers)
	for i := range cases {
		cases[i] = Clean
	}
	edges := int(float64(o.Providers) * o.EdgeRate)
	if edges < len(edgeCases) {
		edges = min(len(edgeCases), o.Providers)
	}
	for k, pos := range r.Perm(o.Providers)[:edges] {
		cases[pos] = edgeCases[k%len(edgeCases)]
	}
	width := max(3, len(fmt.Sprint(o.Providers)))
	for i := 0; i < o.Providers; i++ {
		g.Providers = append(g.Providers, g.provider(r, i, width, cases[i]))
	}
	return g
}

// rng gives each output its own stream, so a file's bytes do not depend on
// which other files were written first.
func (g *Generator) rng(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(g.o.Seed, stream*0x9E3779B97F4A7C15+1))
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// NPIFor returns the index-th valid type-1 (individual) or type-2 NPI: an
// affine bijection on 8 digits (39916801 is coprime with 10^8) gives
// distinct, scattered numbers; the 10th digit is the Luhn check digit.
func NPIFor(entity int, index int, seed uint64) string {
	body := (uint64(index)*39916801 + seed*104729) % 100000000
	first9 := fmt.Sprintf("%d%08d", entity, body)
	return first9 + string(npi.CheckDigit(first9))
}

func nameKey(last, first string) string { return names.Part(last) + "|" + names.Part(first) }

func (g *Generator) provider(r *rand.Rand, i, width int, c Case) Provider {
	p := Provider{ID: fmt.Sprintf("provider_%0*d", width, i+1), NPI: NPIFor(1, i, g.o.Seed), Case: c}
	for try := 0; ; try++ {
		p.SrcFirst, p.SrcLast = pick(r, firstNames), pick(r, lastNames)
		if c == NamePunctuation {
			p.SrcLast = pick(r, punctuated)[0]
		}
		if try > 5 {
			p.SrcLast += "-" + pick(r, lastNames) // keep roster names distinct
		}
		if !g.used[nameKey(p.SrcLast, p.SrcFirst)] {
			break
		}
	}
	g.used[nameKey(p.SrcLast, p.SrcFirst)] = true
	p.SrcMiddle = pick(r, middleNames)
	if r.IntN(10) == 0 {
		p.SrcSuffix = pick(r, []string{"Jr.", "Sr.", "II", "III"})
	}
	p.First, p.Middle, p.Last, p.Suffix = p.SrcFirst, p.SrcMiddle, p.SrcLast, p.SrcSuffix
	switch c {
	case NameCase:
		p.First, p.Last, p.Middle = strings.ToLower(p.First), strings.ToLower(p.Last), strings.ToLower(p.Middle)
	case NamePunctuation:
		for _, pp := range punctuated {
			if pp[0] == p.SrcLast {
				p.Last = pp[1]
			}
		}
	case NameSuffix:
		p.SrcSuffix = pick(r, []string{"Jr.", "III"})
		p.Suffix = ""
		p.Last = p.SrcLast + " " + p.SrcSuffix
	case NameMiddleInitial:
		p.SrcMiddle = pick(r, []string{"Quincy", "Alexander", "Elizabeth", "Marie", "Joseph"})
		p.Middle = p.SrcMiddle[:1] + "."
	}
	asOf := g.o.AsOf
	p.DOB = time.Date(1950+r.IntN(46), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
	p.Spec = pick(r, specialties)
	p.LicenseState = pick(r, states)
	p.LicenseNumber = fmt.Sprintf("%s%07d", p.Spec.licenseType[:1], i+1)
	p.LicenseExpires = asOf.AddDate(0, 0, 200+r.IntN(1300))
	if c == LicenseExpired {
		p.LicenseExpires = asOf.AddDate(0, 0, -30-r.IntN(600))
	}
	p.LicenseIssued = asOf.AddDate(-1-r.IntN(15), 0, -r.IntN(300))
	if r.IntN(10) < 7 {
		p.DEA = dea(r, p.SrcLast)
	}
	return p
}

// dea makes a DEA number with a valid check digit:
// (d1+d3+d5 + 2*(d2+d4+d6)) mod 10.
func dea(r *rand.Rand, last string) string {
	second := byte('9')
	if f := strings.ToUpper(names.Part(last)); f != "" && f[0] >= 'A' && f[0] <= 'Z' {
		second = f[0]
	}
	d := make([]int, 6)
	for i := range d {
		d[i] = r.IntN(10)
	}
	check := (d[0] + d[2] + d[4] + 2*(d[1]+d[3]+d[5])) % 10
	return fmt.Sprintf("%c%c%d%d%d%d%d%d%d", pick(r, []byte("ABFGM")), second, d[0], d[1], d[2], d[3], d[4], d[5], check)
}

func ymd(t time.Time) string { return t.Format("2006-01-02") }
func mdy(t time.Time) string { return t.Format("01/02/2006") }
func compact(t time.Time) string {
	return t.Format("20060102")
}

// asciiUpper is how the NPPES and the LEIE print names: upper case, no accents.
func asciiUpper(s string) string {
	return strings.ToUpper(fold(s))
}

func fold(s string) string {
	return strings.NewReplacer("á", "a", "é", "e", "í", "i", "ó", "o", "ú", "u", "ñ", "n", "ü", "u", "ë", "e",
		"Á", "A", "É", "E", "Í", "I", "Ó", "O", "Ú", "U", "Ñ", "N", "Ü", "U", "ç", "c").Replace(s)
}

// RosterColumns is the provider roster's header (docs/sources.md).
var RosterColumns = []string{"id", "npi", "first_name", "middle_name", "last_name", "suffix", "date_of_birth",
	"specialty", "taxonomy_code", "license_state", "license_number", "license_type", "license_expires_on", "dea_number"}

// WriteRoster writes the provider roster CSV.
func (g *Generator) WriteRoster(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(RosterColumns)
	for _, p := range g.Providers {
		_ = cw.Write([]string{p.ID, p.NPI, p.First, p.Middle, p.Last, p.Suffix, ymd(p.DOB), p.Spec.name,
			p.Spec.taxonomy, p.LicenseState, p.LicenseNumber, p.Spec.licenseType, ymd(p.LicenseExpires), p.DEA})
	}
	cw.Flush()
	return cw.Error()
}

// ExpectedColumns is expected.csv's header.
var ExpectedColumns = []string{"provider_id", "npi", "case", "expected_decision", "reason"}

// WriteExpected writes every provider's expected decision.
func (g *Generator) WriteExpected(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(ExpectedColumns)
	for _, p := range g.Providers {
		e := Expected[p.Case]
		_ = cw.Write([]string{p.ID, p.NPI, string(p.Case), string(e.Decision), e.Reason})
	}
	cw.Flush()
	return cw.Error()
}

// quotedWriter writes CSV with every field quoted, as the LEIE, SAM and
// NPPES publishers do.
type quotedWriter struct {
	w   io.Writer
	buf []byte
	err error
}

func (q *quotedWriter) write(fields []string) {
	if q.err != nil {
		return
	}
	b := append(sources.AppendQuotedCSV(q.buf[:0], fields), '\r', '\n')
	q.buf = b
	_, q.err = q.w.Write(b)
}

// unrelatedName draws a person not on the roster, so background rows never
// name-match a roster provider by accident.
func (g *Generator) unrelatedName(r *rand.Rand) (first, last string) {
	for try := 0; ; try++ {
		first, last = pick(r, firstNames), pick(r, lastNames)
		if try > 5 {
			last += "-" + pick(r, lastNames)
		}
		if !g.used[nameKey(last, first)] {
			return first, last
		}
	}
}

// WriteLEIE writes UPDATED.csv: the seeded exclusions plus LEIEExtra unrelated rows.
func (g *Generator) WriteLEIE(w io.Writer) error {
	q := &quotedWriter{w: w}
	q.write(leie.Columns)
	g.leieRows(func(_ *Provider, fields []string) { q.write(fields) })
	return q.err
}

// leieRows makes UPDATED.csv's rows in order, each with the roster provider
// it was seeded for (nil for the unrelated ones). The supplements reuse it:
// a reinstatement repeats its exclusion's row.
func (g *Generator) leieRows(emit func(p *Provider, fields []string)) {
	r := g.rng(1)
	asOf := g.o.AsOf
	var cur *Provider
	row := func(last, first, mid, bus, npiv string, dob time.Time, state, excl, rein, waiver, wvrState string) {
		emit(cur, leieFields(r, last, first, mid, bus, npiv, dob, state, excl, rein, waiver, wvrState))
	}
	past := func(minDays, maxDays int) time.Time { return asOf.AddDate(0, 0, -minDays-r.IntN(maxDays-minDays)) }
	for i := range g.Providers {
		p := &g.Providers[i]
		cur = p
		excl := past(400, 4000)
		switch p.Case {
		case ExcludedLEIE:
			row(p.SrcLast, p.SrcFirst, p.SrcMiddle, "", p.NPI, p.DOB, p.LicenseState, compact(excl), "00000000", "00000000", "")
		case LEIENameDOB:
			row(p.SrcLast, p.SrcFirst, p.SrcMiddle, "", "", p.DOB, p.LicenseState, compact(excl), "00000000", "00000000", "")
		case LEIEReinstated:
			row(p.SrcLast, p.SrcFirst, p.SrcMiddle, "", p.NPI, p.DOB, p.LicenseState, compact(excl), compact(past(10, 300)), "00000000", "")
		case LEIEWaiver:
			row(p.SrcLast, p.SrcFirst, p.SrcMiddle, "", p.NPI, p.DOB, p.LicenseState, compact(excl), "00000000", compact(past(10, 300)), p.LicenseState)
		}
	}
	cur = nil
	for i := 0; i < g.o.LEIEExtra; i++ {
		first, last := g.unrelatedName(r)
		npiv := ""
		if r.IntN(10) < 3 {
			npiv = NPIFor(1, 60_000_000+i, g.o.Seed)
		}
		var dob time.Time
		if r.IntN(10) < 8 {
			dob = time.Date(1940+r.IntN(60), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
		}
		rein := "00000000"
		if r.IntN(20) == 0 {
			rein = compact(past(1, 1000))
		}
		if r.IntN(12) == 0 { // an excluded business
			row("", "", "", strings.ToUpper(last+" "+pick(r, businessWords)+" LLC"), npiv, time.Time{}, pick(r, states),
				compact(past(30, 9000)), rein, "00000000", "")
			continue
		}
		row(last, first, pick(r, middleNames), "", npiv, dob, pick(r, states), compact(past(30, 9000)), rein, "00000000", "")
	}
}

// leieFields is one LEIE row, its descriptive fields drawn from r.
func leieFields(r *rand.Rand, last, first, mid, bus, npiv string, dob time.Time, state, excl, rein, waiver, wvrState string) []string {
	dobs := "00000000"
	if !dob.IsZero() {
		dobs = compact(dob)
	}
	if npiv == "" {
		npiv = "0000000000"
	}
	return []string{asciiUpper(last), asciiUpper(first), asciiUpper(mid), bus, "IND- LIC HC SERV PRO", "NURSE/NURSES AIDE",
		"", npiv, dobs, fmt.Sprintf("%d MAIN ST", 1+r.IntN(9999)), strings.ToUpper(pick(r, cities)), state,
		fmt.Sprintf("%05d", r.IntN(99999)), pick(r, []string{"1128a1", "1128a2", "1128b4", "1128b7", "1128b5"}),
		excl, rein, waiver, wvrState}
}

// WriteSAM writes the SAM.gov exclusions public extract.
func (g *Generator) WriteSAM(w io.Writer) error {
	r := g.rng(2)
	q := &quotedWriter{w: w}
	q.write(sam.Columns)
	asOf := g.o.AsOf
	past := func(minDays, maxDays int) time.Time { return asOf.AddDate(0, 0, -minDays-r.IntN(maxDays-minDays)) }
	row := func(class, name, first, middle, last, state, npiv, active, term string) {
		created := mdy(past(1, 60))
		q.write([]string{class, name, "", first, middle, last, "", fmt.Sprintf("%d OAK AVE", 1+r.IntN(9999)), "", "", "",
			pick(r, cities), state, "USA", fmt.Sprintf("%05d", r.IntN(99999)), "",
			pick(r, []string{"Reciprocal", "Procurement", "NonProcurement"}),
			pick(r, []string{"HHS", "OPM", "VA", "DOJ"}), pick(r, []string{"Z1", "Z2", "A", ""}),
			pick(r, []string{"Ineligible (Proceedings Completed)", "Prohibition/Restriction", "Voluntary Exclusion"}),
			"", active, term, "Active", "", fmt.Sprintf("S4MR%06d", r.IntN(999999)), "", npiv, created})
	}
	for _, p := range g.Providers {
		switch p.Case {
		case ExcludedSAM:
			row("Individual", "", p.SrcFirst, p.SrcMiddle, p.SrcLast, p.LicenseState, p.NPI, mdy(past(100, 3000)), "Indefinite")
		case SAMTerminated:
			row("Individual", "", p.SrcFirst, p.SrcMiddle, p.SrcLast, p.LicenseState, p.NPI, mdy(past(1000, 3000)), mdy(past(10, 500)))
		}
	}
	for i := 0; i < g.o.SAMExtra; i++ {
		first, last := g.unrelatedName(r)
		npiv := ""
		if r.IntN(10) < 2 {
			npiv = NPIFor(1, 80_000_000+i, g.o.Seed)
		}
		term := "Indefinite"
		if r.IntN(3) == 0 {
			term = mdy(asOf.AddDate(0, 0, -400+r.IntN(2000)))
		}
		if r.IntN(5) == 0 {
			row("Firm", last+" "+pick(r, businessWords)+" Inc.", "", "", "", pick(r, states), npiv, mdy(past(30, 5000)), term)
			continue
		}
		row("Individual", "", first, pick(r, middleNames), last, pick(r, states), npiv, mdy(past(30, 5000)), term)
	}
	return q.err
}

// WriteLicenses writes the state license roster (columns: licenses.Columns).
func (g *Generator) WriteLicenses(w io.Writer) error {
	r := g.rng(3)
	cw := csv.NewWriter(w)
	_ = cw.Write(licenses.Columns)
	for _, p := range g.Providers {
		state, status := p.LicenseState, "Active"
		switch p.Case {
		case LicenseExpired:
			status = "Expired"
		case LicenseRevoked:
			status = "Revoked"
		case LicenseOtherState:
			for state == p.LicenseState {
				state = pick(r, states)
			}
		}
		npiv := ""
		if r.IntN(10) < 7 {
			npiv = p.NPI
		}
		_ = cw.Write([]string{state, p.LicenseNumber, p.Spec.licenseType, status, ymd(p.LicenseIssued),
			ymd(p.LicenseExpires), p.SrcLast, p.SrcFirst, p.SrcMiddle, npiv})
	}
	asOf := g.o.AsOf
	for i := 0; i < g.o.LicenseExtra; i++ {
		first, last := g.unrelatedName(r)
		spec := pick(r, specialties)
		exp := asOf.AddDate(0, 0, -700+r.IntN(2500))
		status := "Active"
		if exp.Before(asOf) {
			status = "Expired"
		}
		_ = cw.Write([]string{pick(r, states), fmt.Sprintf("X%07d", i+1), spec.licenseType, status,
			ymd(exp.AddDate(-5, 0, 0)), ymd(exp), last, first, pick(r, middleNames), ""})
	}
	cw.Flush()
	return cw.Error()
}
