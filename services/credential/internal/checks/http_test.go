package checks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/provcred/credential/internal/audit"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/seed"
	"github.com/provcred/platform/domain"
	"github.com/provcred/platform/server"
)

// app is the credential service's HTTP surface for these endpoints, built
// with the platform server (real error handler, request id, actor header).
func (k *kit) app(e *Engine) *server.Server {
	srv := server.New(server.Options{Service: "credential", Logger: k.log, Metrics: k.reg, BodyLimit: 1 << 20})
	(&Handler{Engine: e}).Routes(srv.App)
	(&results.Handler{Store: k.runs}).Routes(srv.App)
	(&audit.Handler{Pool: k.pool}).Routes(srv.App)
	return srv
}

func call(t *testing.T, srv *server.Server, method, path string, out any) int {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set(server.HeaderActor, "key_staff_1")
	resp, err := srv.App.Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: body %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

type apiError struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func TestCredentialEndpointStoresRunAndAudits(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	cases := ruleCases()
	ids := seedRules(k, cases)
	e := k.engine(Options{})
	srv := k.app(e)
	ctx := context.Background()

	// rule_01 is excluded by NPI in the LEIE: denied.
	var run results.Run
	if code := call(t, srv, "POST", "/credential/"+ids[1], &run); code != 200 {
		t.Fatalf("POST /credential = %d", code)
	}
	if run.Decision != "denied" || run.Actor != "key_staff_1" || run.RequestID == "" || len(run.Checks) != 5 {
		t.Fatalf("run = %+v", run)
	}
	var nRuns, nChecks int
	var decision string
	var verified *string
	must(0, k.pool.QueryRow(ctx, `SELECT count(*) FROM credential_runs WHERE provider_id = $1`, ids[1]).Scan(&nRuns))
	must(0, k.pool.QueryRow(ctx, `SELECT count(*) FROM credential_checks WHERE run_id = $1`, run.ID).Scan(&nChecks))
	must(0, k.pool.QueryRow(ctx, `SELECT decision, last_verified_at::text FROM providers WHERE id = $1`, ids[1]).Scan(&decision, &verified))
	if nRuns != 1 || nChecks != 5 || decision != "denied" || verified == nil {
		t.Fatalf("stored: runs %d checks %d decision %s verified %v", nRuns, nChecks, decision, verified)
	}
	if v, _ := k.reg.Value("credential_verifications_total", "decision=denied"); v != 1 {
		t.Errorf("credential_verifications_total{denied} = %v, want 1", v)
	}
	if v, _ := k.reg.Value("credential_checks_total", "check=leie", "outcome=fail"); v != 1 {
		t.Errorf("credential_checks_total{leie,fail} = %v, want 1", v)
	}
	for _, src := range []string{"nppes", "leie", "sam", "licenses"} {
		if n, _ := k.reg.Value("credential_source_duration_seconds", "source="+src); n != 1 {
			t.Errorf("credential_source_duration_seconds{%s} has %v samples, want 1", src, n)
		}
	}

	// The audit entry, through GET /logs with filters.
	var logs struct {
		Items      []audit.Record `json:"items"`
		NextCursor string         `json:"next_cursor"`
	}
	if code := call(t, srv, "GET", "/logs?provider="+ids[1]+"&event=credential.completed&actor=key_staff_1", &logs); code != 200 || len(logs.Items) != 1 {
		t.Fatalf("GET /logs = %d, %d items", code, len(logs.Items))
	}
	var after struct {
		Decision string `json:"decision"`
		RunID    string `json:"run_id"`
	}
	must(0, json.Unmarshal(logs.Items[0].After, &after))
	if after.Decision != "denied" || after.RunID != run.ID || string(logs.Items[0].Before) != `{"decision": null}` && string(logs.Items[0].Before) != `{"decision":null}` {
		t.Errorf("audit entry = before %s after %s", logs.Items[0].Before, logs.Items[0].After)
	}

	// A second run: history of two, paginated one by one; the latest is the second.
	var run2 results.Run
	call(t, srv, "POST", "/credential/"+ids[1], &run2)
	var pr results.ProviderResults
	if code := call(t, srv, "GET", "/results/"+ids[1]+"?limit=1", &pr); code != 200 {
		t.Fatalf("GET /results/:id = %d", code)
	}
	if pr.Latest == nil || pr.Latest.ID != run2.ID || len(pr.History) != 1 || pr.History[0].ID != run2.ID || pr.NextCursor == "" {
		t.Fatalf("results page 1 = latest %v history %d cursor %q", pr.Latest, len(pr.History), pr.NextCursor)
	}
	var pr2 results.ProviderResults
	call(t, srv, "GET", "/results/"+ids[1]+"?limit=1&cursor="+pr.NextCursor, &pr2)
	if len(pr2.History) != 1 || pr2.History[0].ID != run.ID || pr2.NextCursor != "" {
		t.Fatalf("results page 2 = %+v", pr2)
	}
	if len(pr2.History[0].Checks) != 5 || pr2.History[0].Checks[2].Evidence.Digest == "" {
		t.Errorf("history run lacks its checks and evidence: %+v", pr2.History[0].Checks)
	}

	// GET /results lists the latest run per provider, filtered by decision.
	call(t, srv, "POST", "/credential/"+ids[0], nil) // approved
	var list struct {
		Items []results.Run `json:"items"`
	}
	call(t, srv, "GET", "/results?decision=denied", &list)
	if len(list.Items) != 1 || list.Items[0].ID != run2.ID {
		t.Fatalf("GET /results?decision=denied = %+v", list.Items)
	}
	call(t, srv, "GET", "/results", &list)
	if len(list.Items) != 2 {
		t.Fatalf("GET /results = %d items, want 2 (one per provider)", len(list.Items))
	}
	var one results.Run
	if code := call(t, srv, "GET", "/results/run/"+run.ID, &one); code != 200 || one.ID != run.ID {
		t.Fatalf("GET /results/run/:id = %d %+v", code, one)
	}

	// History outlives the provider record.
	if err := k.store.Delete(ctx, providers.Actor{ID: "test"}, ids[1]); err != nil {
		t.Fatal(err)
	}
	pr = results.ProviderResults{}
	if code := call(t, srv, "GET", "/results/"+ids[1], &pr); code != 200 || pr.Latest == nil || len(pr.History) != 2 {
		t.Fatalf("after delete: %d %+v", code, pr)
	}
	call(t, srv, "GET", "/logs/"+ids[1], &logs)
	if len(logs.Items) < 4 { // created, 2 × credential.completed, deleted
		t.Errorf("GET /logs/:id = %d entries", len(logs.Items))
	}
}

func TestEndpointErrors(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	e := k.engine(Options{})
	srv := k.app(e)
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"POST", "/credential/nobody", 404, "not_found"},
		{"GET", "/results/nobody", 404, "not_found"},
		{"GET", "/results/run/not-a-uuid", 404, "not_found"},
		{"GET", "/results/run/" + uuid.NewString(), 404, "not_found"},
		{"GET", "/results?decision=maybe", 422, "validation_failed"},
		{"GET", "/results?since=yesterday", 422, "validation_failed"},
		{"GET", "/results?limit=0", 422, "validation_failed"},
		{"GET", "/results?cursor=%%%", 400, "invalid_cursor"},
		{"GET", "/results?cursor=eyJmIjoiMjAyNi0wMS0wMVQwMDowMDowMFoiLCJpIjoieCJ9", 400, "invalid_cursor"},
		{"GET", "/logs?since=2026-13-01", 422, "validation_failed"},
		{"GET", "/logs?since=2026-02-01&until=2026-01-01", 422, "validation_failed"},
		{"GET", "/logs?cursor=eyJpIjotMX0", 400, "invalid_cursor"},
	} {
		var body apiError
		if got := call(t, srv, c.method, c.path, &body); got != c.status || body.Code != c.code || body.Detail == "" {
			t.Errorf("%s %s = %d %+v, want %d %s", c.method, c.path, got, body, c.status, c.code)
		}
	}
}

