package licenses

import (
	"testing"
)

// FuzzDecodeResponse: a state endpoint's answer is outside input; the
// decoder must never panic and must only accept the documented shape.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		`{"results":[]}`,
		`{"results":[{"state":"CA","license_number":"A1","status":"Active","expiration_date":"2030-01-31","last_name":"Doe","first_name":"J"}]}`,
		`{"results":[{"state":"CA","license_number":"A1","status":"Active","expiration_date":"01/31/2030"}]}`,
		`{"results":[{"license_number":"A1","status":"x","expiration_date":"2030-02-31"}]}`,
		`{"results":null}`, `{}`, `[]`, `<html>`, ``,
		`{"results":[{"license_number":1}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, err := DecodeResponse(body)
		if err != nil {
			if recs != nil {
				t.Fatalf("records returned with error %v", err)
			}
			return
		}
		for _, r := range recs {
			if r.Number == "" || r.Status == "" || len(r.Digest) != 64 || len(r.Record) == 0 {
				t.Fatalf("accepted an incomplete record: %+v", r)
			}
		}
	})
}

func TestDecodeResponse(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		body string
		n    int
		ok   bool
	}{
		{`{"results":[]}`, 0, true},
		{`{"results":[{"state":"ca","license_number":" A1 ","status":"Active - Clear","expiration_date":"2030-01-31"}]}`, 1, true},
		{`{"results":[{"state":"CA","license_number":"A1","status":"Active","expiration_date":"31.01.2030"}]}`, 0, false},
		{`{"results":[{"state":"CA","status":"Active"}]}`, 0, false},
		{`{"items":[]}`, 0, false},
		{`not json`, 0, false},
	} {
		recs, err := DecodeResponse([]byte(c.body))
		if (err == nil) != c.ok || len(recs) != c.n {
			t.Errorf("%s: %d records, err %v", c.body, len(recs), err)
		}
		if c.n == 1 && (recs[0].State != "CA" || recs[0].Number != "A1" || recs[0].Status != "active - clear" || recs[0].Expiry == nil) {
			t.Errorf("normalization: %+v", recs[0])
		}
	}
}
