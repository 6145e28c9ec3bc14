package npi

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/provcred/credential/internal/sources/sourcestest"
)

// Every NPI vector of other validator libraries and every real NPI of the
// published samples (shared/realdata) gets the CMS rule's verdict.
func TestNPIVectors(t *testing.T) {
	t.Parallel()
	recs, err := csv.NewReader(bytes.NewReader(sourcestest.RealData(t, "npi_vectors.csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 40 || strings.Join(recs[0][:3], ",") != "value,library_expects,cms_rule" {
		t.Fatalf("unexpected vector file: %d rows, header %v", len(recs), recs[0])
	}
	for _, r := range recs[1:] {
		if got, want := Valid(r[0]), r[2] == "valid"; got != want {
			t.Errorf("%s (%s): valid = %v, want %v", r[0], r[3], got, want)
		}
	}
}
