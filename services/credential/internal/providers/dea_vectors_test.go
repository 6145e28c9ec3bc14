package providers

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/provcred/credential/internal/sources/sourcestest"
)

// Every DEA vector of other validator libraries (shared/realdata) gets the
// rule's verdict: valid exactly when its check digit is right and its first
// letter is a DEA registrant type, whatever the library asserted. The
// number goes through the API's normalization (upper case) first.
func TestDEAVectors(t *testing.T) {
	t.Parallel()
	recs, err := csv.NewReader(bytes.NewReader(sourcestest.RealData(t, "dea_vectors.csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 30 || strings.Join(recs[0][:4], ",") != "value,library_expects,check_digit,registrant_type_ok" {
		t.Fatalf("unexpected vector file: %d rows, header %v", len(recs), recs[0])
	}
	for _, r := range recs[1:] {
		want := r[2] == "valid" && r[3] == "yes"
		p := &Provider{DEANumber: r[0]}
		p.Normalize()
		if got := ValidDEA(p.DEANumber); got != want {
			t.Errorf("%s (%s, check digit %s, registrant type %s): valid = %v, want %v", r[0], r[4], r[2], r[3], got, want)
		}
	}
}
