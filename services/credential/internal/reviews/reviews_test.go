package reviews

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/checks"
	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/seed"
	"github.com/provcred/credential/internal/sources/importer"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/domain"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/page"
	"github.com/provcred/platform/server"
)

type kit struct {
	t      *testing.T
	pool   *pgxpool.Pool
	im     *importer.Importer
	engine *checks.Engine
	srv    *server.Server
}

func newKit(t *testing.T) *kit {
	t.Helper()
	pool, _ := testdb.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := metrics.New("credential")
	runs := results.NewStore(pool)
	runs.OnSave(Open)
	o := checks.Settings(config.Defaults().Checks)
	o.DB, o.Runs, o.Providers, o.Metrics, o.Log = pool, runs, providers.NewStore(pool), reg, log
	e := checks.New(o)
	srv := server.New(server.Options{Service: "credential", Logger: log, Metrics: reg, BodyLimit: 1 << 20})
	(&Handler{Store: &Store{Pool: pool}, Engine: e, Log: log}).Routes(srv.App)
	return &kit{t: t, pool: pool, im: importer.New(pool, log), engine: e, srv: srv}
}

func (k *kit) importCSV(source, body string) {
	k.t.Helper()
	if _, err := k.im.Import(context.Background(), importer.Request{Source: source, FileName: source + ".csv",
		Actor: "test", Body: strings.NewReader(body)}); err != nil {
		k.t.Fatalf("import %s: %v", source, err)
	}
}

