package nppes

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/metrics"
)

// Shapes as the NPI Registry API v2.1 sends them.
const (
	foundNumberString = `{"result_count":1,"results":[{"created_epoch":"1117584000000","enumeration_type":"NPI-1",
"last_updated_epoch":"1183953600000","number":"1234567893","addresses":[{"country_code":"US","address_purpose":"MAILING","state":"CA"},
{"country_code":"US","address_purpose":"LOCATION","address_1":"1 MAIN ST","city":"AUSTIN","state":"TX","postal_code":"787010000"}],
"practiceLocations":[],"basic":{"first_name":"JOHN","last_name":"SMITH","middle_name":"Q","credential":"M.D.","sole_proprietor":"NO",
"gender":"M","enumeration_date":"2005-05-23","last_updated":"2007-07-08","status":"A","name_suffix":"Jr."},
"taxonomies":[{"code":"207Q00000X","taxonomy_group":"","desc":"Family Medicine","state":"TX","license":"A1234","primary":true}],
"identifiers":[],"endpoints":[],"other_names":[]}]}`
	foundNumberNumber = `{"result_count":1,"results":[{"created_epoch":1117584000000,"enumeration_type":"NPI-1",
"last_updated_epoch":1183953600000,"number":1234567893,"addresses":[],"basic":{"first_name":"JANE","last_name":"DOE",
"sex":"F","enumeration_date":"2005-05-23","status":"A"},"taxonomies":[{"code":"363L00000X","primary":false,"state":"NY","license":"9"}]}]}`
	organization = `{"result_count":1,"results":[{"number":"1234567893","enumeration_type":"NPI-2",
"basic":{"organization_name":"ACME CLINIC LLC","organization_subpart":"NO","status":"A","enumeration_date":"2010-01-01",
"authorized_official_first_name":"ANN","authorized_official_last_name":"LEE"},"taxonomies":[]}]}`
	notFound    = `{"result_count":0,"results":[]}`
	errorsOn200 = `{"Errors":[{"description":"Field number requires number to be exactly 10 digits","field":"number","number":"04"}]}`
)

// newClient is a client at the settings' defaults (the struct tags, through
// Settings) with short attempts and backoff; set changes them.
func newClient(t *testing.T, url string, set func(*ClientOptions)) *Client {
	t.Helper()
	o := Settings(config.Defaults())
	o.AttemptTimeout, o.Backoff = 300*time.Millisecond, 5*time.Millisecond
	if set != nil {
		set(&o)
	}
	c, err := NewClient(url, metrics.New("test"), o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestLookupShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		check   func(t *testing.T, r *Record)
		wantErr error
	}{
		{name: "found, number as string", body: foundNumberString, check: func(t *testing.T, r *Record) {
			if r.NPI != "1234567893" || r.LastName != "SMITH" || r.FirstName != "JOHN" || r.EntityType != "1" ||
				r.Status != "A" || !r.Active() || r.Gender != "M" || r.State != "TX" || r.PrimaryTaxonomy != "207Q00000X" ||
				r.Taxonomies[0].License != "A1234" || r.EnumerationDate.Format("2006-01-02") != "2005-05-23" ||
				r.LastUpdated == nil || r.Source != Name {
				t.Errorf("record %+v", r)
			}
		}},
		{name: "found, number and epochs as numbers, sex", body: foundNumberNumber, check: func(t *testing.T, r *Record) {
			if r.NPI != "1234567893" || r.Gender != "F" || r.LastUpdated.UnixMilli() != 1183953600000 ||
				r.PrimaryTaxonomy != "363L00000X" {
				t.Errorf("record %+v", r)
			}
		}},
		{name: "organization", body: organization, check: func(t *testing.T, r *Record) {
			if r.EntityType != "2" || r.Individual() || r.OrganizationName != "ACME CLINIC LLC" || r.LastName != "" {
				t.Errorf("record %+v", r)
			}
		}},
		{name: "result_count 0", body: notFound, wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotQuery string
			s := serve(t, func(w http.ResponseWriter, r *http.Request) {
				gotQuery = r.URL.Path + "?" + r.URL.RawQuery
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, tt.body)
			})
			rec, raw, err := newClient(t, s.URL, nil).Lookup(context.Background(), "1234567893")
			if gotQuery != "/api/?version=2.1&number=1234567893" {
				t.Errorf("query %s", gotQuery)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(raw) != tt.body || len(rec.Digest) != 64 {
				t.Errorf("raw/digest not the response body")
			}
			tt.check(t, rec)
		})
	}
}

func TestErrorsOn200NotRetried(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		fmt.Fprint(w, errorsOn200)
	})
	c := newClient(t, s.URL, func(o *ClientOptions) { o.Breaker.ConsecutiveFailures = 1 })
	for i := 0; i < 3; i++ {
		_, _, err := c.Lookup(context.Background(), "123")
		var ae *APIError
		if !errors.As(err, &ae) || ae.Items[0].Field != "number" || ae.Items[0].Number != "04" {
			t.Fatalf("err = %v, want APIError", err)
		}
	}
	if calls.Load() != 3 || c.Breaker.State() != "closed" {
		t.Errorf("calls %d (want 3, no retries), breaker %s (want closed)", calls.Load(), c.Breaker.State())
	}
}

