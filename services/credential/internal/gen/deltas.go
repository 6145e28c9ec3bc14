package gen

import (
	"fmt"
	"io"
	"time"

	"golang.org/x/text/encoding/charmap"

	"github.com/provcred/credential/internal/sources/leie"
	"github.com/provcred/credential/internal/sources/nppes"
)

// The files published between two full lists, which the real samples do
// not cover: OIG's monthly LEIE supplements for the month before AsOf
// (YYMMEXCL.csv, YYMMREIN.csv) and an NPPES weekly increment for the week
// ending the day before AsOf. Each changes a few roster providers, chosen
// deterministically, so a test knows what applying it must do.

// supplementMonth is the first day of the month before AsOf.
func (g *Generator) supplementMonth() time.Time {
	return time.Date(g.o.AsOf.Year(), g.o.AsOf.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
}

// SupplementName is the published name of the month's supplement of kind
// "EXCL" or "REIN", e.g. 2610EXCL.csv.
func (g *Generator) SupplementName(kind string) string {
	m := g.supplementMonth()
	return fmt.Sprintf("%02d%02d%s.csv", m.Year()%100, int(m.Month()), kind)
}

// IncrementName is the weekly NPPES file's published name.
func (g *Generator) IncrementName() string {
	end := g.o.AsOf.AddDate(0, 0, -1)
	return fmt.Sprintf("npidata_pfile_%s-%s.csv", compact(end.AddDate(0, 0, -6)), compact(end))
}

// pickClean returns every n-th provider of case Clean (at least one when
// there is one), skipping the first skip of them: disjoint choices for
// different deltas.
func (g *Generator) pickClean(n, skip int) []Provider {
	var out []Provider
	k := 0
	for _, p := range g.Providers {
		if p.Case != Clean {
			continue
		}
		if k >= skip && (k-skip)%n == 0 {
			out = append(out, p)
		}
		k++
	}
	return out
}

// NewlyExcluded are the clean providers the exclusion supplement lists by NPI.
func (g *Generator) NewlyExcluded() []Provider { return g.pickClean(25, 0) }

// Reinstated are the providers the reinstatement supplement reinstates:
// every excluded_leie_npi provider.
func (g *Generator) Reinstated() []Provider {
	var out []Provider
	for _, p := range g.Providers {
		if p.Case == ExcludedLEIE {
			out = append(out, p)
		}
	}
	return out
}

// NewlyDeactivated are the clean providers whose NPI the weekly increment deactivates.
func (g *Generator) NewlyDeactivated() []Provider { return g.pickClean(25, 7) }

// WriteLEIEExclusions writes the month's exclusion supplement (YYMMEXCL.csv):
// a row for each NewlyExcluded provider, dated in the month, with the full
// list's header.
func (g *Generator) WriteLEIEExclusions(w io.Writer) error {
	r := g.rng(5)
	q := &quotedWriter{w: w}
	q.write(leie.Columns)
	month := g.supplementMonth()
	for _, p := range g.NewlyExcluded() {
		excl := month.AddDate(0, 0, r.IntN(28))
		q.write(leieFields(r, p.SrcLast, p.SrcFirst, p.SrcMiddle, "", p.NPI, p.DOB, p.LicenseState, compact(excl),
			"00000000", "00000000", ""))
	}
	return q.err
}

// WriteLEIEReinstatements writes the month's reinstatement supplement
// (YYMMREIN.csv): each Reinstated provider's UPDATED.csv row with its
// REINDATE set in the month, as OIG publishes it.
func (g *Generator) WriteLEIEReinstatements(w io.Writer) error {
	r := g.rng(6)
	q := &quotedWriter{w: w}
	q.write(leie.Columns)
	month := g.supplementMonth()
	g.leieRows(func(p *Provider, fields []string) {
		if p == nil || p.Case != ExcludedLEIE {
			return
		}
		fields[15] = compact(month.AddDate(0, 0, r.IntN(28))) // REINDATE
		q.write(fields)
	})
	return q.err
}

// WriteNPPESIncrement writes the week's NPPES increment: every
// NewlyDeactivated provider's NPI blanked but for its deactivation date (as
// the real files list a deactivation), and one new organization, under the
// full file's 330-column header.
func (g *Generator) WriteNPPESIncrement(w io.Writer) error {
	r := g.rng(7)
	q := &quotedWriter{w: w}
	q.write(NPPESHeader)
	row := &nppesRow{rec: make([]string, len(NPPESHeader))}
	end := g.o.AsOf.AddDate(0, 0, -1)
	for _, p := range g.NewlyDeactivated() {
		row.reset()
		row.set("NPI", p.NPI)
		row.set(nppes.ColDeactivation, mdy(end.AddDate(0, 0, -r.IntN(7))))
		q.write(row.rec)
	}
	row.reset()
	row.set("NPI", NPIFor(2, 90_000_000, g.o.Seed))
	g.organization(r, row, g.o.AsOf)
	q.write(row.rec)
	return q.err
}

// Windows1252 wraps w so that what is written to it is stored in
// Windows-1252, the way Excel and older Windows tools save a CSV, with the
// DOS end-of-file byte (0x1A) some of them append written by Close.
func Windows1252(w io.Writer) io.WriteCloser {
	return &dosWriter{w: w, enc: charmap.Windows1252.NewEncoder().Writer(w)}
}

type dosWriter struct {
	w   io.Writer
	enc io.Writer
}

func (d *dosWriter) Write(p []byte) (int, error) { return d.enc.Write(p) }

func (d *dosWriter) Close() error {
	_, err := d.w.Write([]byte{0x1a})
	return err
}