func (k *kit) call(method, path, body string, out any) (int, apiError) {
	k.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set(server.HeaderActor, "key_specialist")
	req.Header.Set("Content-Type", "application/json")
	resp, err := k.srv.App.Test(req, -1)
	if err != nil {
		k.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ae apiError
	if resp.StatusCode >= 400 {
		_ = json.Unmarshal(b, &ae)
		return resp.StatusCode, ae
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			k.t.Fatalf("%s %s: body %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, ae
}

type apiError struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func (k *kit) open(providerID string) []*Item {
	k.t.Helper()
	var p page.Page[*Item]
	if code, ae := k.call("GET", "/reviews?provider_id="+providerID, "", &p); code != 200 {
		k.t.Fatalf("GET /reviews = %d %+v", code, ae)
	}
	return p.Items
}

func (k *kit) credential(id string) *results.Run {
	k.t.Helper()
	run, err := k.engine.Credential(context.Background(), id, results.RunOptions{Actor: "test"})
	if err != nil {
		k.t.Fatal(err)
	}
	return run
}

func (k *kit) count(q string, args ...any) int {
	k.t.Helper()
	var n int
	if err := k.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		k.t.Fatal(err)
	}
	return n
}

func checkOf(run *results.Run, name string) results.Check {
	for _, c := range run.Checks {
		if c.Check == name {
			return c
		}
	}
	return results.Check{}
}

// people are the providers of the queue tests: each has a namesake in an
// exclusion list without an NPI (a possible match: no DOB on the row).
var people = []struct{ id, first, last, list string }{
	{"rv_cleared", "Russell", "Cobb", "leie"},
	{"rv_confirmed", "Dana", "Fox", "leie"},
	{"rv_changed", "Eve", "Gale", "leie"},
	{"rv_sam", "Finn", "Holt", "sam"},
}

// seedQueue creates the providers with sources that pass except for the
// namesake rows; exclDate sets the LEIE rows' EXCLDATE (a new date is a
// changed row: a new digest).
func seedQueue(k *kit) {
	var nppesRows []seed.NPPESRow
	var licRows []seed.LicenseRow
	for i, p := range people {
		n := seed.NPI(fmt.Sprintf("17770000%d", i))
		if _, err := providers.NewStore(k.pool).Create(context.Background(), providers.Actor{ID: "test"}, &providers.Provider{
			ID: p.id, NPI: n, FirstName: p.first, LastName: p.last,
			Licenses: []providers.License{{State: "IL", Number: "Q-" + n, Type: "MD"}}}); err != nil {
			k.t.Fatal(err)
		}
		nppesRows = append(nppesRows, seed.NPPESRow{NPI: n, Entity: "1", Last: strings.ToUpper(p.last), First: strings.ToUpper(p.first)})
		licRows = append(licRows, seed.LicenseRow{State: "IL", Number: "Q-" + n, Status: "Active", Expiry: "2099-01-01",
			Last: p.last, First: p.first, NPI: n})
	}
	k.importCSV("nppes", seed.NPPES(nppesRows...))
	k.importCSV("licenses", seed.Licenses(licRows...))
	k.importLists("20200115", "20200115")
}

func (k *kit) importLists(cobbDate, galeDate string) {
	other := seed.NPI("299999999")
	k.importCSV("leie", seed.LEIE(seed.LEIERow{Last: "COBB", First: "RUSSELL", ExclDate: cobbDate},
		seed.LEIERow{Last: "FOX", First: "DANA"}, seed.LEIERow{Last: "GALE", First: "EVE", ExclDate: galeDate},
		seed.LEIERow{Last: "UNRELATED", First: "PAT", NPI: other}))
	k.importCSV("sam", seed.SAM(seed.SAMRow{First: "FINN", Last: "HOLT", Active: "01/01/2021", Term: "Indefinite"},
		seed.SAMRow{First: "PAT", Last: "UNRELATED", NPI: other, Active: "01/01/2020", Term: "Indefinite"}))
}

func TestReviewQueue(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	seedQueue(k)
	ctx := context.Background()

	// Each possible match opens exactly one item, with its event; a second
	// run of the same provider opens none.
	for _, p := range people {
		if run := k.credential(p.id); run.Decision != domain.NeedsReview {
			t.Fatalf("%s: %s %+v", p.id, run.Decision, run.Reasons)
		}
	}
	k.credential(people[0].id)
	if n := k.count(`SELECT count(*) FROM review_items WHERE status = 'open'`); n != 4 {
		t.Fatalf("%d open items, want 4", n)
	}
	if n := k.count(`SELECT count(*) FROM events WHERE type = 'review.opened.v1'`); n != 4 {
		t.Fatalf("%d review.opened events, want 4", n)
	}

	t.Run("list, filters and cursor pages", func(t *testing.T) {
		var all []*Item
		cursor := ""
		for pages := 0; ; pages++ {
			var p page.Page[*Item]
			if code, ae := k.call("GET", "/reviews?limit=3&cursor="+cursor, "", &p); code != 200 {
				t.Fatalf("GET /reviews = %d %+v", code, ae)
			}
			all = append(all, p.Items...)
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		seen := map[string]bool{}
		for _, it := range all {
			if seen[it.ID] {
				t.Errorf("item %s on two pages", it.ID)
			}
			seen[it.ID] = true
			if it.Status != StatusOpen || it.Match != "name" || len(it.Candidate.Digest) != 64 || it.Candidate.Line == 0 ||
				it.Candidate.ImportID == 0 || len(it.Candidate.Record) < 3 || it.RunID == nil || !strings.Contains(it.Reason, "possible match") {
				t.Errorf("item %+v", it)
			}
			var ev results.Item
			if err := json.Unmarshal(it.Evidence, &ev); err != nil || ev.Digest != it.Candidate.Digest || ev.Outcome != domain.Review {
				t.Errorf("evidence %s", it.Evidence)
			}
		}
		if len(all) != 4 {
			t.Fatalf("%d items over the pages, want 4", len(all))
		}
		var sam page.Page[*Item]
		k.call("GET", "/reviews?check=sam", "", &sam)
		if len(sam.Items) != 1 || sam.Items[0].ProviderID != "rv_sam" || sam.Items[0].Check != "sam" {
			t.Errorf("check=sam: %+v", sam.Items)
		}
		for _, bad := range []string{"/reviews?status=pending", "/reviews?check=nppes", "/reviews?limit=0"} {
			if code, ae := k.call("GET", bad, "", nil); code != 422 || ae.Code != "validation_failed" {
				t.Errorf("%s = %d %+v", bad, code, ae)
			}
		}
		if code, ae := k.call("GET", "/reviews?cursor=bm9wZQ", "", nil); code != 400 || ae.Code != "invalid_cursor" {
			t.Errorf("bad cursor = %d %+v", code, ae)
		}
	})

	cleared := k.open("rv_cleared")[0]
	t.Run("cleared: approved, remembered, audited", func(t *testing.T) {
		var out struct {
			Review *Item        `json:"review"`
			Run    *results.Run `json:"run"`
		}
		if code, ae := k.call("POST", "/reviews/"+cleared.ID+"/resolve", `{"resolution":"cleared","note":"DOB on the license file differs; other middle name"}`, &out); code != 200 {
			t.Fatalf("resolve = %d %+v", code, ae)
		}
		if out.Review.Status != StatusCleared || out.Review.ResolvedBy == nil || *out.Review.ResolvedBy != "key_specialist" ||
			out.Run == nil || out.Run.Decision != domain.Approved || out.Review.ResolvedRunID == nil || *out.Review.ResolvedRunID != out.Run.ID {
			t.Fatalf("answer %+v run %+v", out.Review, out.Run)
		}
		if c := checkOf(out.Run, "leie"); c.Outcome != domain.Pass || !strings.Contains(c.Detail, "cleared by review "+cleared.ID) {
			t.Errorf("leie after clearing: %s %q", c.Outcome, c.Detail)
		}
		// Audited with who, when, before and after; announced.
		var before, after string
		if err := k.pool.QueryRow(ctx, `SELECT before::text, after::text FROM audit_log WHERE event = 'review.resolved'
			AND entity_id = $1 AND actor = 'key_specialist'`, cleared.ID).Scan(&before, &after); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(before, `"open"`) || !strings.Contains(after, `"cleared"`) || !strings.Contains(after, "resolved_at") {
			t.Errorf("audit before %s after %s", before, after)
		}
		if n := k.count(`SELECT count(*) FROM events WHERE type = 'review.resolved.v1' AND data->>'review_id' = $1 AND data->>'resolution' = 'cleared'`, cleared.ID); n != 1 {
			t.Errorf("%d review.resolved events", n)
		}
		// The next run respects it: approved, and nothing raised again.
		if run := k.credential("rv_cleared"); run.Decision != domain.Approved {
			t.Errorf("next run: %s %+v", run.Decision, run.Reasons)
		}
		if open := k.open("rv_cleared"); len(open) != 0 {
			t.Errorf("cleared record raised again: %+v", open)
		}
	})

	t.Run("second resolve is 409", func(t *testing.T) {
		if code, ae := k.call("POST", "/reviews/"+cleared.ID+"/resolve", `{"resolution":"confirmed","note":"again"}`, nil); code != 409 || ae.Code != "review_not_open" {
			t.Errorf("second resolve = %d %+v", code, ae)
		}
	})

	t.Run("confirmed: denied", func(t *testing.T) {
		it := k.open("rv_confirmed")[0]
		var out struct {
			Review *Item        `json:"review"`
			Run    *results.Run `json:"run"`
		}
		if code, ae := k.call("POST", "/reviews/"+it.ID+"/resolve", `{"resolution":"confirmed","note":"same DOB and address per OIG"}`, &out); code != 200 {
			t.Fatalf("resolve = %d %+v", code, ae)
		}
		c := checkOf(out.Run, "leie")
		if out.Run.Decision != domain.Denied || c.Outcome != domain.Fail || !strings.Contains(c.Detail, "confirmed as this provider by review "+it.ID) {
			t.Errorf("after confirming: %s, leie %s %q", out.Run.Decision, c.Outcome, c.Detail)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		it := k.open("rv_sam")[0]
		for _, c := range []struct{ body, code string }{
			{`{"resolution":"maybe","note":"x"}`, "validation_failed"},
			{`{"resolution":"cleared"}`, "validation_failed"},
			{`{"resolution":"cleared","note":"x","extra":1}`, "invalid_json"},
			{`not json`, "invalid_json"},
		} {
			if code, ae := k.call("POST", "/reviews/"+it.ID+"/resolve", c.body, nil); code/100 != 4 || ae.Code != c.code {
				t.Errorf("%s = %d %+v", c.body, code, ae)
			}
		}
		for _, id := range []string{"nope", "7b1f4f0e-9a2e-4c51-8d1c-000000000000"} {
			if code, _ := k.call("POST", "/reviews/"+id+"/resolve", `{"resolution":"cleared","note":"x"}`, nil); code != 404 {
				t.Errorf("resolve %s = %d", id, code)
			}
		}
		if got := k.open("rv_sam"); len(got) != 1 || got[0].Status != StatusOpen {
			t.Errorf("a refused resolve changed the item: %+v", got)
		}
	})

	// A new LEIE version changes Cobb's row (cleared before) and Gale's
	// (open): new digests. Gale's resolve is refused and the item
	// superseded, the re-run raising the current row; Cobb's changed row is
	// raised anew.
	t.Run("changed record", func(t *testing.T) {
		gale := k.open("rv_changed")[0]
		k.importLists("20210301", "20210301")
		code, ae := k.call("POST", "/reviews/"+gale.ID+"/resolve", `{"resolution":"cleared","note":"x"}`, nil)
		if code != 409 || ae.Code != "review_record_changed" {
			t.Fatalf("resolve of a changed record = %d %+v", code, ae)
		}
		var status string
		if err := k.pool.QueryRow(ctx, `SELECT status FROM review_items WHERE id = $1`, gale.ID).Scan(&status); err != nil || status != StatusSuperseded {
			t.Errorf("old item %s %v", status, err)
		}
		now := k.open("rv_changed")
		if len(now) != 1 || now[0].Candidate.Digest == gale.Candidate.Digest {
			t.Errorf("current row not raised: %+v", now)
		}
		if run := k.credential("rv_cleared"); run.Decision != domain.NeedsReview {
			t.Errorf("changed cleared record: %s", run.Decision)
		}
		if now := k.open("rv_cleared"); len(now) != 1 || now[0].Candidate.Digest == cleared.Candidate.Digest {
			t.Errorf("changed cleared record not raised anew: %+v", now)
		}
	})
}

// An item whose record stops matching (the row left the list) is closed by
// the provider's next run rather than left open.
func TestRunSupersedesItemsItNoLongerRaises(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	seedQueue(k)
	k.credential("rv_sam")
	if len(k.open("rv_sam")) != 1 {
		t.Fatal("no item")
	}
	other := seed.NPI("299999999")
	k.importCSV("sam", seed.SAM(seed.SAMRow{First: "PAT", Last: "UNRELATED", NPI: other, Active: "01/01/2020", Term: "Indefinite"},
		seed.SAMRow{First: "PAT", Last: "OTHER", Active: "01/01/2020", Term: "Indefinite"}))
	if run := k.credential("rv_sam"); run.Decision != domain.Approved {
		t.Fatalf("run %s", run.Decision)
	}
	if n := k.count(`SELECT count(*) FROM review_items WHERE provider_id = 'rv_sam' AND status = 'superseded'`); n != 1 || len(k.open("rv_sam")) != 0 {
		t.Errorf("superseded %d, open %d", n, len(k.open("rv_sam")))
	}
}
