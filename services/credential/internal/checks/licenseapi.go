package checks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/licenses"
	"github.com/provcred/platform/breaker"
)

// licenseEndpoint is one state's license verification endpoint, behind its
// own breaker (license_<state>) so one state's outage leaves the others alone.
type licenseEndpoint struct {
	state   string
	url     string
	breaker *breaker.Breaker
}

// LicenseAPIRecord is one license in a state endpoint's answer. The wire
// format (docs/verification.md) is ours: states' boards differ, so an
// adapter in front of each speaks this:
//
//	GET {url}?state=CA&license_number=A123
//	200 {"results":[{"state","license_number","license_type","status",
//	                 "expiration_date":"YYYY-MM-DD","last_name","first_name","middle_name","npi"}]}
//
// An empty list or a 404 means no such license; 5xx and timeouts count
// against the breaker.
type LicenseAPIRecord struct {
	State          string `json:"state"`
	LicenseNumber  string `json:"license_number"`
	LicenseType    string `json:"license_type"`
	Status         string `json:"status"`
	ExpirationDate string `json:"expiration_date"`
	LastName       string `json:"last_name"`
	FirstName      string `json:"first_name"`
	MiddleName     string `json:"middle_name"`
	NPI            string `json:"npi"`
}

type licenseAPIResponse struct {
	Results []json.RawMessage `json:"results"`
}

const maxLicenseBody = 1 << 20

// DecodeLicenseResponse reads a state endpoint's 200 answer into records
// (with each result's raw JSON kept for evidence). It rejects anything that
// is not the documented shape rather than guessing.
func DecodeLicenseResponse(body []byte) ([]licenseRecord, error) {
	var resp licenseAPIResponse
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(&resp); err != nil {
		return nil, fmt.Errorf("license endpoint: undecodable response: %w", err)
	}
	if resp.Results == nil {
		return nil, errors.New("license endpoint: response has no results array")
	}
	out := make([]licenseRecord, 0, len(resp.Results))
	for i, raw := range resp.Results {
		var a LicenseAPIRecord
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("license endpoint: result %d: %w", i, err)
		}
		st := strings.ToUpper(strings.TrimSpace(a.State))
		if a.LicenseNumber == "" || a.Status == "" {
			return nil, fmt.Errorf("license endpoint: result %d lacks license_number or status", i)
		}
		r := licenseRecord{State: st, Number: strings.TrimSpace(a.LicenseNumber), Type: a.LicenseType,
			Status: licenses.NormalizeStatus(a.Status), Last: a.LastName, First: a.FirstName, Middle: a.MiddleName,
			NPI: strings.TrimSpace(a.NPI), Record: raw, Digest: digest(raw)}
		if a.ExpirationDate != "" {
			v, err := sources.DateISO(a.ExpirationDate)
			if err != nil {
				return nil, fmt.Errorf("license endpoint: result %d: expiration_date: %w", i, err)
			}
			if t, ok := v.(time.Time); ok {
				r.Expiry = &t
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// lookupLicenseAPI asks the state's endpoint, through its breaker, with
// LicenseTimeout per call. Results in another state than asked are kept
// apart (the "only found in another state" rule).
func (e *Engine) lookupLicenseAPI(ctx context.Context, ep *licenseEndpoint, number string) (*licenseLookup, error) {
	lk := &licenseLookup{source: "license_api:" + ep.state}
	u := ep.url
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	u += sep + "state=" + url.QueryEscape(ep.state) + "&license_number=" + url.QueryEscape(strings.TrimSpace(number))
	var body []byte
	notFound := false
	err := ep.breaker.Do(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, e.o.LicenseTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := e.http.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxLicenseBody))
		if err != nil {
			return err
		}
		switch {
		case resp.StatusCode == http.StatusNotFound:
			notFound, body = true, b
			return nil
		case resp.StatusCode != http.StatusOK:
			return &breaker.StatusError{Code: resp.StatusCode}
		}
		body = b
		return nil
	})
	fetched := e.now().UTC()
	lk.fetchedAt = &fetched
	if err != nil {
		return lk, err
	}
	if notFound {
		return lk, nil
	}
	recs, err := DecodeLicenseResponse(body)
	if err != nil {
		return lk, err
	}
	for _, r := range recs {
		if r.State != "" && r.State != ep.state {
			r.OtherState = true
			lk.elsewhere = append(lk.elsewhere, r)
			continue
		}
		lk.records = append(lk.records, r)
	}
	return lk, nil
}
