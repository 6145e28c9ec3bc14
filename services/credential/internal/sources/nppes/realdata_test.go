package nppes

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/sourcestest"
)

// The registry's real answers of 2019-20 (ropensci/npi's recordings) give
// "number" and the epochs as JSON integers, the epochs in seconds; each
// decodes to the day its basic.last_updated and enumeration_date say.
func TestRealRegistryAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, npi string
		check     func(t *testing.T, r *Record)
		wantErr   error
	}{
		{file: "nppes_api_ropensci_api-b2f594.json", npi: "1720377294", check: func(t *testing.T, r *Record) {
			if r.LastName != "HIZA" || r.FirstName != "ELISE" || !r.Individual() || !r.Active() {
				t.Errorf("record %+v", r)
			}
		}},
		{file: "nppes_api_ropensci_api-8bdc8b.json", npi: "1568946812", check: func(t *testing.T, r *Record) {
			if r.OrganizationName != "CSP ANESTHESIA LLC" || r.EntityType != "2" {
				t.Errorf("record %+v", r)
			}
		}},
		{file: "nppes_api_ropensci_api-a769af.json", npi: "1003142399", check: func(t *testing.T, r *Record) {
			// Deactivated in 2015, reactivated in 2019.
			if r.LastName != "ROWELL" || !r.Active() || r.DeactivationDate == nil || r.ReactivationDate == nil {
				t.Errorf("record %+v", r)
			}
		}},
		{file: "nppes_api_ropensci_api-a2f836.json", npi: "1720377294", wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			body := sourcestest.RealData(t, tt.file)
			r, err := DecodeResponse(body, tt.npi)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The day the epochs fall on, read from the answer itself.
			var raw struct {
				Results []struct {
					Number json.Number `json:"number"`
					Basic  struct {
						LastUpdated     string `json:"last_updated"`
						EnumerationDate string `json:"enumeration_date"`
					} `json:"basic"`
				} `json:"results"`
			}
			if err := json.Unmarshal(body, &raw); err != nil {
				t.Fatal(err)
			}
			for _, res := range raw.Results {
				if res.Number.String() != tt.npi {
					continue
				}
				if r.LastUpdated == nil || r.LastUpdated.Format(time.DateOnly) != res.Basic.LastUpdated {
					t.Errorf("last_updated_epoch decodes to %v, the answer says %s", r.LastUpdated, res.Basic.LastUpdated)
				}
				if r.Created == nil || r.Created.Format(time.DateOnly) != res.Basic.EnumerationDate {
					t.Errorf("created_epoch decodes to %v, the NPI was enumerated %s", r.Created, res.Basic.EnumerationDate)
				}
			}
			tt.check(t, r)
		})
	}
}

func TestEpochUnits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
		bad  bool
	}{
		{in: "1525737600", want: "2018-05-08T00:00:00Z"},    // seconds, 2019-20 answers
		{in: "1183953600000", want: "2007-07-09T04:00:00Z"}, // milliseconds, 2026 answers
		{in: "1767225600000", want: "2026-01-01T00:00:00Z"}, // milliseconds
		{in: "99999999999", want: "5138-11-16T09:46:39Z"},   // the largest read as seconds
		{in: "100000000000", want: "1973-03-03T09:46:40Z"},  // the smallest read as milliseconds
		{in: "", want: ""},
		{in: "soon", bad: true},
		{in: "-5", bad: true},
	}
	for _, tt := range tests {
		got, err := epoch(tt.in)
		if (err != nil) != tt.bad {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		s := ""
		if got != nil {
			s = got.Format(time.RFC3339)
		}
		if !tt.bad && s != tt.want {
			t.Errorf("%q = %s, want %s", tt.in, s, tt.want)
		}
	}
}

// The live client keeps a "not found" answer as evidence: its digest and
// fetch time, and the body as raw.
func TestNotFoundKeepsTheAnswer(t *testing.T) {
	t.Parallel()
	body := sourcestest.RealData(t, "nppes_api_ropensci_api-a2f836.json")
	s := serve(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) })
	c := newClient(t, s.URL, nil)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return at }
	_, raw, err := c.Lookup(context.Background(), "1720377294")
	var nf *NotFound
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &nf) || nf.Digest != sources.Digest(body) || !nf.FetchedAt.Equal(at) ||
		string(raw) != string(body) {
		t.Fatalf("err %v (%+v), raw %q", err, nf, raw)
	}
}
