package licenses

import (
	"bytes"
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
	"github.com/provcred/platform/breaker"
)

// APIRecord is one license in a state endpoint's answer. The wire format
// (docs/verification.md) is ours: states' boards differ, so an adapter in
// front of each speaks this:
//
//	GET {url}?state=CA&license_number=A123
//	200 {"results":[{"state","license_number","license_type","status",
//	                 "expiration_date":"YYYY-MM-DD","last_name","first_name","middle_name","npi"}]}
//
// An empty list or a 404 means no such license; 5xx and timeouts count
// against the breaker.
type APIRecord struct {
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

type apiResponse struct {
	Results []json.RawMessage `json:"results"`
}

const maxAPIBody = 1 << 20

// DecodeResponse reads a state endpoint's 200 answer into records (with
// each result's raw JSON kept for evidence). It rejects anything that is not
// the documented shape rather than guessing.
func DecodeResponse(body []byte) ([]Record, error) {
	var resp apiResponse
	// The first JSON value decides (what follows it is not read), as ever.
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&resp); err != nil {
		return nil, fmt.Errorf("license endpoint: undecodable response: %w", err)
	}
	if resp.Results == nil {
		return nil, errors.New("license endpoint: response has no results array")
	}
	out := make([]Record, 0, len(resp.Results))
	for i, raw := range resp.Results {
		var a APIRecord
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("license endpoint: result %d: %w", i, err)
		}
		if a.LicenseNumber == "" || a.Status == "" {
			return nil, fmt.Errorf("license endpoint: result %d lacks license_number or status", i)
		}
		r := Record{State: strings.ToUpper(strings.TrimSpace(a.State)), Number: strings.TrimSpace(a.LicenseNumber),
			Type: a.LicenseType, Status: FoldStatus(a.Status), Last: a.LastName, First: a.FirstName,
			Middle: a.MiddleName, NPI: strings.TrimSpace(a.NPI), Record: raw, Digest: sources.Digest(raw)}
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

// Endpoint is one state's license verification endpoint, behind its own
// breaker (license_<state>) so one state's outage leaves the others alone.
type Endpoint struct {
	State   string
	URL     string
	Breaker *breaker.Breaker
	HTTP    *http.Client
	// Timeout bounds one call.
	Timeout time.Duration
	// Now is the clock of FetchedAt.
	Now func() time.Time
}

// Lookup asks the endpoint for license number, through the breaker.
// Results in another state than asked are kept apart (Found.Elsewhere: the
// "only found in another state" rule).
func (ep *Endpoint) Lookup(ctx context.Context, number string) (*Found, error) {
	f := &Found{Source: "license_api:" + ep.State}
	u := ep.URL
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	u += sep + "state=" + url.QueryEscape(ep.State) + "&license_number=" + url.QueryEscape(strings.TrimSpace(number))
	var body []byte
	notFound := false
	err := ep.Breaker.Do(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, ep.Timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := ep.HTTP.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBody))
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
	fetched := ep.Now().UTC()
	f.FetchedAt = &fetched
	if err != nil {
		return f, err
	}
	if notFound {
		return f, nil
	}
	recs, err := DecodeResponse(body)
	if err != nil {
		return f, err
	}
	for _, r := range recs {
		if r.State != "" && r.State != ep.State {
			f.Elsewhere = append(f.Elsewhere, r)
			continue
		}
		f.InState = append(f.InState, r)
	}
	return f, nil
}