func TestNoSourcesIsIncomplete(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	k.create(&providers.Provider{ID: "p1", NPI: seed.NPI("123456789"), FirstName: "Ann", LastName: "Lee", Licenses: lic("IL", "1")})
	e := k.engine(Options{})
	run, err := e.Credential(context.Background(), "p1", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if run.Decision != "incomplete" {
		t.Fatalf("decision = %s", run.Decision)
	}
	for _, c := range run.Checks {
		want := domain.Unavailable
		if c.Check == results.CheckNPIFormat {
			want = domain.Pass
		}
		if c.Outcome != want {
			t.Errorf("%s = %s, want %s", c.Check, c.Outcome, want)
		}
	}
	var verified *string
	var decision string
	must(0, k.pool.QueryRow(context.Background(), `SELECT decision, last_verified_at::text FROM providers WHERE id = 'p1'`).Scan(&decision, &verified))
	if decision != "incomplete" || verified != nil {
		t.Errorf("provider decision %s, last_verified_at %v: an incomplete run verifies nothing", decision, verified)
	}
}

func TestInvalidNPIIsDenied(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	// The provider API refuses a bad check digit; a record can still hold one
	// (older data, direct loads), and the engine must deny it.
	_, err := k.pool.Exec(context.Background(), `INSERT INTO providers (id, npi, first_name, last_name) VALUES ('bad', '1234567890', 'A', 'B')`)
	if err != nil {
		t.Fatal(err)
	}
	run, err := k.engine(Options{}).Credential(context.Background(), "bad", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if run.Decision != "denied" || run.Checks[0].Outcome != "fail" {
		t.Fatalf("decision %s, npi_format %s", run.Decision, run.Checks[0].Outcome)
	}
}

func TestCredentialForBatchIsIdempotent(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	cases := ruleCases()[:2]
	ids := seedRules(k, cases)
	e := k.engine(Options{})
	ctx := context.Background()
	batch := uuid.NewString()

	// Concurrent attempts for one (batch, provider): one final result.
	var wg sync.WaitGroup
	runIDs := make([]string, 6)
	for i := range runIDs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, d, err := e.CredentialForBatch(ctx, ids[1], batch, "batch-worker")
			if err != nil || d != "denied" {
				t.Errorf("CredentialForBatch = %s %s %v", id, d, err)
			}
			runIDs[i] = id
		}()
	}
	wg.Wait()
	for _, id := range runIDs[1:] {
		if id != runIDs[0] {
			t.Fatalf("run ids differ: %v", runIDs)
		}
	}
	var n int
	must(0, k.pool.QueryRow(ctx, `SELECT count(*) FROM credential_runs WHERE batch_id = $1`, batch).Scan(&n))
	if n != 1 {
		t.Fatalf("%d runs stored for one batch item", n)
	}
	// Another batch credentials again.
	id2, _, err := e.CredentialForBatch(ctx, ids[1], uuid.NewString(), "batch-worker")
	if err != nil || id2 == runIDs[0] {
		t.Fatalf("second batch: %s %v", id2, err)
	}
	if _, _, err := e.CredentialForBatch(ctx, "ghost", batch, "w"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown provider: %v", err)
	}
	// The index itself refuses a second final result.
	_, err = k.pool.Exec(ctx, `INSERT INTO credential_runs (id, provider_id, npi, batch_id, decision, actor, started_at, finished_at)
		VALUES (gen_random_uuid(), $1, '1', $2, 'approved', 'x', now(), now())`, ids[1], batch)
	if err == nil {
		t.Fatal("a second final result for the same batch item was stored")
	}
}

func TestIncompleteBatchRunsMayRepeat(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	k.create(&providers.Provider{ID: "p1", NPI: seed.NPI("123456789"), FirstName: "Ann", LastName: "Lee"})
	e := k.engine(Options{})
	batch := uuid.NewString()
	a, d, err := e.CredentialForBatch(context.Background(), "p1", batch, "w")
	if err != nil || d != "incomplete" {
		t.Fatal(d, err)
	}
	b, _, err := e.CredentialForBatch(context.Background(), "p1", batch, "w")
	if err != nil || a == b {
		t.Fatalf("an incomplete result must be retried: %s %s %v", a, b, err)
	}
}

var _ = http.StatusOK
