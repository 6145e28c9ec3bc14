package seed

import (
	"cmp"
	"strings"

	"github.com/provcred/credential/internal/npi"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/leie"
	"github.com/provcred/credential/internal/sources/licenses"
	"github.com/provcred/credential/internal/sources/nppes"
	"github.com/provcred/credential/internal/sources/sam"
)

// NPI turns a 9-digit base into a valid NPI (Luhn check digit).
func NPI(base9 string) string { return base9 + string(npi.CheckDigit(base9)) }

// line is one CSV line with every field quoted.
func line(b *strings.Builder, fields ...string) {
	b.Write(sources.AppendQuotedCSV(nil, fields))
	b.WriteByte('\n')
}

// LEIERow is an LEIE UPDATED.csv row; empty NPI and dates get the file's
// own "none" (0000000000, 00000000), an empty exclusion type and date
// 1128a1 and 2020-01-15.
type LEIERow struct {
	Last, First, Mid, NPI, DOB, ExclType, ExclDate, Rein, Waiver, WvrState string
}

// LEIE is an UPDATED.csv of rows.
func LEIE(rows ...LEIERow) string {
	var b strings.Builder
	line(&b, leie.Columns...)
	for _, r := range rows {
		line(&b, r.Last, r.First, r.Mid, "", "IND- LIC HC SERV PRO", "NURSE/NURSES AIDE", "",
			cmp.Or(r.NPI, "0000000000"), cmp.Or(r.DOB, "00000000"), "1 MAIN ST", "SPRINGFIELD", "IL", "62701",
			cmp.Or(r.ExclType, "1128a1"), cmp.Or(r.ExclDate, "20200115"), cmp.Or(r.Rein, "00000000"),
			cmp.Or(r.Waiver, "00000000"), r.WvrState)
	}
	return b.String()
}

// SAMRow is a SAM.gov exclusions extract row of an individual (dates
// MM/DD/YYYY; Term may be Indefinite).
type SAMRow struct {
	First, Last, NPI, Active, Term string
}

// SAM is an exclusions extract of rows.
func SAM(rows ...SAMRow) string {
	var b strings.Builder
	line(&b, sam.Columns...)
	for _, r := range rows {
		rec := make([]string, len(sam.Columns))
		for col, v := range map[string]string{"Classification": "Individual", "First": r.First, "Last": r.Last,
			"Exclusion Type": "Ineligible (Proceedings Completed)", "Active Date": r.Active,
			"Termination Date": r.Term, "Record Status": "Active", "NPI": r.NPI, "Excluding Agency": "HHS",
			"Creation_Date": "01/02/2020"} {
			rec[column(sam.Columns, col)] = v
		}
		line(&b, rec...)
	}
	return b.String()
}

func column(cols []string, name string) int {
	for i, c := range cols {
		if c == name {
			return i
		}
	}
	panic("seed: no column " + name)
}

// NPPESRow is an NPPES bulk row (the columns the importer reads). Entity
// "2" makes Last the organization's name; an empty license is 036123456 in IL.
type NPPESRow struct {
	NPI, Entity, Last, First, Middle, Suffix, Deact, React string
	LicenseNumber, LicenseState                            string
}

// nppesHeader is the part of the bulk file's ~330 columns the importer reads.
var nppesHeader = []string{nppes.ColNPI, nppes.ColEntityType, nppes.ColOrgName, nppes.ColLastName,
	nppes.ColFirstName, nppes.ColMiddleName, nppes.ColSuffix, nppes.ColCredential, nppes.ColPracticeState,
	nppes.ColEnumeration, nppes.ColDeactivation, nppes.ColReactivation, "Healthcare Provider Taxonomy Code_1",
	"Healthcare Provider Primary Taxonomy Switch_1", "Provider License Number_1", "Provider License Number State Code_1"}

// NPPES is a bulk dissemination file of rows.
func NPPES(rows ...NPPESRow) string {
	var b strings.Builder
	line(&b, nppesHeader...)
	for _, r := range rows {
		org := ""
		if r.Entity == "2" {
			org = r.Last
		}
		line(&b, r.NPI, r.Entity, org, r.Last, r.First, r.Middle, r.Suffix, "M.D.", "IL", "05/23/2005", r.Deact,
			r.React, "207Q00000X", "Y", cmp.Or(r.LicenseNumber, "036123456"), cmp.Or(r.LicenseState, "IL"))
	}
	return b.String()
}

// LicenseRow is a license roster row (docs/sources.md columns); type MD,
// issued 2015-01-01.
type LicenseRow struct {
	State, Number, Status, Expiry, Last, First, Middle, NPI string
}

// Licenses is a license roster of rows.
func Licenses(rows ...LicenseRow) string {
	var b strings.Builder
	b.WriteString(strings.Join(licenses.Columns, ",") + "\n")
	for _, r := range rows {
		line(&b, r.State, r.Number, "MD", r.Status, "2015-01-01", r.Expiry, r.Last, r.First, r.Middle, r.NPI)
	}
	return b.String()
}
