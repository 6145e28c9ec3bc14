package store_test

import (
	"context"
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/domain"
)

// contract is the reporting interface (docs/reporting.md): every view of the
// schema reporting with its columns in order. The stats service reads only
// these. Changing a credential table means rewriting a view's body so this
// still holds; adding a column means adding it here and in the docs.
var contract = map[string][]string{
	"policy":               {"verification_max_age interval", "recredential_after interval"},
	"providers":            {"provider_id text", "npi text", "first_name text", "last_name text", "specialty text", "decision text", "submitted_at timestamp with time zone", "last_verified_at timestamp with time zone", "approved_at timestamp with time zone", "exclusion_flagged_at timestamp with time zone", "recredential_due_on date"},
	"licenses":             {"provider_id text", "state text", "number text", "type text", "expires_on date"},
	"board_certifications": {"provider_id text", "ordinal integer", "board text", "specialty text", "expires_on date"},
	"runs":                 {"run_id uuid", "provider_id text", "batch_id uuid", "decision text", "started_at timestamp with time zone", "finished_at timestamp with time zone"},
	"decision_counts":      {"bucket_width interval", "bucket_start timestamp with time zone", "decision text", "runs bigint"},
	"check_counts":         {"bucket_width interval", "bucket_start timestamp with time zone", "check text", "source text", "outcome text", "reason text", "checks bigint"},
	"first_decisions":      {"provider_id text", "submitted_at timestamp with time zone", "decided_at timestamp with time zone", "decision text", "run_id uuid"},
	"review_episodes":      {"provider_id text", "opened_at timestamp with time zone", "resolved_at timestamp with time zone", "resolution text", "opened_run_id uuid", "resolved_run_id uuid"},
	"batches":              {"batch_id text", "source text", "total integer", "duplicates integer", "created_at timestamp with time zone", "started_at timestamp with time zone", "finished_at timestamp with time zone", "canceled_at timestamp with time zone"},
	"batch_outcomes":       {"batch_id text", "state text", "items bigint", "first_started_at timestamp with time zone", "last_finished_at timestamp with time zone"},
	"exclusion_imports":    {"import_id bigint", "source text", "status text", "version integer", "file_date date", "row_count bigint", "started_at timestamp with time zone", "finished_at timestamp with time zone", "activated_at timestamp with time zone"},
	"exclusion_matches":    {"import_id bigint", "source text", "provider_id text", "flagged_at timestamp with time zone"},
	"audit_events":         {"id bigint", "at timestamp with time zone", "event text"},
	"decision_tallies":     {"decision text", "providers bigint"},
	"verification_tallies": {"verified_on date", "providers bigint"},
	"license_tallies":      {"expires_on date", "licenses bigint"},
}