func Test4xxNotRetried(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "bad", http.StatusBadRequest)
	})
	_, _, err := newClient(t, s.URL, nil).Lookup(context.Background(), "1234567893")
	var se *breaker.StatusError
	if !errors.As(err, &se) || se.Code != 400 || calls.Load() != 1 {
		t.Fatalf("err %v, calls %d: want one 400 attempt", err, calls.Load())
	}
}

func TestRetriesThenBreakerOpensThenHeals(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	var healthy atomic.Bool
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !healthy.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		fmt.Fprint(w, foundNumberString)
	})
	c := newClient(t, s.URL, func(o *ClientOptions) {
		o.Retries, o.CacheTTL = 2, 0
		o.Breaker.ConsecutiveFailures, o.Breaker.OpenTimeout = 5, 200*time.Millisecond
	})
	ctx := context.Background()

	_, _, err := c.Lookup(ctx, "1234567893")
	var se *breaker.StatusError
	if !errors.As(err, &se) || se.Code != 502 || calls.Load() != 3 {
		t.Fatalf("first lookup: err %v after %d calls, want 502 after 3 attempts", err, calls.Load())
	}
	// Two more failures trip it (5 consecutive) during the second lookup's retries.
	_, _, err = c.Lookup(ctx, "1234567893")
	if !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("second lookup: err %v, want breaker open", err)
	}
	before := calls.Load()
	_, _, err = c.Lookup(ctx, "1234567893")
	if !errors.Is(err, breaker.ErrOpen) || calls.Load() != before {
		t.Fatalf("open breaker called the server (err %v)", err)
	}
	healthy.Store(true)
	time.Sleep(250 * time.Millisecond)
	rec, _, err := c.Lookup(ctx, "1234567893")
	if err != nil || rec.LastName != "SMITH" || c.Breaker.State() != "closed" {
		t.Fatalf("after healing: err %v, breaker %s", err, c.Breaker.State())
	}
}

func TestStallTimesOut(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	release := make(chan struct{})
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	// Long enough for the retry to reach the server on a loaded machine.
	c := newClient(t, s.URL, func(o *ClientOptions) { o.Retries = 1 })
	start := time.Now()
	_, _, err := c.Lookup(context.Background(), "1234567893")
	if !breaker.IsTimeout(err) || calls.Load() != 2 {
		t.Fatalf("err %v after %d calls, want a timeout after 2 attempts", err, calls.Load())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		npi := r.URL.Query().Get("number")
		fmt.Fprint(w, strings.Replace(foundNumberString, "1234567893", npi, 1))
	})
	c := newClient(t, s.URL, func(o *ClientOptions) { o.CacheTTL, o.CacheSize = time.Minute, 2 })
	now := time.Now()
	c.now = func() time.Time { return now }
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		r, _, err := c.Lookup(ctx, "1234567893")
		if err != nil {
			t.Fatal(err)
		}
		r.LastName = "MUTATED" // a caller's change must not reach the cache
	}
	if calls.Load() != 1 {
		t.Errorf("%d calls for 3 lookups within the TTL", calls.Load())
	}
	if r, _, _ := c.Lookup(ctx, "1234567893"); r.LastName != "SMITH" {
		t.Error("cache returned a caller's mutation")
	}
	now = now.Add(2 * time.Minute)
	_, _, _ = c.Lookup(ctx, "1234567893")
	if calls.Load() != 2 {
		t.Errorf("expired entry served from cache (calls %d)", calls.Load())
	}
	for _, n := range []string{"1000000004", "1000000012", "1000000020"} {
		if _, _, err := c.Lookup(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.cache.len(); n != 2 {
		t.Errorf("cache holds %d entries, bound is 2", n)
	}
}

func FuzzDecodeResponse(f *testing.F) {
	for _, b := range []string{foundNumberString, foundNumberNumber, organization, notFound, errorsOn200, `{}`, `[]`, `{"results":null}`} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec, err := DecodeResponse(body, "1234567893")
		if err == nil && (rec == nil || rec.NPI != "1234567893") {
			t.Fatalf("decoded %+v without error for another NPI", rec)
		}
	})
}

// TestNewClientTakesOptionsAsGiven: an unusable option is an error naming
// it, not a default; CacheTTL 0 is no cache.
func TestNewClientTakesOptionsAsGiven(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		set  func(*ClientOptions)
		want string
	}{
		{func(o *ClientOptions) { o.AttemptTimeout = 0 }, "AttemptTimeout"},
		{func(o *ClientOptions) { o.Retries = -1 }, "Retries"},
		{func(o *ClientOptions) { o.Backoff = -time.Millisecond }, "Backoff"},
		{func(o *ClientOptions) { o.MaxConcurrent = 0 }, "MaxConcurrent"},
		{func(o *ClientOptions) { o.MaxWait = 0 }, "MaxWait"},
		{func(o *ClientOptions) { o.CacheTTL = -time.Second }, "CacheTTL"},
		{func(o *ClientOptions) { o.CacheSize = 0 }, "CacheSize"},
	} {
		o := Settings(config.Defaults())
		tc.set(&o)
		if _, err := NewClient("http://registry", metrics.New("test"), o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v", tc.want, err)
		}
	}
	var calls atomic.Int32
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		fmt.Fprint(w, foundNumberString)
	})
	c := newClient(t, s.URL, func(o *ClientOptions) { o.CacheTTL, o.CacheSize = 0, 0 })
	for range 2 {
		if _, _, err := c.Lookup(context.Background(), "1234567893"); err != nil {
			t.Fatal(err)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("%d calls for 2 lookups without a cache", calls.Load())
	}
}
