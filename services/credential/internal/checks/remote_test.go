package checks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/sources/nppes"
	"github.com/provcred/credential/internal/sources/sourcestest"
	"github.com/provcred/platform/domain"
)

// registry is a local NPI Registry API v2.1 speaking the real wire format;
// its mode switches between health and the failures the engine must survive.
type registry struct {
	mu    sync.Mutex
	mode  string // ok | errors | 500 | stall | notfound
	hits  atomic.Int64
	stall time.Duration
	last  []byte
	// notFound is the body of a "no such NPI" answer.
	notFound []byte
}

func (r *registry) set(mode string) { r.mu.Lock(); r.mode = mode; r.mu.Unlock() }

func (r *registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.hits.Add(1)
	r.mu.Lock()
	mode := r.mode
	r.mu.Unlock()
	number := req.URL.Query().Get("number")
	if req.URL.Path != "/api/" || req.URL.Query().Get("version") != "2.1" {
		http.Error(w, "bad path", 400)
		return
	}
	switch mode {
	case "notfound":
		r.mu.Lock()
		r.last = r.notFound
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(r.notFound)
	case "errors":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"Errors":[{"description":"Field number requires 10 digits","field":"number","number":"03"}]}`)
	case "500":
		http.Error(w, `{"message":"Internal Server Error"}`, 500)
	case "stall":
		select {
		case <-time.After(r.stall):
		case <-req.Context().Done():
		}
	default:
		body := fmt.Sprintf(`{"result_count":1,"results":[{"created_epoch":"1117584000000","enumeration_type":"NPI-1",
"last_updated_epoch":1183852800000,"number":%s,"addresses":[{"country_code":"US","country_name":"United States",
"address_purpose":"MAILING","address_type":"DOM","address_1":"PO BOX 1","city":"CHICAGO","state":"IL","postal_code":"606010001"},
{"country_code":"US","country_name":"United States","address_purpose":"LOCATION","address_type":"DOM","address_1":"1 MAIN ST",
"city":"CHICAGO","state":"IL","postal_code":"606010001","telephone_number":"312-555-0100"}],"practiceLocations":[],
"basic":{"first_name":"ALICE","last_name":"WALKER","middle_name":"","credential":"M.D.","sole_proprietor":"NO","sex":"F",
"enumeration_date":"2005-05-23","last_updated":"2007-07-08","status":"A","name_prefix":"--","name_suffix":"--"},
"taxonomies":[{"code":"207Q00000X","taxonomy_group":"","desc":"Family Medicine","state":"IL","license":"036100001","primary":true}],
"identifiers":[],"endpoints":[],"other_names":[]}]}`, number)
		r.mu.Lock()
		r.last = []byte(body)
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}
}

func TestNPPESAPIModeFailuresAndBreaker(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	cases := ruleCases()[:1] // Alice Walker, clean
	ids := seedRules(k, cases)
	reg := &registry{mode: "ok", stall: 2 * time.Second}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	o := nppes.Settings(config.Defaults())
	o.AttemptTimeout, o.Retries, o.Backoff, o.CacheTTL = 150*time.Millisecond, 1, 5*time.Millisecond, 0
	// Open long enough that a loaded machine cannot let the probe through early.
	o.Breaker.ConsecutiveFailures, o.Breaker.OpenTimeout = 4, 3*time.Second
	client := must(nppes.NewClient(srv.URL, k.reg, o))
	e := k.engine(Options{NPPES: client, NPPESDeadline: 5 * time.Second})
	ctx := context.Background()
	credential := func() *results.Run {
		t.Helper()
		run, err := e.Credential(ctx, ids[0], RunOptions{Actor: "t"})
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	state := func() float64 {
		v, _ := k.reg.Value("circuit_breaker_state", "name=nppes_api")
		return v
	}

	run := credential()
	ch := run.Checks[1]
	if run.Decision != "approved" || ch.Outcome != "pass" || ch.Evidence.Source != "nppes_api" || ch.Evidence.FetchedAt == nil {
		t.Fatalf("healthy registry: %s, nppes %s %+v", run.Decision, ch.Outcome, ch.Evidence)
	}
	sum := sha256.Sum256(reg.last)
	if ch.Evidence.Digest != hex.EncodeToString(sum[:]) {
		t.Errorf("digest %s is not the sha256 of the response", ch.Evidence.Digest)
	}

	for _, c := range []struct {
		mode, detail string
	}{
		{"errors", "requires 10 digits"}, // Errors on HTTP 200
		{"stall", "timed out"},           // every attempt times out
		{"500", "HTTP 500"},              // server errors, retried, then the breaker opens
	} {
		reg.set(c.mode)
		run := credential()
		ch := run.Checks[1]
		if ch.Outcome != "unavailable" || run.Decision != "incomplete" || !strings.Contains(ch.Detail, c.detail) {
			t.Errorf("mode %s: decision %s, nppes %s %q", c.mode, run.Decision, ch.Outcome, ch.Detail)
		}
	}
	if state() != 2 {
		t.Fatalf("breaker state = %v after stalls and 500s, want 2 (open)", state())
	}
	before := reg.hits.Load()
	run = credential()
	if run.Checks[1].Outcome != "unavailable" || !strings.Contains(run.Checks[1].Detail, "breaker open") || reg.hits.Load() != before {
		t.Errorf("open breaker: %s %q, registry hit %d times", run.Checks[1].Outcome, run.Checks[1].Detail, reg.hits.Load()-before)
	}

	// The registry heals; after the open timeout a probe closes the breaker.
	reg.set("ok")
	time.Sleep(3100 * time.Millisecond)
	run = credential()
	if run.Decision != "approved" || state() != 0 {
		t.Fatalf("after healing: %s, breaker state %v", run.Decision, state())
	}
}

// licenseBoard is a local state license verification endpoint (docs/verification.md wire format).
type licenseBoard struct {
	mu     sync.Mutex
	status int
	body   string
	hits   atomic.Int64
}

func (b *licenseBoard) set(status int, body string) {
	b.mu.Lock()
	b.status, b.body = status, body
	b.mu.Unlock()
}

func (b *licenseBoard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.hits.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.URL.Query().Get("state") != "CA" || r.URL.Query().Get("license_number") == "" {
		http.Error(w, "bad query", 400)
		return
	}
	w.WriteHeader(b.status)
	fmt.Fprint(w, b.body)
}

// A registry answer that the NPI does not exist fails the check, and the
// answer itself is the evidence: its digest and when it was fetched.
func TestNPPESAPINotFoundKeepsTheAnswer(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	ids := seedRules(k, ruleCases()[:1])
	// The registry's real answer for an unknown number (ropensci/npi's recording).
	reg := &registry{mode: "notfound", notFound: sourcestest.RealData(t, "nppes_api_ropensci_api-a2f836.json")}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	o := nppes.Settings(config.Defaults())
	o.CacheTTL = 0
	client := must(nppes.NewClient(srv.URL, k.reg, o))
	e := k.engine(Options{NPPES: client, NPPESDeadline: 5 * time.Second})
	before := time.Now().UTC()
	run, err := e.Credential(context.Background(), ids[0], RunOptions{Actor: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ch := run.Checks[1]
	sum := sha256.Sum256(reg.notFound)
	if ch.Outcome != "fail" || !strings.Contains(ch.Detail, "not in the NPPES registry") || ch.Evidence.Source != "nppes_api" ||
		ch.Evidence.Digest != hex.EncodeToString(sum[:]) || ch.Evidence.FetchedAt == nil || ch.Evidence.FetchedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("not found: %s %q %+v", ch.Outcome, ch.Detail, ch.Evidence)
	}
}

func TestLicenseEndpoint(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	cases := ruleCases()[:1]
	cases[0].lics = []providers.License{{State: "CA", Number: "A12345"}}
	ids := seedRules(k, cases)
	board := &licenseBoard{}
	srv := httptest.NewServer(board)
	defer srv.Close()
	br := config.Defaults().Breaker()
	br.ConsecutiveFailures, br.OpenTimeout = 2, time.Hour
	e := k.engine(Options{LicenseEndpoints: map[string]string{"CA": srv.URL + "/verify"}, LicenseTimeout: 150 * time.Millisecond,
		Breaker: br})
	rec := func(state, status, expiry, first string) string {
		return fmt.Sprintf(`{"state":%q,"license_number":"A12345","license_type":"Physician and Surgeon","status":%q,
			"expiration_date":%q,"last_name":"Walker","first_name":%q,"middle_name":""}`, state, status, expiry, first)
	}
	for _, c := range []struct {
		name, body string
		want       domain.Outcome
		decision   domain.Decision
		status     int
	}{
		{"active", `{"results":[` + rec("CA", "Active", future, "Alice") + `]}`, "pass", "approved", 200},
		{"expired", `{"results":[` + rec("CA", "Expired", past, "Alice") + `]}`, "fail", "denied", 200},
		{"active past its expiry: contradicts itself", `{"results":[` + rec("CA", "Active", past, "Alice") + `]}`, "needs_review", "needs_review", 200},
		{"status the table does not know", `{"results":[` + rec("CA", "Pending Board Action", future, "Alice") + `]}`, "needs_review", "needs_review", 200},
		{"revoked", `{"results":[` + rec("CA", "REVOKED", future, "Alice") + `]}`, "fail", "denied", 200},
		{"none", `{"results":[]}`, "needs_review", "needs_review", 200},
		{"not found", `{"detail":"no such license"}`, "needs_review", "needs_review", 404},
		{"two", `{"results":[` + rec("CA", "Active", future, "Alice") + `,` + rec("CA", "Active", future, "Alicia") + `]}`, "needs_review", "needs_review", 200},
		{"other state", `{"results":[` + rec("NV", "Active", future, "Alice") + `]}`, "needs_review", "needs_review", 200},
		{"other name", `{"results":[` + rec("CA", "Active", future, "Beatrice") + `]}`, "needs_review", "needs_review", 200},
		{"garbage", `<html>maintenance</html>`, "unavailable", "incomplete", 200},
		{"500 once", `oops`, "unavailable", "incomplete", 500},
		{"500 twice: breaker opens", `oops`, "unavailable", "incomplete", 500},
	} {
		board.set(c.status, c.body)
		run, err := e.Credential(context.Background(), ids[0], RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ch := run.Checks[4]
		if ch.Outcome != c.want || run.Decision != c.decision {
			t.Errorf("%s: license %s (%s), decision %s; want %s, %s", c.name, ch.Outcome, ch.Detail, run.Decision, c.want, c.decision)
		}
		if ch.Outcome != "unavailable" && (ch.Evidence.FetchedAt == nil || ch.Evidence.Source != "license_api:CA") {
			t.Errorf("%s: evidence %+v", c.name, ch.Evidence)
		}
	}
	if v, _ := k.reg.Value("circuit_breaker_state", "name=license_CA"); v != 2 {
		t.Fatalf("license_CA breaker state %v, want open", v)
	}
	hits := board.hits.Load()
	board.set(200, `{"results":[`+rec("CA", "Active", future, "Alice")+`]}`)
	run, _ := e.Credential(context.Background(), ids[0], RunOptions{})
	if run.Checks[4].Outcome != "unavailable" || board.hits.Load() != hits {
		t.Errorf("open breaker still called the board (%d) or answered %s", board.hits.Load()-hits, run.Checks[4].Outcome)
	}
}

func TestLicenseEndpointDownHidesAddress(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	cases := ruleCases()[:1]
	cases[0].lics = []providers.License{{State: "CA", Number: "A12345"}}
	ids := seedRules(k, cases)
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there any more
	e := k.engine(Options{LicenseEndpoints: map[string]string{"CA": addr + "/internal/verify"}})
	run, err := e.Credential(context.Background(), ids[0], RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch := run.Checks[4]
	if ch.Outcome != "unavailable" || run.Decision != "incomplete" || !strings.Contains(ch.Detail, "connection failed") ||
		strings.Contains(ch.Detail, "127.0.0.1") || strings.Contains(ch.Detail, "/internal/verify") {
		t.Fatalf("license %s %q, decision %s", ch.Outcome, ch.Detail, run.Decision)
	}
}

// A state endpoint's answer is outside input: a NUL in it (PostgreSQL
// refuses NUL in text and jsonb) must not keep the run from being stored.
func TestLicenseEndpointAnswerWithNUL(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	cases := ruleCases()[:1]
	cases[0].lics = []providers.License{{State: "CA", Number: "A12345"}}
	ids := seedRules(k, cases)
	board := &licenseBoard{}
	srv := httptest.NewServer(board)
	defer srv.Close()
	e := k.engine(Options{LicenseEndpoints: map[string]string{"CA": srv.URL + "/verify"}})
	board.set(200, `{"results":[{"state":"CA","license_number":"A12345","status":"Active","expiration_date":"`+future+
		`","last_name":"Wal\u0000ker","first_name":"Alice\u0000","middle_name":""}]}`)
	run, err := e.Credential(context.Background(), ids[0], RunOptions{})
	if err != nil {
		t.Fatalf("run with a NUL in the license answer: %v", err)
	}
	stored, err := k.runs.Get(context.Background(), run.ID)
	if err != nil || stored == nil {
		t.Fatalf("run not stored: %v", err)
	}
	if c := stored.Checks[4]; c.Outcome == "unavailable" || strings.ContainsRune(c.Detail, 0) {
		t.Errorf("license check %s %q", c.Outcome, c.Detail)
	}
}
