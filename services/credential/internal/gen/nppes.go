package gen

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"
)

// NPPESHeader is the bulk dissemination file's full header (330 columns, in
// the publisher's order). The importer finds its columns by name, so the
// generator writes all of them as the real file does.
var NPPESHeader = func() []string {
	h := []string{"NPI", "Entity Type Code", "Replacement NPI", "Employer Identification Number (EIN)",
		"Provider Organization Name (Legal Business Name)", "Provider Last Name (Legal Name)", "Provider First Name",
		"Provider Middle Name", "Provider Name Prefix Text", "Provider Name Suffix Text", "Provider Credential Text",
		"Provider Other Organization Name", "Provider Other Organization Name Type Code", "Provider Other Last Name",
		"Provider Other First Name", "Provider Other Middle Name", "Provider Other Name Prefix Text",
		"Provider Other Name Suffix Text", "Provider Other Credential Text", "Provider Other Last Name Type Code",
		"Provider First Line Business Mailing Address", "Provider Second Line Business Mailing Address",
		"Provider Business Mailing Address City Name", "Provider Business Mailing Address State Name",
		"Provider Business Mailing Address Postal Code", "Provider Business Mailing Address Country Code (If outside U.S.)",
		"Provider Business Mailing Address Telephone Number", "Provider Business Mailing Address Fax Number",
		"Provider First Line Business Practice Location Address", "Provider Second Line Business Practice Location Address",
		"Provider Business Practice Location Address City Name", "Provider Business Practice Location Address State Name",
		"Provider Business Practice Location Address Postal Code",
		"Provider Business Practice Location Address Country Code (If outside U.S.)",
		"Provider Business Practice Location Address Telephone Number", "Provider Business Practice Location Address Fax Number",
		"Provider Enumeration Date", "Last Update Date", "NPI Deactivation Reason Code", "NPI Deactivation Date",
		"NPI Reactivation Date", "Provider Sex Code", "Authorized Official Last Name", "Authorized Official First Name",
		"Authorized Official Middle Name", "Authorized Official Title or Position", "Authorized Official Telephone Number"}
	for i := 1; i <= 15; i++ {
		n := strconv.Itoa(i)
		h = append(h, "Healthcare Provider Taxonomy Code_"+n, "Provider License Number_"+n,
			"Provider License Number State Code_"+n, "Healthcare Provider Primary Taxonomy Switch_"+n)
	}
	for i := 1; i <= 50; i++ {
		n := strconv.Itoa(i)
		h = append(h, "Other Provider Identifier_"+n, "Other Provider Identifier Type Code_"+n,
			"Other Provider Identifier State_"+n, "Other Provider Identifier Issuer_"+n)
	}
	h = append(h, "Is Sole Proprietor", "Is Organization Subpart", "Parent Organization LBN", "Parent Organization TIN",
		"Authorized Official Name Prefix Text", "Authorized Official Name Suffix Text", "Authorized Official Credential Text")
	for i := 1; i <= 15; i++ {
		h = append(h, "Healthcare Provider Taxonomy Group_"+strconv.Itoa(i))
	}
	return append(h, "Certification Date")
}()

var nppesIdx = func() map[string]int {
	m := make(map[string]int, len(NPPESHeader))
	for i, n := range NPPESHeader {
		m[n] = i
	}
	return m
}()

type nppesRow struct {
	rec []string
}

func (r *nppesRow) reset() {
	for i := range r.rec {
		r.rec[i] = ""
	}
}

func (r *nppesRow) set(col, v string) {
	i, ok := nppesIdx[col]
	if !ok {
		panic("gen: no NPPES column " + col)
	}
	r.rec[i] = v
}

// WriteNPPES writes the NPPES bulk file: one row per roster provider, then
// NPPESExtra unrelated individuals and organizations, streamed.
func (g *Generator) WriteNPPES(w io.Writer) error {
	r := g.rng(4)
	q := &quotedWriter{w: w}
	q.write(NPPESHeader)
	row := &nppesRow{rec: make([]string, len(NPPESHeader))}
	asOf := g.o.AsOf
	for _, p := range g.Providers {
		row.reset()
		row.set("NPI", p.NPI)
		if p.Case == NPIDeactivated {
			// The real file blanks everything but the NPI and the date.
			row.set("NPI Deactivation Date", mdy(asOf.AddDate(0, 0, -30-r.IntN(900))))
			q.write(row.rec)
			continue
		}
		g.individual(r, row, asOf, asciiUpper(p.SrcFirst), asciiUpper(p.SrcMiddle), asciiUpper(p.SrcLast),
			asciiUpper(p.SrcSuffix), p.Spec, p.LicenseState, p.LicenseNumber)
		q.write(row.rec)
	}
	for i := 0; i < g.o.NPPESExtra; i++ {
		row.reset()
		if r.IntN(5) == 0 {
			row.set("NPI", NPIFor(2, i, g.o.Seed))
			g.organization(r, row, asOf)
		} else {
			row.set("NPI", NPIFor(1, g.o.Providers+i, g.o.Seed))
			first, last := pick(r, firstNames), pick(r, lastNames)
			spec := pick(r, specialties)
			g.individual(r, row, asOf, asciiUpper(first), asciiUpper(pick(r, middleNames)), asciiUpper(last), "",
				spec, pick(r, states), fmt.Sprintf("%s%07d", spec.licenseType[:1], 5_000_000+i))
			if r.IntN(50) == 0 {
				row.set("NPI Deactivation Date", mdy(asOf.AddDate(0, 0, -r.IntN(3000))))
			}
		}
		q.write(row.rec)
	}
	return q.err
}

