package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provcred/credential/internal/seed"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/domain"
	"github.com/provcred/platform/metrics"
)

func TestSubmitIsOneTransaction(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, false)
	ids := e.seedProviders(t, 5)
	ctx := context.Background()

	// A failure after the jobs were inserted rolls back batch, items and jobs.
	boom := errors.New("boom after jobs")
	e.svc.testHookAfterJobs = func(ctx context.Context, tx pgx.Tx) error {
		var jobs int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM river_job`).Scan(&jobs); err != nil {
			return err
		}
		if jobs != 5 {
			return fmt.Errorf("inside the transaction: %d jobs, want 5", jobs)
		}
		return boom
	}
	_, err := e.svc.Submit(ctx, Submission{IDs: ids, Source: "ids", Actor: "k1", Hash: "h"})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	for _, table := range []string{"batches", "batch_items", "river_job"} {
		if n := e.count(t, `SELECT count(*) FROM `+table); n != 0 {
			t.Errorf("%s has %d rows after a failed submission", table, n)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM audit_log WHERE event = 'batch.submitted'`); n != 0 {
		t.Errorf("audit has %d batch.submitted entries after rollback", n)
	}

	// Without the failure everything lands together.
	e.svc.testHookAfterJobs = nil
	out, err := e.svc.Submit(ctx, Submission{IDs: append(ids, "nobody"), Source: "ids", Actor: "k1", Hash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Total != 6 || out.Queued != 5 || len(out.UnknownIDs) != 1 {
		t.Fatalf("submitted %+v", out)
	}
	if n := e.count(t, `SELECT count(*) FROM river_job WHERE queue = $1 AND args->>'batch_id' = $2`, QueueName, out.BatchID); n != 5 {
		t.Errorf("%d jobs, want 5", n)
	}
	if n := e.count(t, `SELECT count(*) FROM batch_items i JOIN river_job j ON j.id = i.job_id WHERE i.batch_id = $1`, out.BatchID); n != 5 {
		t.Errorf("%d items linked to their jobs, want 5", n)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_log WHERE event = 'batch.submitted' AND entity_id = $1 AND actor = 'k1'`, out.BatchID); n != 1 {
		t.Errorf("audit entries %d, want 1", n)
	}
}

func TestJobsAreUniquePerBatchAndProvider(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, false)
	ids := e.seedProviders(t, 2)
	ctx := context.Background()
	out, err := e.svc.Submit(ctx, Submission{IDs: ids, Source: "ids", Actor: "k1", Hash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args JobArgs
		dup  bool
	}{
		{"same batch and provider", JobArgs{BatchID: out.BatchID, ProviderID: ids[0], Actor: "k1"}, true},
		{"same pair, other actor", JobArgs{BatchID: out.BatchID, ProviderID: ids[0], Actor: "someone else"}, true},
		{"other provider", JobArgs{BatchID: out.BatchID, ProviderID: "prov_other", Actor: "k1"}, false},
		{"other batch", JobArgs{BatchID: "00000000-0000-0000-0000-000000000001", ProviderID: ids[0], Actor: "k1"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.svc.Client().Insert(ctx, tc.args, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.UniqueSkippedAsDuplicate != tc.dup {
				t.Fatalf("UniqueSkippedAsDuplicate = %v, want %v", res.UniqueSkippedAsDuplicate, tc.dup)
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, false)
	ids := e.seedProviders(t, 3)
	first := e.do(t, "POST", "/batch-credential", "application/json", idsBody(ids...), "Idempotency-Key", "abc", "X-Actor-Id", "k1")
	if first.code != http.StatusAccepted {
		t.Fatalf("first: %d %s", first.code, first.raw)
	}
	id := first.body["batch_id"].(string)
	cases := []struct {
		name    string
		body    string
		headers []string
		code    int
		same    bool
	}{
		{"retry, same body", idsBody(ids...), []string{"Idempotency-Key", "abc", "X-Actor-Id", "k1"}, 200, true},
		{"retry, same ids, other spacing", ` {"provider_ids": ["` + strings.Join(ids, `" , "`) + `"]}`, []string{"Idempotency-Key", "abc", "X-Actor-Id", "k1"}, 200, true},
		{"same key, other body", idsBody(ids[0]), []string{"Idempotency-Key", "abc", "X-Actor-Id", "k1"}, 409, false},
		{"same key, other actor", idsBody(ids...), []string{"Idempotency-Key", "abc", "X-Actor-Id", "k2"}, 202, false},
		{"no key", idsBody(ids...), []string{"X-Actor-Id", "k1"}, 202, false},
		{"key too long", idsBody(ids...), []string{"Idempotency-Key", strings.Repeat("k", 256)}, 422, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "POST", "/batch-credential", "application/json", tc.body, tc.headers...)
			if r.code != tc.code {
				t.Fatalf("code %d, want %d: %s", r.code, tc.code, r.raw)
			}
			if tc.code == 422 {
				if r.body["code"] != "validation_failed" {
					t.Fatalf("code field %v", r.body["code"])
				}
				return
			}
			if tc.code == 409 {
				if r.body["code"] != "idempotency_key_reused" {
					t.Fatalf("code field %v", r.body["code"])
				}
				return
			}
			if got := r.body["batch_id"] == id; got != tc.same {
				t.Fatalf("same batch = %v, want %v (%s)", got, tc.same, r.raw)
			}
		})
	}
	if n := e.count(t, `SELECT count(*) FROM batches`); n != 3 {
		t.Fatalf("%d batches, want 3 (first, other actor, no key)", n)
	}
	if n := e.count(t, `SELECT count(*) FROM river_job WHERE args->>'batch_id' = $1`, id); n != 3 {
		t.Fatalf("replays added jobs: %d, want 3", n)
	}
}

func TestCancelStopsWhatHasNotRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, false)
	ids := e.seedProviders(t, 4)
	r := e.do(t, "POST", "/batch-credential", "application/json", idsBody(append(ids, "ghost")...))
	if r.code != 202 {
		t.Fatalf("%d %s", r.code, r.raw)
	}
	id := r.body["batch_id"].(string)
	// One item is already running (a worker took it): cancel leaves it.
	if _, err := e.pool.Exec(context.Background(), `UPDATE batch_items SET state = 'running' WHERE batch_id = $1 AND provider_id = $2`, id, ids[0]); err != nil {
		t.Fatal(err)
	}
	c := e.do(t, "DELETE", "/batch/"+id, "", "", "X-Actor-Id", "k9")
	if c.code != 200 {
		t.Fatalf("cancel %d %s", c.code, c.raw)
	}
	if c.body["items_canceled"] != float64(3) {
		t.Fatalf("items_canceled %v", c.body["items_canceled"])
	}
	counts := c.body["counts"].(map[string]any)
	if counts["canceled"] != float64(3) || counts["running"] != float64(1) || counts["unknown_provider"] != float64(1) {
		t.Fatalf("counts %v", counts)
	}
	if n := e.count(t, `SELECT count(*) FROM river_job WHERE args->>'batch_id' = $1`, id); n != 1 {
		t.Fatalf("%d jobs left, want only the running item's", n)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_log WHERE event = 'batch.canceled' AND actor = 'k9'`); n != 1 {
		t.Fatalf("audit %d", n)
	}
	// The running item finishes; the batch ends canceled.
	if err := e.svc.finishItem(context.Background(), id, ids[0], StateApproved, "run-1", ""); err != nil {
		t.Fatal(err)
	}
	p := e.do(t, "GET", "/results/batch/"+id, "", "")
	if p.body["status"] != StatusCanceled || p.body["finished_at"] == nil {
		t.Fatalf("after cancel: %s", p.raw)
	}
	if n := e.count(t, `SELECT count(*) FROM events WHERE type = 'batch.completed.v1' AND (data->>'canceled')::boolean
		AND data->>'batch_id' = $1`, id); n != 1 {
		t.Fatalf("%d batch.completed events for the canceled batch", n)
	}
	if r := e.do(t, "DELETE", "/batch/6a1f3c9e-0000-4000-8000-000000000000", "", ""); r.code != 404 || r.body["code"] != "not_found" {
		t.Fatalf("unknown batch: %d %s", r.code, r.raw)
	}
}

// A finished batch is not relabeled canceled: DELETE is 409 conflict, and
// nothing is audited (the e2e contract test found it answered 200).
func TestCancelAFinishedBatchIsAConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, false)
	ids := e.seedProviders(t, 2)
	r := e.do(t, "POST", "/batch-credential", "application/json", idsBody(ids...))
	if r.code != 202 {
		t.Fatalf("%d %s", r.code, r.raw)
	}
	id := r.body["batch_id"].(string)
	for _, pid := range ids {
		if err := e.svc.finishItem(context.Background(), id, pid, StateApproved, "run-"+pid, ""); err != nil {
			t.Fatal(err)
		}
	}
	c := e.do(t, "DELETE", "/batch/"+id, "", "", "X-Actor-Id", "k9")
	if c.code != 409 || c.body["code"] != "conflict" {
		t.Fatalf("cancel a finished batch: %d %s", c.code, c.raw)
	}
	p := e.do(t, "GET", "/results/batch/"+id, "", "")
	if p.body["status"] != StatusFinished || p.body["canceled_at"] != nil {
		t.Fatalf("after the refused cancel: %s", p.raw)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_log WHERE event = 'batch.canceled' AND entity_id = $1`, id); n != 0 {
		t.Fatalf("audited %d cancellations", n)
	}
}

func TestCanceledItemIsSkippedByWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, false)
	ids := e.seedProviders(t, 3)
	out, err := e.svc.Submit(context.Background(), Submission{IDs: ids, Source: "ids", Actor: "k", Hash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Cancel(context.Background(), out.BatchID, "k", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := e.count(t, `SELECT count(*) FROM test_batch_runs`); n != 0 {
		t.Fatalf("%d runs for a canceled batch", n)
	}
}

func TestSnoozeOnIncompleteThenSuccess(t *testing.T) {
	t.Parallel()
	var cred *scriptedCredentialer
	e := newEnv(t, nil, func(o *Options) {
		cred = newScripted(t, o.Pool, func(id string, call int) (domain.Decision, error) {
			switch {
			case id == "prov_000" && call == 1: // a source is down the first time
				return domain.Incomplete, nil
			case id == "prov_001": // always down: ends incomplete after max attempts
				return domain.Incomplete, nil
			case id == "prov_002" && call == 1: // engine error once: retried by River
				return "", errors.New("database hiccup")
			}
			return domain.Approved, nil
		})
		o.Credentialer = cred
	}, true)
	ids := e.seedProviders(t, 4)
	out, err := e.svc.Submit(context.Background(), Submission{IDs: ids, Source: "ids", Actor: "k", Hash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	p := e.waitDone(t, out.BatchID, 45*time.Second)
	want := map[string]struct {
		state    string
		attempts int
	}{
		"prov_000": {StateApproved, 2},
		"prov_001": {StateIncomplete, 3},
		"prov_002": {StateApproved, 2},
		"prov_003": {StateApproved, 1},
	}
	for _, it := range p.Items {
		w := want[it.ProviderID]
		if it.State != w.state || it.Attempts != w.attempts {
			t.Errorf("%s: state %s attempts %d, want %s %d (%s)", it.ProviderID, it.State, it.Attempts, w.state, w.attempts, it.LastError)
		}
		if it.RunID == nil {
			t.Errorf("%s: no run id", it.ProviderID)
		}
	}
	// Exactly one final (non-incomplete) result per provider that got one.
	if n := e.count(t, `SELECT count(*) FROM test_batch_runs WHERE decision <> 'incomplete'`); n != 3 {
		t.Errorf("final runs %d, want 3", n)
	}
	if v, _ := e.reg.Value("credential_batch_snoozes_total"); v != 3 { // prov_000 once, prov_001 twice
		t.Errorf("snoozes %v, want 3", v)
	}
	if v, _ := e.reg.Value("credential_batch_items_total", "outcome=approved"); v != 3 {
		t.Errorf("approved items metric %v", v)
	}
	if v, _ := e.reg.Value("credential_batch_items_total", "outcome=incomplete"); v != 1 {
		t.Errorf("incomplete items metric %v", v)
	}
	if p.Status != StatusFinished || p.FinishedAt == nil || p.ThroughputPerSecond <= 0 {
		t.Errorf("progress %+v", p)
	}
}

func TestUnknownIDsAndDuplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, true)
	ids := e.seedProviders(t, 2)
	r := e.do(t, "POST", "/batch-credential?wait=15s", "application/json",
		idsBody(ids[0], "ghost_1", ids[1], ids[0], " ghost_1 ", "ghost_2"))
	if r.code != 200 {
		t.Fatalf("%d %s", r.code, r.raw)
	}
	if r.body["status"] != StatusFinished || r.body["total"] != float64(4) || r.body["duplicates_removed"] != float64(2) {
		t.Fatalf("answer %s", r.raw)
	}
	unknown := fmt.Sprint(r.body["unknown_ids"])
	if unknown != "[ghost_1 ghost_2]" {
		t.Fatalf("unknown_ids %s", unknown)
	}
	states := map[string]string{}
	for _, it := range r.body["items"].([]any) {
		m := it.(map[string]any)
		states[m["provider_id"].(string)] = m["state"].(string)
	}
	want := map[string]string{ids[0]: "approved", ids[1]: "approved", "ghost_1": "unknown_provider", "ghost_2": "unknown_provider"}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Fatalf("states %v, want %v", states, want)
	}
}

func TestProviderDeletedBeforeItsJobRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, false)
	ids := e.seedProviders(t, 2)
	out, err := e.svc.Submit(context.Background(), Submission{IDs: ids, Source: "ids", Actor: "k", Hash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(context.Background(), `DELETE FROM providers WHERE id = $1`, ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := e.waitDone(t, out.BatchID, 20*time.Second)
	if p.Counts[StateApproved] != 1 || p.Counts[StateUnknownProvider] != 1 {
		t.Fatalf("counts %v", p.Counts)
	}
}

func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, func(o *Options) { o.MaxProviders = 3 }, false)
	e.seedProviders(t, 1)
	cases := []struct {
		name, method, path, ctype, body string
		code                            int
		errCode                         string
	}{
		{"empty list", "POST", "/batch-credential", "application/json", `{"provider_ids":[]}`, 422, "validation_failed"},
		{"missing list", "POST", "/batch-credential", "application/json", `{}`, 422, "validation_failed"},
		{"blank id", "POST", "/batch-credential", "application/json", `{"provider_ids":["a"," "]}`, 422, "validation_failed"},
		{"number id", "POST", "/batch-credential", "application/json", `{"provider_ids":[1]}`, 422, "validation_failed"},
		{"not a list", "POST", "/batch-credential", "application/json", `{"provider_ids":"a"}`, 422, "validation_failed"},
		{"unknown field", "POST", "/batch-credential", "application/json", `{"provider_ids":["a"],"ssn":"1"}`, 422, "validation_failed"},
		{"too many", "POST", "/batch-credential", "application/json", idsBody("a", "b", "c", "d"), 413, "batch_too_large"},
		{"duplicates do not count to the limit", "POST", "/batch-credential", "application/json", idsBody("prov_000", "b", "c", "prov_000", "b"), 202, ""},
		{"malformed", "POST", "/batch-credential", "application/json", `{"provider_ids":[`, 400, "invalid_json"},
		{"empty body", "POST", "/batch-credential", "application/json", ``, 400, "invalid_json"},
		{"duplicate key", "POST", "/batch-credential", "application/json", `{"provider_ids":["a"],"provider_ids":["b"]}`, 400, "invalid_json"},
		{"wrong type", "POST", "/batch-credential", "application/xml", `<x/>`, 415, "unsupported_media_type"},
		{"bad wait", "POST", "/batch-credential?wait=soon", "application/json", idsBody("a"), 422, "validation_failed"},
		{"negative wait", "POST", "/batch-credential?wait=-1s", "application/json", idsBody("a"), 422, "validation_failed"},
		{"bad csv", "POST", "/batch-credential", "text/csv", "npi,first_name\n1", 422, "import_failed"},
		{"unknown batch", "GET", "/results/batch/nope", "", "", 404, "not_found"},
		{"bad state filter", "GET", "/results/batch/nope?state=bogus", "", "", 422, "validation_failed"},
		{"bad cursor", "GET", "/results/batch/nope?cursor=%%%", "", "", 400, "invalid_cursor"},
		{"bad limit", "GET", "/batches?limit=0", "", "", 422, "validation_failed"},
		// {"t":"2026-01-01T00:00:00Z","i":"\u0000"}: PostgreSQL refuses NUL (was a 500).
		{"cursor with NUL", "GET", "/batches?cursor=eyJ0IjoiMjAyNi0wMS0wMVQwMDowMDowMFoiLCJpIjoiXHUwMDAwIn0", "", "", 400, "invalid_cursor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, tc.method, tc.path, tc.ctype, tc.body)
			if r.code != tc.code {
				t.Fatalf("code %d, want %d: %s", r.code, tc.code, r.raw)
			}
			if tc.errCode != "" && (r.body["code"] != tc.errCode || r.body["detail"] == "") {
				t.Fatalf("body %s, want code %s", r.raw, tc.errCode)
			}
			if tc.code == 413 && !strings.Contains(r.raw, "at most 3") {
				t.Fatalf("413 does not say the limit: %s", r.raw)
			}
		})
	}
}

func TestRosterSubmission(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, true)
	csv := "id,npi,first_name,last_name,license_state,license_number\n" +
		"r1,1234567893,Ann,Lee,CA,A1\n" +
		"r1,1234567893,Ann,Lee,NV,B2\n" +
		"r2,1245319599,Bob,Ray,CA,C3\n"
	r := e.do(t, "POST", "/batch-credential?wait=15s", "text/csv", csv, "Idempotency-Key", "roster-1")
	if r.code != 200 {
		t.Fatalf("%d %s", r.code, r.raw)
	}
	if r.body["source"] != "roster" || r.body["total"] != float64(2) || r.body["counts"].(map[string]any)["approved"] != float64(2) {
		t.Fatalf("answer %s", r.raw)
	}
	if n := e.count(t, `SELECT count(*) FROM provider_licenses WHERE provider_id = 'r1'`); n != 2 {
		t.Fatalf("licenses of r1: %d", n)
	}
	// Retrying the same roster answers the same batch without writing again.
	before := e.count(t, `SELECT count(*) FROM audit_log`)
	again := e.do(t, "POST", "/batch-credential", "text/csv", csv, "Idempotency-Key", "roster-1")
	if again.code != 200 || again.body["batch_id"] != r.body["batch_id"] {
		t.Fatalf("replay %d %s", again.code, again.raw)
	}
	if after := e.count(t, `SELECT count(*) FROM audit_log`); after != before {
		t.Fatalf("replay wrote %d audit entries", after-before)
	}
	changed := strings.Replace(csv, "Bob", "Robert", 1)
	if c := e.do(t, "POST", "/batch-credential", "text/csv", changed, "Idempotency-Key", "roster-1"); c.code != 409 {
		t.Fatalf("changed roster, same key: %d %s", c.code, c.raw)
	}
}

func TestProgressPaginationAndFilter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, false)
	ids := e.seedProviders(t, 5)
	out, err := e.svc.Submit(context.Background(), Submission{IDs: append(ids, "ghost"), Source: "ids", Actor: "k", Hash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	cursor := ""
	for range 10 {
		path := "/results/batch/" + out.BatchID + "?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.do(t, "GET", path, "", "")
		if r.code != 200 {
			t.Fatalf("%d %s", r.code, r.raw)
		}
		for _, it := range r.body["items"].([]any) {
			seen = append(seen, it.(map[string]any)["provider_id"].(string))
		}
		c, _ := r.body["next_cursor"].(string)
		if c == "" {
			break
		}
		cursor = c
	}
	if fmt.Sprint(seen) != fmt.Sprint(append(ids, "ghost")) {
		t.Fatalf("pages gave %v", seen)
	}
	r := e.do(t, "GET", "/results/batch/"+out.BatchID+"?state=unknown_provider", "", "")
	items := r.body["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["provider_id"] != "ghost" {
		t.Fatalf("filtered %s", r.raw)
	}
	if r.body["status"] != StatusQueued || r.body["counts"].(map[string]any)["queued"] != float64(5) {
		t.Fatalf("progress %s", r.raw)
	}
	for range 2 {
		if _, err := e.svc.Submit(context.Background(), Submission{IDs: ids[:1], Source: "ids", Actor: "other", Hash: "h"}); err != nil {
			t.Fatal(err)
		}
	}
	var listed []string
	path := "/batches?limit=2"
	for path != "" {
		l := e.do(t, "GET", path, "", "")
		if l.code != 200 {
			t.Fatalf("list %d %s", l.code, l.raw)
		}
		for _, it := range l.body["items"].([]any) {
			listed = append(listed, it.(map[string]any)["batch_id"].(string))
		}
		path = ""
		if c, _ := l.body["next_cursor"].(string); c != "" {
			path = "/batches?limit=2&cursor=" + c
		}
	}
	if len(listed) != 3 || listed[2] != out.BatchID {
		t.Fatalf("listed %v, want 3 newest first ending with %s", listed, out.BatchID)
	}
	if l := e.do(t, "GET", "/batches?actor=other", "", ""); len(l.body["items"].([]any)) != 2 {
		t.Fatalf("actor filter: %s", l.raw)
	}
}

func TestQueueMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, false)
	ids := e.seedProviders(t, 3)
	if _, err := e.svc.Submit(context.Background(), Submission{IDs: ids, Source: "ids", Actor: "k", Hash: "h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(context.Background(), `UPDATE river_job SET scheduled_at = now() - interval '42 seconds'`); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SampleQueue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.reg.Value("credential_batch_queue_depth", "queue="+QueueName); v != 3 {
		t.Fatalf("queue depth %v, want 3", v)
	}
	if v, _ := e.reg.Value("credential_batch_oldest_job_age_seconds", "queue="+QueueName); v < 42 || v > 100 {
		t.Fatalf("oldest age %v, want about 42", v)
	}
}

func TestReconcileClosesItemsWhoseJobIsGone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, false)
	ids := e.seedProviders(t, 2)
	out, err := e.svc.Submit(context.Background(), Submission{IDs: ids, Source: "ids", Actor: "k", Hash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// River discarded one job (e.g. rescued past its attempts); the other is fine.
	if _, err := e.pool.Exec(ctx, `UPDATE river_job SET state = 'discarded', finalized_at = now() WHERE args->>'provider_id' = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE batch_items SET updated_at = now() - interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	p, err := e.svc.Progress(ctx, out.BatchID, ItemQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Counts[StateFailed] != 1 || p.Counts[StateQueued] != 1 {
		t.Fatalf("counts %v", p.Counts)
	}
}

func TestSnoozeBackoff(t *testing.T) {
	t.Parallel()
	s := &Service{}
	s.o.Config = testConfig()
	s.o.Config.BatchSnoozeBase = time.Second
	s.o.Config.BatchSnoozeMax = 5 * time.Second
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 30: 5 * time.Second} {
		if got := s.snoozeFor(attempt); got != want {
			t.Errorf("attempt %d: %s, want %s", attempt, got, want)
		}
	}
}

func TestWorkersHoldTheBatchSemaphore(t *testing.T) {
	t.Parallel()
	var e *env
	cred := func(o *Options) {
		sc := newScripted(t, o.Pool, nil)
		sc.delay = 300 * time.Millisecond
		o.Credentialer = sc
		o.MaxWorkers = 2
	}
	e = newEnv(t, nil, cred, true)
	ids := e.seedProviders(t, 4)
	if _, err := e.svc.Submit(context.Background(), Submission{IDs: ids, Source: "ids", Actor: "k", Hash: "h"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.svc.Running() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r := e.svc.Running(); r < 1 || r > 2 {
		t.Fatalf("running %d, want 1..2 (MaxWorkers 2)", r)
	}
	st := e.svc.o.Semaphore.Stats()
	if st.InUse < 1 || st.Total != 2 {
		t.Fatalf("semaphore %+v", st)
	}
	h := e.do(t, "GET", "/health/concurrency", "", "")
	conc, _ := h.body["concurrency"].(map[string]any)
	sem, _ := conc["batch_semaphore"].(map[string]any)
	if h.code != 200 || conc["active_tasks"].(float64) < 1 || sem["in_use"].(float64) < 1 || sem["total"] != float64(2) {
		t.Fatalf("/health/concurrency: %s", h.raw)
	}
}

// TestStopHandsRunningJobsBack: a replica stopping mid-job gives the
// attempt back; the next replica finishes the provider.
func TestStopHandsRunningJobsBack(t *testing.T) {
	t.Parallel()
	var cred *scriptedCredentialer
	e := newEnv(t, nil, func(o *Options) {
		cred = newScripted(t, o.Pool, nil)
		cred.delay = 5 * time.Second
		o.Credentialer = cred
		o.SoftStopTimeout = 200 * time.Millisecond
	}, true)
	ids := e.seedProviders(t, 1)
	out, err := e.svc.Submit(context.Background(), Submission{IDs: ids, Source: "ids", Actor: "k", Hash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.count(t, `SELECT count(*) FROM batch_items WHERE state = 'running'`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("never running")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := e.svc.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	var state string
	var attempts int
	if err := e.pool.QueryRow(context.Background(), `SELECT state, attempts FROM batch_items`).Scan(&state, &attempts); err != nil {
		t.Fatal(err)
	}
	if state != StateQueued || attempts != 0 {
		t.Fatalf("after stop: %s, %d attempts; want queued, 0", state, attempts)
	}
	cred.delay = 0
	o := e.svc.o // a new replica: its own metrics and semaphore
	o.Metrics = metrics.New("credential")
	o.Semaphore = NewSemaphore(o.MaxWorkers, o.Metrics)
	next, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := next.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = next.Stop(context.Background()) })
	e.svc = next
	p := e.waitDone(t, out.BatchID, 20*time.Second)
	if p.Counts[StateApproved] != 1 || p.Items[0].Attempts != 1 {
		t.Fatalf("after restart: %v attempts %d", p.Counts, p.Items[0].Attempts)
	}
}

// TestSubmitAcrossChunks: a batch larger than one insert step keeps every
// id once, in order, with jobs for exactly the existing providers.
func TestSubmitAcrossChunks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, func(o *Options) { o.MaxProviders = 5000 }, false)
	ps := seed.Providers("chunk_", 2*insertChunk+300)
	if err := seed.Create(context.Background(), e.pool, ps); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, p := range ps {
		ids = append(ids, p.ID)
		if i%500 == 0 {
			ids = append(ids, fmt.Sprintf("ghost_%d", i))
		}
	}
	out, err := e.svc.Submit(context.Background(), Submission{IDs: ids, Source: "ids", Actor: "k", Hash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	ghosts := len(ids) - len(ps)
	if out.Total != len(ids) || out.Queued != len(ps) || len(out.UnknownIDs) != ghosts {
		t.Fatalf("submitted total %d queued %d unknown %d", out.Total, out.Queued, len(out.UnknownIDs))
	}
	if n := e.count(t, `SELECT count(*) FROM river_job WHERE args->>'batch_id' = $1`, out.BatchID); n != len(ps) {
		t.Fatalf("%d jobs, want %d", n, len(ps))
	}
	if n := e.count(t, `SELECT count(*) FROM batch_items i JOIN river_job j ON j.id = i.job_id
		WHERE i.batch_id = $1 AND i.state = 'queued' AND j.args->>'provider_id' = i.provider_id`, out.BatchID); n != len(ps) {
		t.Fatalf("%d items linked to their own job, want %d", n, len(ps))
	}
	var inOrder bool
	if err := e.pool.QueryRow(context.Background(), `SELECT array_agg(provider_id ORDER BY ord) = $2::text[] FROM batch_items WHERE batch_id = $1`,
		out.BatchID, ids).Scan(&inOrder); err != nil {
		t.Fatal(err)
	}
	if !inOrder {
		t.Fatal("items are not the submitted ids in order")
	}
}

// batch.completed is raised once per batch by the write that closes it,
// whichever path that is: the last item's worker, a cancel, or a batch
// with nothing to run.
func TestBatchCompletedEventIsRaisedOnceWhicheverPathClosesIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, true)
	ids := e.seedProviders(t, 3)
	ctx := context.Background()
	event := func(batchID string) (n int, data map[string]any) {
		t.Helper()
		var raw []byte
		if err := e.pool.QueryRow(ctx, `SELECT count(*), max(data::text) FROM events WHERE type = 'batch.completed.v1'
			AND link = '/results/batch/' || $1::text`, batchID).Scan(&n, &raw); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(raw, &data)
		return n, data
	}
	worked, err := e.svc.Submit(ctx, Submission{IDs: ids, Source: "ids", Actor: "k", Hash: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitDone(t, worked.BatchID, 45*time.Second)
	empty, err := e.svc.Submit(ctx, Submission{IDs: []string{"ghost_a", "ghost_b"}, Source: "ids", Actor: "k", Hash: "h2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id     string
		counts map[string]any
	}{
		{worked.BatchID, map[string]any{"approved": float64(3)}},
		{empty.BatchID, map[string]any{"unknown_provider": float64(2)}},
	} {
		// Progress reads may close lazily too: still one event.
		e.do(t, "GET", "/results/batch/"+tc.id, "", "")
		n, data := event(tc.id)
		if n != 1 || fmt.Sprint(data["counts"]) != fmt.Sprint(tc.counts) || data["batch_id"] != tc.id || data["canceled"] != false {
			t.Errorf("%s: %d events, data %v", tc.id, n, data)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM events WHERE provider_id IS NOT NULL AND type = 'batch.completed.v1'`); n != 0 {
		t.Errorf("%d batch events name a provider", n)
	}
}

// TestNewRefusesUnusableSettings: New takes its settings as given and
// names the one it cannot run with instead of substituting a default.
func TestNewRefusesUnusableSettings(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.New(t)
	reg := metrics.New("credential")
	for _, tc := range []struct {
		mutate func(*Options)
		want   string
	}{
		{func(o *Options) { o.MaxWorkers = 0 }, "MaxWorkers"},
		{func(o *Options) { o.MaxProviders = 0 }, "MaxProviders"},
		{func(o *Options) { o.RosterMaxBytes = 0 }, "RosterMaxBytes"},
		{func(o *Options) { o.SoftStopTimeout = -time.Second }, "SoftStopTimeout"},
		{func(o *Options) { o.Config.BatchMaxAttempts = 0 }, "BATCH_MAX_ATTEMPTS"},
		{func(o *Options) { o.Config.BatchSnoozeBase = 0 }, "BATCH_SNOOZE_BASE"},
		{func(o *Options) { o.Config.BatchMetricsInterval = 0 }, "BATCH_METRICS_INTERVAL"},
		{func(o *Options) { o.Config.BatchJobTimeout = 0 }, "BATCH_JOB_TIMEOUT"},
		{func(o *Options) { o.Semaphore = nil }, "Semaphore"},
	} {
		o := testOptions(pool, nil, nil, reg, nil)
		o.Credentialer = newScripted(t, pool, nil)
		tc.mutate(&o)
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v", tc.want, err)
		}
	}
}
