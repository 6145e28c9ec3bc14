package monitor

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/reviews"
	"github.com/provcred/credential/internal/seed"
	"github.com/provcred/credential/internal/sources/importer"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/metrics"
)

// jobKit wires the importer to the re-screen job as main does: the job is
// inserted in the activating transaction and run by a real River client.
func jobKit(t *testing.T) (*importer.Importer, *pgxpool.Pool) {
	t.Helper()
	pool, _ := testdb.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mon := New(pool, metrics.New("credential"), log)
	workers := river.NewWorkers()
	mon.Register(workers)
	mon.Attach(testdb.StartRiver(t, pool, workers, mon.Queues()))
	im := importer.New(pool, log)
	im.OnActivate = mon.Enqueue
	return im, pool
}

// waitRescreen waits for import id's re-screen to end and returns its record.
func waitRescreen(t *testing.T, im *importer.Importer, id int64) *importer.Rescreen {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, err := im.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Rescreen != nil && (rec.Rescreen.Status == "done" || rec.Rescreen.Status == "failed") {
			return rec.Rescreen
		}
		if time.Now().After(deadline) {
			t.Fatalf("re-screen of import %d not done: %+v", id, rec.Rescreen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRescreenJobOpensPossibleMatchesAndNotesReinstatements(t *testing.T) {
	t.Parallel()
	im, pool := jobKit(t)
	ctx := context.Background()
	excluded := seed.NPI("144444444")
	st := providers.NewStore(pool)
	born := func(s string) *providers.Date { d, _ := providers.ParseDate(s); return &d }
	for _, p := range []*providers.Provider{
		{ID: "pm", NPI: seed.NPI("155555555"), FirstName: "María", LastName: "López", DateOfBirth: born("1970-01-02")},
		{ID: "pn", NPI: seed.NPI("166666666"), FirstName: "Nina", LastName: "Bell", DateOfBirth: born("1980-05-06")},
		{ID: "px", NPI: excluded, FirstName: "Xavier", LastName: "Yu"},
	} {
		if _, err := st.Create(ctx, providers.Actor{ID: "t"}, p); err != nil {
			t.Fatal(err)
		}
	}
	other := seed.NPI("199999999")
	rows := []seed.LEIERow{
		{Last: "LOPEZ", First: "MARIA", DOB: "19700102"}, // name and DOB: a possible match
		{Last: "BELL", First: "NINA", DOB: "19810101"},   // another DOB: not the person
		{Last: "YU", First: "XAVIER", NPI: excluded},     // by NPI: flagged
		{Last: "UNRELATED", First: "PAT", NPI: other},
	}
	imp := func(rows ...seed.LEIERow) (int64, *importer.Rescreen) {
		t.Helper()
		rec, err := im.Import(ctx, importer.Request{Source: "leie", FileName: "UPDATED.csv", Body: strings.NewReader(seed.LEIE(rows...))})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Rescreen == nil || rec.Rescreen.JobID == nil {
			t.Fatalf("the import record names no re-screen job: %+v", rec.Rescreen)
		}
		return rec.ID, waitRescreen(t, im, rec.ID)
	}
	items := func(provider string) int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM review_items WHERE provider_id = $1`, provider).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// v1: exactly one item (pm, name+DOB), px flagged; counted on the record.
	v1, rs := imp(rows...)
	if rs.Status != "done" || *rs.ReviewsOpened != 1 || *rs.Flagged != 1 || *rs.Screened != 3 || *rs.Providers != 3 || rs.FinishedAt == nil {
		t.Fatalf("v1 re-screen %+v", rs)
	}
	if items("pm") != 1 || items("pn") != 0 || items("px") != 0 {
		t.Fatalf("items pm %d pn %d px %d", items("pm"), items("pn"), items("px"))
	}
	var match, raisedBy string
	var runID *string
	if err := pool.QueryRow(ctx, `SELECT match, raised_by, run_id::text FROM review_items WHERE provider_id = 'pm'`).Scan(&match, &raisedBy, &runID); err != nil ||
		match != "name+dob" || raisedBy != "rescreen:"+itoa(v1) || runID != nil {
		t.Fatalf("pm's item: %s %s %v %v", match, raisedBy, runID, err)
	}
	var opened int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE type = 'review.opened.v1' AND provider_id = 'pm'`).Scan(&opened); err != nil || opened != 1 {
		t.Fatalf("review.opened events %d %v", opened, err)
	}

	// v2, the same file again: nothing new.
	if _, rs := imp(rows...); *rs.ReviewsOpened != 0 || *rs.Flagged != 0 || items("pm") != 1 {
		t.Fatalf("v2 re-screen %+v, pm items %d", rs, items("pm"))
	}

	// A reviewer clears pm's record: a later version with the same row raises nothing.
	var id string
	if err := pool.QueryRow(ctx, `SELECT id::text FROM review_items WHERE provider_id = 'pm'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := (&reviews.Store{Pool: pool}).Resolve(ctx, id, reviews.Resolution{Resolution: "cleared", Note: "other person", Actor: "key_1"}); err != nil {
		t.Fatal(err)
	}
	// v3 drops px's row (reinstated): noted once, audited, the flag lowered.
	v3, rs := imp(rows[0], rows[1], rows[3])
	if *rs.ReviewsOpened != 0 || *rs.Reinstated != 1 || items("pm") != 1 {
		t.Fatalf("v3 re-screen %+v, pm items %d", rs, items("pm"))
	}
	var after string
	var flagged *time.Time
	if err := pool.QueryRow(ctx, `SELECT a.after::text, p.exclusion_flagged_at FROM audit_log a JOIN providers p ON p.id = a.provider_id
		WHERE a.event = 'provider.exclusion_reinstated' AND a.provider_id = 'px'`).Scan(&after, &flagged); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(after, `"import_id": `+itoa(v3)) || flagged != nil {
		t.Errorf("reinstatement after %s, flag %v", after, flagged)
	}
	if _, rs := imp(rows[0], rows[1], rows[3]); *rs.Reinstated != 0 {
		t.Errorf("reinstatement noted twice: %+v", rs)
	}
	// Listed again later: flagged anew.
	if _, rs := imp(rows...); *rs.Flagged != 1 {
		t.Errorf("re-listed provider not flagged: %+v", rs)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestRescreenTimeoutAsGiven: New starts from RESCREEN_JOB_TIMEOUT's
// default (its struct tag); the job's timeout is JobTimeout as set.
func TestRescreenTimeoutAsGiven(t *testing.T) {
	t.Parallel()
	m := New(nil, metrics.New("credential"), nil)
	w := &rescreenWorker{m: m}
	if got := w.Timeout(nil); got != config.Defaults().RescreenJobTimeout {
		t.Errorf("default timeout %s", got)
	}
	m.JobTimeout = 3 * time.Minute
	if got := w.Timeout(nil); got != 3*time.Minute {
		t.Errorf("timeout %s, want 3m", got)
	}
}