func TestReportingContract(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.New(t)
	rows, err := pool.Query(context.Background(), `SELECT c.relname, c.relkind::text,
			coalesce(array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
				FILTER (WHERE a.attnum > 0), '{}')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND NOT a.attisdropped
		WHERE n.nspname = 'reporting' GROUP BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	var name, kind string
	var cols []string
	if _, err := pgx.ForEachRow(rows, []any{&name, &kind, &cols}, func() error {
		if kind != "v" {
			t.Errorf("reporting.%s is a %q: the schema holds views only", name, kind)
		}
		got[name] = cols
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for v, want := range contract {
		if !reflect.DeepEqual(got[v], want) {
			t.Errorf("reporting.%s columns\n got %q\nwant %q", v, got[v], want)
		}
	}
	for v := range got {
		if _, ok := contract[v]; !ok {
			t.Errorf("reporting.%s is not in the documented contract", v)
		}
	}
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func run(provider string, decision domain.Decision, at time.Time, outcomes ...domain.Outcome) *results.Run {
	r := &results.Run{ID: uuid.NewString(), ProviderID: provider, NPI: "1234567893", Decision: decision, Actor: "test",
		Reasons: []results.Reason{}, StartedAt: at.Add(-2 * time.Second), FinishedAt: at}
	for i, name := range results.CheckNames {
		o := domain.Pass
		if i < len(outcomes) {
			o = outcomes[i]
		}
		r.Checks = append(r.Checks, results.Check{Check: name, Outcome: o,
			Detail:   fmt.Sprintf("NPI %s is excluded in the OIG LEIE (line %d)", r.NPI, 40+i),
			Evidence: results.Evidence{Source: name, CheckedAt: at}})
	}
	return r
}

// The needs_review episodes and first decisions of one known history.
func TestReportingEpisodesAndTurnaround(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.New(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	exec(t, pool, `INSERT INTO providers (id, npi, first_name, last_name, created_at) VALUES ('p1', '1234567893', 'A', 'B', $1)`, t0)
	store := results.NewStore(pool)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	// review at 1h, incomplete (a source down) 2h, review again 3h, approved 5h, review 8h (still open)
	for _, r := range []*results.Run{run("p1", "needs_review", at(1)), run("p1", "incomplete", at(2)),
		run("p1", "needs_review", at(3)), run("p1", "approved", at(5)), run("p1", "needs_review", at(8)),
		run("gone", "denied", at(9))} {
		if err := store.Save(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	type episode struct {
		Opened, Resolved *time.Time
		Resolution       *string
	}
	var eps []episode
	rows, _ := pool.Query(ctx, `SELECT opened_at, resolved_at, resolution FROM reporting.review_episodes WHERE provider_id = 'p1' ORDER BY opened_at`)
	var e episode
	if _, err := pgx.ForEachRow(rows, []any{&e.Opened, &e.Resolved, &e.Resolution}, func() error { eps = append(eps, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(eps) != 2 || !eps[0].Opened.Equal(at(1)) || !eps[0].Resolved.Equal(at(5)) || *eps[0].Resolution != "approved" ||
		!eps[1].Opened.Equal(at(8)) || eps[1].Resolved != nil {
		t.Fatalf("episodes: %+v", eps)
	}
	var submitted, decided time.Time
	var decision string
	if err := pool.QueryRow(ctx, `SELECT submitted_at, decided_at, decision FROM reporting.first_decisions WHERE provider_id = 'p1'`).
		Scan(&submitted, &decided, &decision); err != nil {
		t.Fatal(err)
	}
	if !submitted.Equal(t0) || !decided.Equal(at(5)) || decision != "approved" {
		t.Fatalf("first decision: %s %s %s", submitted, decided, decision)
	}
	// The provider "gone" has no record: its run counts, but has no turnaround.
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM reporting.first_decisions WHERE provider_id = 'gone'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("first decision without a provider record: %d %v", n, err)
	}
}

// summaries reads the three summary tables as comparable values: counts
// summed per key (writers may split a key over rows), episodes and first
// decisions sorted.
func summaries(t *testing.T, pool *pgxpool.Pool) (counts map[string]int64, episodes, firsts []string) {
	t.Helper()
	ctx := context.Background()
	counts = map[string]int64{}
	rows, _ := pool.Query(ctx, `SELECT kind || '|' || width || '|' || bucket || '|' || "check" || '|' || source || '|' ||
		outcome || '|' || reason, sum(n)::bigint FROM report_counts GROUP BY 1`)
	var k string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&k, &n}, func() error { counts[k] = n; return nil }); err != nil {
		t.Fatal(err)
	}
	text := func(sql string) []string {
		rows, _ := pool.Query(ctx, sql)
		var out []string
		var s string
		if _, err := pgx.ForEachRow(rows, []any{&s}, func() error { out = append(out, s); return nil }); err != nil {
			t.Fatal(err)
		}
		sort.Strings(out)
		return out
	}
	episodes = text(`SELECT concat_ws('|', provider_id, opened_at, opened_run_id, resolved_at, resolution, resolved_run_id) FROM report_review_episodes`)
	firsts = text(`SELECT concat_ws('|', provider_id, submitted_at, decided_at, decision, run_id) FROM report_first_decisions`)
	return counts, episodes, firsts
}

// Runs stored the way the service stores them (results.Store.Save, many at
// once) leave the summaries exactly as a rebuild from the runs makes them.
func TestReportingSummariesFollowWrites(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.New(t)
	ctx := context.Background()
	store := results.NewStore(pool)
	rnd := rand.New(rand.NewSource(13))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const providers = 40
	decisions := []domain.Decision{"approved", "approved", "approved", "denied", "needs_review", "needs_review", "incomplete"}
	outcomes := []domain.Outcome{domain.Pass, domain.Fail, domain.Review, domain.Unavailable}
	histories := make([][]*results.Run, providers)
	for p := range histories {
		id := fmt.Sprintf("p%d", p)
		exec(t, pool, `INSERT INTO providers (id, npi, first_name, last_name, created_at) VALUES ($1, $2, 'A', 'B', $3)`,
			id, fmt.Sprintf("1%09d", p), t0.Add(time.Duration(p)*time.Hour))
		at := t0.Add(time.Duration(p)*time.Hour + time.Minute)
		for i := 0; i < 12; i++ {
			// Bunched in a few quarter hours, so writers meet on the same
			// keys; never two runs of a provider at the same instant (a
			// rebuild orders those by id, the triggers by arrival).
			at = at.Add(time.Duration(1+rnd.Intn(20)) * time.Minute)
			o := make([]domain.Outcome, 5)
			for j := range o {
				o[j] = outcomes[rnd.Intn(len(outcomes))]
			}
			histories[p] = append(histories[p], run(id, decisions[rnd.Intn(len(decisions))], at, o...))
		}
	}
	// One goroutine per provider (its runs in order, as the service's
	// per-provider lock orders them), all providers at once.
	var wg sync.WaitGroup
	errs := make(chan error, providers)
	for _, h := range histories {
		wg.Add(1)
		go func(h []*results.Run) {
			defer wg.Done()
			for _, r := range h {
				if err := store.Save(ctx, r); err != nil {
					errs <- err
					return
				}
			}
		}(h)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// And some history written in bulk, in a repeatable-read transaction
	// (the append path).
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO credential_runs (id, provider_id, npi, decision, actor, started_at, finished_at)
			SELECT gen_random_uuid(), 'p' || (g % 7), '1234567893', (ARRAY['approved','needs_review'])[1 + g % 2], 'bulk',
			       $1::timestamptz + g * interval '7 minutes', $1::timestamptz + g * interval '7 minutes'
			FROM generate_series(1, 50) g`, t0.Add(30*24*time.Hour))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	counts, episodes, firsts := summaries(t, pool)
	var rows int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM report_counts`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	exec(t, pool, `SELECT report_rebuild()`)
	wantCounts, wantEpisodes, wantFirsts := summaries(t, pool)
	if !reflect.DeepEqual(counts, wantCounts) {
		for k, v := range wantCounts {
			if counts[k] != v {
				t.Errorf("count %s: triggers %d, rebuild %d", k, counts[k], v)
			}
		}
		t.Fatalf("counts differ (%d keys by triggers, %d by rebuild)", len(counts), len(wantCounts))
	}
	if a, b := difference(episodes, wantEpisodes), difference(wantEpisodes, episodes); len(a)+len(b) > 0 {
		t.Fatalf("episodes: only by triggers %q\nonly by rebuild %q", a, b)
	}
	if a, b := difference(firsts, wantFirsts), difference(wantFirsts, firsts); len(a)+len(b) > 0 {
		t.Fatalf("first decisions: only by triggers %q\nonly by rebuild %q", a, b)
	}
	var total int64
	if err := pool.QueryRow(ctx, `SELECT sum(runs) FROM reporting.decision_counts WHERE bucket_width = '1 day'`).Scan(&total); err != nil || total != providers*12+50 {
		t.Fatalf("runs counted: %d (%v), want %d", total, err, providers*12+50)
	}
	t.Logf("%d keys, %d count rows written by concurrent writers", len(counts), rows)
}

func difference(a, b []string) []string {
	in := map[string]bool{}
	for _, s := range b {
		in[s] = true
	}
	var out []string
	for _, s := range a {
		if !in[s] {
			out = append(out, s)
		}
	}
	return out
}

func TestReportingReasonAndDueDate(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.New(t)
	ctx := context.Background()
	for detail, want := range map[string]string{
		"NPI 1234567893 is excluded in the OIG LEIE (line 42) since 2020-01-02": "NPI # is excluded in the OIG LEIE (line #) since #",
		"CA A12345: license expired on 2024-01-31; NY B1: license is active":    "CA #: license expired on #; NY #: license is active",
		"the provider claims no state license":                                  "the provider claims no state license",
		strings.Repeat("x", 300):                                                strings.Repeat("x", 200),
	} {
		var got string
		if err := pool.QueryRow(ctx, `SELECT report_reason($1)`, detail).Scan(&got); err != nil || got != want {
			t.Errorf("report_reason(%q) = %q (%v), want %q", detail, got, err, want)
		}
	}
	// The same date the providers API gives (time.AddDate, UTC): 29 Feb
	// carries into March, a late-evening approval west of UTC is the next day.
	for _, approved := range []time.Time{
		time.Date(2024, 2, 29, 10, 0, 0, 0, time.UTC), time.Date(2023, 1, 31, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2025, 6, 30, 21, 0, 0, 0, time.FixedZone("PDT", -7*3600)),
	} {
		var got time.Time
		if err := pool.QueryRow(ctx, `SELECT report_recredential_due_on($1)`, approved).Scan(&got); err != nil {
			t.Fatal(err)
		}
		want := approved.UTC().AddDate(0, 36, 0).Truncate(24 * time.Hour)
		if !got.Equal(want) {
			t.Errorf("due on for approval %s = %s, want %s", approved, got.Format(time.DateOnly), want.Format(time.DateOnly))
		}
	}
}

func TestReportingBoardCertificationsFollowProviders(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.New(t)
	ctx := context.Background()
	certs := func() []string {
		rows, _ := pool.Query(ctx, `SELECT concat_ws('|', provider_id, ordinal, board, specialty, expires_on) FROM reporting.board_certifications ORDER BY 1`)
		var out []string
		var s string
		if _, err := pgx.ForEachRow(rows, []any{&s}, func() error { out = append(out, s); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	exec(t, pool, `INSERT INTO providers (id, npi, first_name, last_name, board_certifications) VALUES
		('p1', '1234567893', 'A', 'B', '[{"board":"ABIM","specialty":"Cardiology","expires_on":"2027-01-31"},{"board":"ABP"}]'),
		('p2', '1245319599', 'C', 'D', '[]')`)
	if got, want := certs(), []string{"p1|1|ABIM|Cardiology|2027-01-31", "p1|2|ABP|"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after insert %q, want %q", got, want)
	}
	exec(t, pool, `UPDATE providers SET decision = 'approved'`) // not a change of certifications
	exec(t, pool, `UPDATE providers SET board_certifications = '[{"board":"ABFM","expires_on":"2026-02-30"}]' WHERE id = 'p1'`)
	exec(t, pool, `UPDATE providers SET board_certifications = '[{"board":"ABIM","expires_on":"2028-05-01"}]' WHERE id = 'p2'`)
	if got, want := certs(), []string{"p1|1|ABFM|", "p2|1|ABIM||2028-05-01"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after update %q, want %q", got, want)
	}
	exec(t, pool, `DELETE FROM providers WHERE id = 'p1'`)
	if got, want := certs(), []string{"p2|1|ABIM||2028-05-01"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after delete %q, want %q", got, want)
	}
}

// tallyState is report_tallies summed per key (zero sums left out), and the
// same counts taken from the providers and licenses themselves.
func tallyState(t *testing.T, pool *pgxpool.Pool) (tallies, direct map[string]int64) {
	t.Helper()
	read := func(sql string) map[string]int64 {
		rows, _ := pool.Query(context.Background(), sql)
		m := map[string]int64{}
		var k string
		var n int64
		if _, err := pgx.ForEachRow(rows, []any{&k, &n}, func() error { m[k] = n; return nil }); err != nil {
			t.Fatal(err)
		}
		return m
	}
	tallies = read(`SELECT kind || '|' || day || '|' || key, sum(n)::bigint FROM report_tallies GROUP BY 1 HAVING sum(n) <> 0`)
	direct = read(`SELECT 'decision|-infinity|' || coalesce(decision, ''), count(*) FROM providers GROUP BY 1
		UNION ALL SELECT 'verified|' || coalesce((last_verified_at AT TIME ZONE 'UTC')::date, '-infinity') || '|', count(*) FROM providers GROUP BY 1
		UNION ALL SELECT 'license|' || coalesce(expires_on, '-infinity') || '|', count(*) FROM provider_licenses GROUP BY 1`)
	return tallies, direct
}

// The tallies the summary reads follow every write to providers and
// licenses: inserts, concurrent updates (the locking path), a
// repeatable-read update (the append path), deletes and cascades; an
// update of another column writes no tally; a rebuild gives the same.
func TestReportingTalliesFollowWrites(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.New(t)
	ctx := context.Background()
	check := func(step string) {
		t.Helper()
		tallies, direct := tallyState(t, pool)
		if !reflect.DeepEqual(tallies, direct) {
			t.Fatalf("%s: tallies\n%v\nwant\n%v", step, tallies, direct)
		}
	}
	exec(t, pool, `INSERT INTO providers (id, npi, first_name, last_name, decision, last_verified_at)
		SELECT 't' || g, (1300000000 + g)::text, 'T', 'P' || g, (ARRAY[NULL, 'approved', 'denied', 'needs_review'])[1 + g % 4],
		       CASE WHEN g % 3 > 0 THEN '2026-01-01T23:30:00Z'::timestamptz + g * interval '1 hour' END
		FROM generate_series(1, 30) g`)
	exec(t, pool, `INSERT INTO provider_licenses (provider_id, state, number, expires_on)
		SELECT 't' || g, 'IL', 'L' || g, CASE WHEN g % 5 > 0 THEN '2026-06-01'::date + g % 4 END FROM generate_series(1, 30) g`)
	check("inserted")

	// Twenty writers at once on the same few keys.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				_, err := pool.Exec(ctx, `UPDATE providers SET decision = $2, last_verified_at = $3 WHERE id = $1`,
					fmt.Sprintf("t%d", 1+(w+i)%30), []string{"approved", "denied", "incomplete"}[(w+i)%3],
					time.Date(2026, 2, 1+i, w, 0, 0, 0, time.UTC))
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	check("concurrent updates")

	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE providers SET decision = 'needs_review', last_verified_at = NULL WHERE id IN ('t1', 't2')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	check("repeatable read")

	var before, after int64
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM report_tallies`).Scan(&before)
	exec(t, pool, `UPDATE providers SET first_name = 'U', last_verified_at = last_verified_at + interval '1 minute'
		WHERE last_verified_at::time < '23:00'`)
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM report_tallies`).Scan(&after)
	if after != before {
		t.Errorf("an update changing no tallied value wrote %d tally rows", after-before)
	}

	exec(t, pool, `UPDATE provider_licenses SET expires_on = '2027-01-01' WHERE provider_id IN ('t3', 't5')`)
	exec(t, pool, `DELETE FROM provider_licenses WHERE provider_id = 't4'`)
	exec(t, pool, `DELETE FROM providers WHERE id IN ('t6', 't7')`) // their licenses go by cascade
	check("updates and deletes")

	tallies, _ := tallyState(t, pool)
	exec(t, pool, `SELECT report_rebuild()`)
	if rebuilt, _ := tallyState(t, pool); !reflect.DeepEqual(tallies, rebuilt) {
		t.Errorf("rebuild gives\n%v\ntriggers gave\n%v", rebuilt, tallies)
	}
}