func (g *Generator) address(r *rand.Rand, row *nppesRow, kind, state string) {
	row.set("Provider First Line Business "+kind+" Address", fmt.Sprintf("%d %s ST", 1+r.IntN(9999), asciiUpper(pick(r, lastNames))))
	row.set("Provider Business "+kind+" Address City Name", asciiUpper(pick(r, cities)))
	row.set("Provider Business "+kind+" Address State Name", state)
	row.set("Provider Business "+kind+" Address Postal Code", fmt.Sprintf("%05d%04d", r.IntN(99999), r.IntN(9999)))
	row.set("Provider Business "+kind+" Address Country Code (If outside U.S.)", "US")
	row.set("Provider Business "+kind+" Address Telephone Number", fmt.Sprintf("%d555%04d", 200+r.IntN(799), r.IntN(9999)))
}

func (g *Generator) individual(r *rand.Rand, row *nppesRow, asOf time.Time, first, middle, last, suffix string,
	spec specialty, state, license string) {
	enum := asOf.AddDate(0, 0, -400-r.IntN(6000))
	row.set("Entity Type Code", "1")
	row.set("Provider Last Name (Legal Name)", last)
	row.set("Provider First Name", first)
	row.set("Provider Middle Name", middle)
	row.set("Provider Name Suffix Text", suffix)
	row.set("Provider Credential Text", spec.credential)
	row.set("Provider Sex Code", pick(r, []string{"M", "F"}))
	row.set("Provider Enumeration Date", mdy(enum))
	row.set("Last Update Date", mdy(enum.AddDate(0, 0, r.IntN(300))))
	row.set("Is Sole Proprietor", pick(r, []string{"Y", "N", "X"}))
	row.set("Certification Date", mdy(enum.AddDate(0, 0, r.IntN(300))))
	g.address(r, row, "Mailing", state)
	g.address(r, row, "Practice Location", state)
	row.set("Healthcare Provider Taxonomy Code_1", spec.taxonomy)
	row.set("Provider License Number_1", license)
	row.set("Provider License Number State Code_1", state)
	row.set("Healthcare Provider Primary Taxonomy Switch_1", "Y")
	if r.IntN(4) == 0 { // a second, non-primary taxonomy
		other := pick(r, specialties)
		if other.taxonomy != spec.taxonomy {
			row.set("Healthcare Provider Taxonomy Code_2", other.taxonomy)
			row.set("Provider License Number_2", license)
			row.set("Provider License Number State Code_2", state)
			row.set("Healthcare Provider Primary Taxonomy Switch_2", "N")
		}
	}
}

func (g *Generator) organization(r *rand.Rand, row *nppesRow, asOf time.Time) {
	enum := asOf.AddDate(0, 0, -400-r.IntN(6000))
	state := pick(r, states)
	row.set("Entity Type Code", "2")
	row.set("Provider Organization Name (Legal Business Name)", asciiUpper(pick(r, lastNames)+" "+pick(r, businessWords)+" LLC"))
	row.set("Employer Identification Number (EIN)", "<UNAVAIL>")
	row.set("Provider Enumeration Date", mdy(enum))
	row.set("Last Update Date", mdy(enum.AddDate(0, 0, r.IntN(300))))
	row.set("Authorized Official Last Name", asciiUpper(pick(r, lastNames)))
	row.set("Authorized Official First Name", asciiUpper(pick(r, firstNames)))
	row.set("Authorized Official Title or Position", "ADMINISTRATOR")
	row.set("Authorized Official Telephone Number", fmt.Sprintf("%d555%04d", 200+r.IntN(799), r.IntN(9999)))
	row.set("Is Organization Subpart", "N")
	g.address(r, row, "Mailing", state)
	g.address(r, row, "Practice Location", state)
	spec := pick(r, []string{"261QM1300X", "332B00000X", "251E00000X", "282N00000X"})
	row.set("Healthcare Provider Taxonomy Code_1", spec)
	row.set("Healthcare Provider Primary Taxonomy Switch_1", "Y")
	row.set("Certification Date", mdy(enum.AddDate(0, 0, r.IntN(300))))
}
