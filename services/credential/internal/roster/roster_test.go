package roster

import (
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		csv        string
		wantErr    string // file-level error
		providers  int
		licenses   []int
		lineErrors []string
	}{
		{name: "full columns, two licenses merged by id",
			csv: "id,npi,first_name,middle_name,last_name,suffix,date_of_birth,specialty,taxonomy_code,license_state,license_number,license_type,license_expires_on,dea_number\n" +
				"p1,1234567893,Ann,M,Lee,,1970-01-31,Cardiology,207RC0000X,CA,A1,MD,2027-01-01,AB1234563\n" +
				"p1,1234567893,Ann,M,Lee,,1970-01-31,Cardiology,207RC0000X,NV,B2,MD,2028-01-01,AB1234563\n" +
				"p2,1245319599,Bob,,Ray,Jr,,,,,,,,\n",
			providers: 2, licenses: []int{2, 0}},
		{name: "any column order, case-insensitive header, BOM, merged by NPI",
			csv:       "\ufeffLAST_NAME,First_Name,NPI,license_state,license_number\nLee,Ann,1234567893,CA,A1\nLee,Ann,1234567893,NY,Z9\n",
			providers: 1, licenses: []int{2}},
		{name: "blank lines skipped", csv: "npi,first_name,last_name\n\n1234567893,Ann,Lee\n,,\n", providers: 1, licenses: []int{0}},
		{name: "missing column", csv: "npi,last_name\n1234567893,Lee\n", wantErr: `line 1: missing required column "first_name"`},
		{name: "empty file", csv: "", wantErr: "line 1: the file is empty"},
		{name: "header only", csv: "npi,first_name,last_name\n", wantErr: "no rows"},
		{name: "broken quoting", csv: "npi,first_name,last_name\n1234567893,\"Ann,Lee\n", wantErr: "malformed CSV"},
		{name: "row errors with lines",
			csv:        "npi,first_name,last_name,date_of_birth,license_state,license_number,license_expires_on\n1234567890,Ann,Lee,,,,\n1234567893,,Lee,,,,\n1245319599,Bob,Ray,1970-02-30,,,\n1003000126,Cy,Doe,,QQ,1,\n1234567893,Ann,Lee,,CA,1,2027-13-01\n",
			lineErrors: []string{"line 2: npi:", "line 3: first_name:", "line 4: date_of_birth:", "line 5: license_state:", "line 6: license_expires_on:"}},
		{name: "bytes PostgreSQL refuses", csv: "npi,first_name,last_name,license_state,license_number,license_type\n1234567893,Ann,Le\xffe,,,\n1245319599,Bob,Ray,CA,A1,M\x00D\n",
			lineErrors: []string{"line 2: last_name:", "line 3: license_type:"}},
		{name: "repeated license: one error, later rows judged alone",
			csv:       "id,npi,first_name,last_name,license_state,license_number\np1,1234567893,Ann,Lee,CA,A1\np1,1234567893,Ann,Lee,CA,A1\np1,1234567893,Ann,Lee,NY,B1\n",
			providers: 1, licenses: []int{2}, lineErrors: []string{"line 3: license_number: duplicates another license"}},
		{name: "a row cut off mid-row",
			csv:       "id,npi,first_name,last_name,license_state,license_number,license_type,license_expires_on\np1,1234567893,Ann,Lee,CA,A1,MD,2027-01-01\np2,1245319599,Bob,Ray,CA,B1",
			providers: 1, licenses: []int{1}, lineErrors: []string{"line 3: the row has 6 fields, the header has 8"}},
		{name: "a row with too many fields",
			csv:       "npi,first_name,last_name\n1234567893,Ann,Lee\n1245319599,Bob,Ray,extra\n1003000126,Cy,Doe\n",
			providers: 2, licenses: []int{0, 0}, lineErrors: []string{"line 3: the row has 4 fields, the header has 3"}},
		{name: "lines count quoted line breaks and blank lines",
			csv:       "npi,first_name,last_name,specialty\n1234567893,Ann,Lee,\"Family\nMedicine\"\n\n1245319599,Bob\n",
			providers: 1, licenses: []int{0}, lineErrors: []string{"line 5: the row has 2 fields"}},
		{name: "a column twice", csv: "npi,first_name,last_name,License_Number,license_number\n1234567893,Ann,Lee,A,B\n",
			wantErr: `line 1: column "license_number" appears twice`},
		{name: "BOM before a quoted header", csv: "\ufeff\"npi\",\"first_name\",\"last_name\"\n1234567893,Ann,Lee\n", providers: 1, licenses: []int{0}},
		{name: "conflicting repeat", csv: "id,npi,first_name,last_name\np1,1234567893,Ann,Lee\np1,1245319599,Ann,Lee\n",
			providers: 1, licenses: []int{0}, lineErrors: []string{"line 3: npi:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Parse(strings.NewReader(tt.csv), now, 100, 100)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want error %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Providers) != tt.providers {
				t.Fatalf("providers = %d, want %d", len(res.Providers), tt.providers)
			}
			for i, n := range tt.licenses {
				if len(res.Providers[i].Licenses) != n {
					t.Errorf("provider %d licenses = %d, want %d", i, len(res.Providers[i].Licenses), n)
				}
			}
			if len(res.Errors) != len(tt.lineErrors) {
				t.Fatalf("errors = %v, want %v", res.Errors, tt.lineErrors)
			}
			for i, e := range res.Errors {
				if !strings.HasPrefix(e.Error(), tt.lineErrors[i]) {
					t.Errorf("error %d = %q, want prefix %q", i, e.Error(), tt.lineErrors[i])
				}
			}
		})
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	csv := "npi,first_name,last_name\n1234567893,Ann,Lee\n1245319599,Bob,Ray\n1003000126,Cy,Doe\n"
	if _, err := Parse(strings.NewReader(csv), now, 2, 100); err == nil || !strings.Contains(err.Error(), "more than 2 providers") {
		t.Fatalf("max providers: %v", err)
	}
	bad := "npi,first_name,last_name\n" + strings.Repeat("1,a,b\n", 10)
	res, err := Parse(strings.NewReader(bad), now, 100, 3)
	if err != nil || len(res.Errors) != 3 {
		t.Fatalf("max errors: %v %v", err, res)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("npi,first_name,last_name,license_state,license_number\n1234567893,Ann,Lee,CA,1\n")
	f.Add("id,npi,first_name,last_name\np1,1234567893,A,B\np1,1234567893,A,B\n")
	f.Add("\"")
	f.Fuzz(func(t *testing.T, s string) {
		res, err := Parse(strings.NewReader(s), now, 50, 50)
		if err != nil {
			return
		}
		for _, p := range res.Providers {
			if e := p.Validate(now); e != nil {
				t.Fatalf("parsed provider fails validation: %v", e)
			}
		}
	})
}
