package reports

import (
	"encoding/csv"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSummary(t *testing.T) {
	t.Parallel()
	k := seeded(t, kitOptions{})
	var s Summary
	a := k.ok("/stats/summary", &s)
	want := Summary{TZ: "UTC", ProvidersTotal: 25, NeverCredentialed: 20, VerificationStale: 2, ExclusionFlagged: 4,
		RecredentialingDue90d: 2, LicensesTotal: 7, LicensesExpired: 1, LicensesExpiring90d: 4, AuditEntriesLast24h: 2,
		ByDecision: map[string]int64{"approved": 2, "denied": 1, "needs_review": 1, "incomplete": 1}}
	if s.Today.String() != "2026-03-10" || !s.AsOf.Equal(now) || !s.GeneratedAt.Equal(now) || s.Report != "summary" ||
		s.ReadFrom != "primary" || s.ReplicaLagSeconds == nil || *s.ReplicaLagSeconds != 0 {
		t.Errorf("meta: %s", a.raw)
	}
	s.Meta, s.Today, s.GeneratedAt = Meta{}, want.Today, want.GeneratedAt
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
	if a.header.Get("X-As-Of") != now.Format(time.RFC3339Nano) || a.header.Get("X-Replica-Lag-Seconds") != "0.000" {
		t.Errorf("headers %v", a.header)
	}
}

// periodCounts renders a decisions answer as "start approved/denied/needs_review/incomplete" per period.
func periodCounts(d Decisions) []string {
	var out []string
	for _, p := range d.Periods {
		if p.Total > 0 {
			out = append(out, fmt.Sprintf("%s..%s %d/%d/%d/%d", p.First, p.Last, p.Approved, p.Denied, p.NeedsReview, p.Incomplete))
		}
	}
	return out
}

func TestDecisions(t *testing.T) {
	t.Parallel()
	k := seeded(t, kitOptions{})
	tests := []struct {
		query   string
		periods []string
		total   int64
	}{
		// A run at 03:00 UTC on 1 March is 28 February in New York; 03:59:59
		// UTC on the 9th is still the 8th there (daylight time began that
		// night), 04:00 is the 9th.
		{"from=2026-02-28&to=2026-03-09", []string{"2026-03-01..2026-03-01 1/1/0/0", "2026-03-08..2026-03-08 0/0/1/0",
			"2026-03-09..2026-03-09 1/0/0/1"}, 5},
		{"from=2026-02-28&to=2026-03-09&tz=America/New_York", []string{"2026-02-28..2026-02-28 1/0/0/0",
			"2026-03-01..2026-03-01 0/1/0/0", "2026-03-08..2026-03-08 0/0/1/1", "2026-03-09..2026-03-09 1/0/0/0"}, 5},
		{"from=2026-02-01&to=2026-03-31&interval=month", []string{"2026-02-01..2026-02-28 1/0/0/0",
			"2026-03-01..2026-03-31 3/2/1/1"}, 8},
		{"from=2026-03-02&to=2026-03-15&interval=week&tz=America/New_York", []string{"2026-03-02..2026-03-08 0/0/1/1",
			"2026-03-09..2026-03-15 1/0/0/0"}, 3},
		// Kolkata is UTC+05:30: 18:29:59 UTC is 23:59:59 on the 20th, 18:30 the 21st.
		{"from=2026-03-20&to=2026-03-21&tz=Asia/Kolkata", []string{"2026-03-20..2026-03-20 1/0/0/0", "2026-03-21..2026-03-21 0/1/0/0"}, 2},
		{"from=2026-03-20&to=2026-03-21", []string{"2026-03-20..2026-03-20 1/1/0/0"}, 2},
	}
	for _, tc := range tests {
		var d Decisions
		k.ok("/stats/decisions?"+tc.query, &d)
		if got := periodCounts(d); !reflect.DeepEqual(got, tc.periods) || d.Totals.Total != tc.total {
			t.Errorf("%s:\n got %q total %d\nwant %q total %d", tc.query, got, d.Totals.Total, tc.periods, tc.total)
		}
	}
	// Every period is listed, empty ones too; the default is the 30 days to today, by day.
	var d Decisions
	k.ok("/stats/decisions", &d)
	if len(d.Periods) != 30 || d.From.String() != "2026-02-09" || d.To.String() != "2026-03-10" || d.Interval != "day" || d.TZ != "UTC" {
		t.Errorf("default: %d periods %s..%s %s %s", len(d.Periods), d.From, d.To, d.Interval, d.TZ)
	}
}

func TestChecks(t *testing.T) {
	t.Parallel()
	k := seeded(t, kitOptions{})
	var c Checks
	k.ok("/stats/checks?from=2026-03-01&to=2026-03-09", &c)
	var got []string
	for _, o := range c.Checks {
		got = append(got, fmt.Sprintf("%s/%s %d: %d/%d/%d/%d %.2f/%.2f/%.2f/%.2f", o.Check, o.Source, o.Total, o.Pass, o.Fail,
			o.NeedsReview, o.Unavailable, o.PassRate, o.FailRate, o.NeedsReviewRate, o.UnavailableRate))
	}
	want := []string{
		"npi_format/npi_format 5: 5/0/0/0 1.00/0.00/0.00/0.00",
		"nppes/nppes 4: 4/0/0/0 1.00/0.00/0.00/0.00",
		"nppes/nppes_api 1: 0/0/0/1 0.00/0.00/0.00/1.00",
		"leie/leie 5: 4/1/0/0 0.80/0.20/0.00/0.00",
		"sam/sam 5: 5/0/0/0 1.00/0.00/0.00/0.00",
		"license/license 5: 4/0/1/0 0.80/0.00/0.20/0.00",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("outcomes\n got %q\nwant %q", got, want)
	}
	wantReasons := []Reason{
		{Check: "nppes", Outcome: "unavailable", Reason: "the NPI Registry did not answer in #", Count: 1, Share: 0.2},
		{Check: "leie", Outcome: "fail", Reason: "NPI # is excluded in the OIG LEIE (line #)", Count: 1, Share: 0.2},
		{Check: "license", Outcome: "needs_review", Reason: "CA #: no license # found in CA", Count: 1, Share: 0.2},
	}
	if !reflect.DeepEqual(c.Reasons, wantReasons) {
		t.Errorf("reasons\n got %+v\nwant %+v", c.Reasons, wantReasons)
	}
	c = Checks{}
	k.ok("/stats/checks?from=2026-03-01&to=2026-03-09&reasons=1", &c)
	if len(c.Reasons) != 1 {
		t.Errorf("reasons=1 gave %d", len(c.Reasons))
	}
	// The same range in New York starts and ends four or five hours later:
	// the run at 03:00 UTC on 1 March falls out, the one at 04:00 on the
	// 10th is not there to fall in.
	c = Checks{}
	k.ok("/stats/checks?from=2026-03-01&to=2026-03-09&tz=America/New_York", &c)
	if c.Checks[0].Total != 4 {
		t.Errorf("New York range: %d npi_format checks, want 4", c.Checks[0].Total)
	}
}

func TestTurnaround(t *testing.T) {
	t.Parallel()
	k := seeded(t, kitOptions{})
	var tr Turnaround
	k.ok("/stats/turnaround?from=2026-01-01&to=2026-01-31&interval=month", &tr)
	f := func(v *float64) string {
		if v == nil {
			return "null"
		}
		return fmt.Sprint(*v)
	}
	show := func(d Durations) string { return fmt.Sprintf("%d %s %s %s", d.Count, f(d.P50), f(d.P90), f(d.P95)) }
	// 1..10 hours: p50 5.5 h, p90 9.1 h, p95 9.55 h (interpolated);
	// in review 0.5, 1.5, 2.5, 3.5 h: p50 2 h, p90 3.2 h, p95 3.35 h.
	if got, want := show(tr.Turnaround), "10 19800 32760 34380"; got != want {
		t.Errorf("turnaround %s, want %s", got, want)
	}
	if got, want := show(tr.NeedsReview), "4 7200 11520 12060"; got != want {
		t.Errorf("needs_review %s, want %s", got, want)
	}
	if len(tr.Periods) != 1 || show(tr.Periods[0].Turnaround) != show(tr.Turnaround) || tr.OpenReviews != 2 {
		t.Errorf("periods %+v, open %d", tr.Periods, tr.OpenReviews)
	}
	tr = Turnaround{}
	k.ok("/stats/turnaround?from=2026-01-04&to=2026-01-12&interval=week", &tr)
	if len(tr.Periods) != 3 || tr.Periods[0].Turnaround.Count != 0 || tr.Periods[0].Turnaround.P50 != nil ||
		tr.Periods[1].Turnaround.Count != 10 || tr.Periods[2].NeedsReview.Count != 0 {
		t.Errorf("weeks: %+v", tr.Periods)
	}
}

func expiringPage(k *kit, query string) Expiring {
	k.t.Helper()
	var e Expiring
	k.ok("/stats/expiring?"+query, &e)
	return e
}

func itemKeys(e Expiring) []string {
	var out []string
	for _, it := range e.Items {
		key := it.ProviderID
		if it.Number+it.Board != "" {
			key = it.Number + it.Board
		}
		if it.DaysLeft != nil {
			key += fmt.Sprintf("@%d", *it.DaysLeft)
		}
		out = append(out, key)
	}
	return out
}

func TestExpiring(t *testing.T) {
	t.Parallel()
	k := seeded(t, kitOptions{})
	e := expiringPage(k, "")
	wantCounts := map[string]map[string]int64{
		"license":             {"expired": 1, "within_7d": 2, "within_14d": 3, "within_30d": 3, "within_60d": 3, "within_90d": 4},
		"board_certification": {"expired": 1, "within_7d": 1, "within_14d": 1, "within_30d": 1, "within_60d": 1, "within_90d": 1},
		"recredentialing":     {"overdue": 1, "within_30d": 1, "within_90d": 1, "within_120d": 2},
		"verification":        {"stale": 1, "never_verified": 1},
	}
	if !reflect.DeepEqual(e.Counts, wantCounts) || e.StalenessLimitDays != 120 || e.Today.String() != "2026-03-10" {
		t.Errorf("counts %v (limit %d, today %s)", e.Counts, e.StalenessLimitDays, e.Today)
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"L1@0", "L2@6", "L3@7", "L4@89"}}, // kind=license within=90
		{"within=7", []string{"L1@0", "L2@6"}},
		{"within=7&include_past=true", []string{"L0@-1", "L1@0", "L2@6"}},
		{"within=7&state=ny", []string{"L2@6"}},
		{"kind=board_certification&within=7&include_past=true", []string{"ABFM@-68", "ABIM@2"}},
		{"kind=recredentialing", []string{"e2@10", "e5@119"}},
		{"kind=recredentialing&include_past=true&within=30", []string{"e3@-1", "e2@10"}},
		// Never verified first, then the oldest; due_on is when it went stale.
		{"kind=verification", []string{"e4", "e2@0"}}, // stale since 14:00 today
		{"kind=verification&within=1", []string{"e4", "e2@0", "e3@1"}},
	}
	for _, tc := range tests {
		if got := itemKeys(expiringPage(k, tc.query)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.query, got, tc.want)
		}
	}
	it := expiringPage(k, "within=7").Items[0]
	if it.Kind != "license" || it.ProviderID != "e1" || it.NPI != "1200000001" || it.Name != "@Zoë Expiring" || it.State != "CA" ||
		it.LicenseType != "MD" || it.DueOn.String() != "2026-03-10" {
		t.Errorf("item %+v", it)
	}

	// Paging: one at a time through the license list gives the same items.
	var paged []string
	cursor := ""
	for i := 0; i < 10; i++ {
		e := expiringPage(k, "limit=1"+cursor)
		paged = append(paged, itemKeys(e)...)
		if e.NextCursor == "" {
			break
		}
		cursor = "&cursor=" + url.QueryEscape(e.NextCursor)
	}
	if want := []string{"L1@0", "L2@6", "L3@7", "L4@89"}; !reflect.DeepEqual(paged, want) {
		t.Errorf("paged %q, want %q", paged, want)
	}
	for _, q := range []string{"kind=verification&within=1", "kind=board_certification&include_past=true", "kind=recredentialing&include_past=true"} {
		var paged []string
		cursor := ""
		for i := 0; i < 10; i++ {
			e := expiringPage(k, q+"&limit=1"+cursor)
			paged = append(paged, itemKeys(e)...)
			if e.NextCursor == "" {
				break
			}
			cursor = "&cursor=" + url.QueryEscape(e.NextCursor)
		}
		if want := itemKeys(expiringPage(k, q)); !reflect.DeepEqual(paged, want) {
			t.Errorf("%s paged %q, want %q", q, paged, want)
		}
	}

	// At 02:30 UTC on the 11th it is still the 10th in New York: the
	// windows count from the local date.
	k.setNow(time.Date(2026, 3, 11, 2, 30, 0, 0, time.UTC))
	if got := itemKeys(expiringPage(k, "within=7&include_past=true")); !reflect.DeepEqual(got, []string{"L0@-2", "L1@-1", "L2@5", "L3@6"}) {
		t.Errorf("UTC on the 11th: %q", got)
	}
	if got := itemKeys(expiringPage(k, "within=7&include_past=true&tz=America/New_York")); !reflect.DeepEqual(got, []string{"L0@-1", "L1@0", "L2@6"}) {
		t.Errorf("New York on the 10th: %q", got)
	}
}

func TestBatches(t *testing.T) {
	t.Parallel()
	k := seeded(t, kitOptions{})
	var b Batches
	k.ok("/stats/batches", &b)
	if b.Totals.Batches != 2 || b.Totals.Providers != 7 || b.Totals.Outcomes["approved"] != 3 || b.Totals.Outcomes["queued"] != 1 ||
		b.Totals.Outcomes["unknown_provider"] != 1 || b.Totals.Outcomes["failed"] != 0 {
		t.Errorf("totals %+v", b.Totals)
	}
	if len(b.Items) != 2 || b.Items[0].BatchID != "b2" || b.Items[1].BatchID != "b1" {
		t.Fatalf("items %+v", b.Items)
	}
	b1, b2 := b.Items[1], b.Items[0]
	if b1.Status != "finished" || b1.Size != 4 || b1.Done != 4 || *b1.QueuedSeconds != 60 || *b1.DurationSeconds != 120 ||
		*b1.ThroughputPerMinute != 2 || b1.Outcomes["denied"] != 1 {
		t.Errorf("b1 %+v", b1)
	}
	if b2.Status != "running" || b2.Done != 1 || *b2.DurationSeconds != now.Sub(time.Date(2026, 3, 6, 9, 0, 30, 0, time.UTC)).Seconds() ||
		b2.Outcomes["running"] != 1 {
		t.Errorf("b2 %+v", b2)
	}
	// One per page.
	k.ok("/stats/batches?limit=1", &b)
	if len(b.Items) != 1 || b.Items[0].BatchID != "b2" || b.NextCursor == "" {
		t.Fatalf("page 1 %+v", b)
	}
	next := b.NextCursor
	b = Batches{}
	k.ok("/stats/batches?limit=1&cursor="+url.QueryEscape(next), &b)
	if len(b.Items) != 1 || b.Items[0].BatchID != "b1" || b.NextCursor != "" {
		t.Fatalf("page 2 %+v", b)
	}
	b = Batches{}
	k.ok("/stats/batches?from=2025-12-01&to=2026-01-31", &b)
	if len(b.Items) != 1 || b.Items[0].BatchID != "b3" {
		t.Errorf("older range %+v", b.Items)
	}
}

func TestMonitoring(t *testing.T) {
	t.Parallel()
	k := seeded(t, kitOptions{})
	var m Monitoring
	k.ok("/stats/monitoring", &m)
	var got []string
	for _, i := range m.Imports {
		got = append(got, fmt.Sprintf("%d %s %s %d", i.ImportID, i.Source, i.Status, i.NewMatches))
	}
	if want := []string{"3 sam failed 0", "2 leie active 3", "1 leie superseded 1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("imports %q, want %q", got, want)
	}
	if m.Totals.Imports != 3 || m.Totals.Activated != 2 || m.Totals.Failed != 1 || m.Totals.NewMatches != 4 || m.FlaggedNow != 4 {
		t.Errorf("totals %+v flagged %d", m.Totals, m.FlaggedNow)
	}
	leie, sam := m.Sources[0], m.Sources[1]
	if leie.Source != "leie" || *leie.ActiveImportID != 2 || *leie.ActiveVersion != 2 || *leie.DaysSinceActivation != 9 ||
		sam.ActiveImportID != nil || sam.DaysSinceActivation != nil {
		t.Errorf("sources %+v", m.Sources)
	}
	if m.Imports[1].FileDate.String() != "2026-03-01" || m.Imports[1].Rows != 80000 {
		t.Errorf("import 2: %+v", m.Imports[1])
	}
	m = Monitoring{}
	k.ok("/stats/monitoring?source=sam", &m)
	if len(m.Imports) != 1 || len(m.Sources) != 1 || m.Sources[0].Source != "sam" {
		t.Errorf("sam only: %+v %+v", m.Imports, m.Sources)
	}
}

// Every report answers CSV a spreadsheet opens: one header, the rows of
// the JSON answer.
func TestCSV(t *testing.T) {
	t.Parallel()
	k := seeded(t, kitOptions{})
	tests := []struct {
		path   string
		header string
		rows   int
		cell   string // a cell some row must hold
	}{
		{"/stats/summary", "metric,value", 13, "licenses_expiring_90d"},
		{"/stats/decisions?from=2026-03-01&to=2026-03-09", "period_start,period_end,approved,denied,needs_review,incomplete,total", 9, "2026-03-08"},
		{"/stats/checks?from=2026-03-01&to=2026-03-09", "check,source,total,pass,fail,needs_review,unavailable,pass_rate,fail_rate,needs_review_rate,unavailable_rate", 6, "nppes_api"},
		{"/stats/checks?from=2026-03-01&to=2026-03-09&table=reasons", "check,outcome,reason,count,share", 3, "NPI # is excluded in the OIG LEIE (line #)"},
		{"/stats/turnaround?from=2026-01-01&to=2026-01-31&interval=month", "period_start,period_end,decided,turnaround_p50_seconds,turnaround_p90_seconds,turnaround_p95_seconds,reviews_resolved,needs_review_p50_seconds,needs_review_p90_seconds,needs_review_p95_seconds", 1, "19800"},
		// The CSV list is every item, not a page; a formula-looking name is quoted.
		{"/stats/expiring?limit=1", "kind,provider_id,npi,name,state,number,license_type,board,specialty,approved_at,last_verified_at,due_on,days_left", 4, "'@Zoë Expiring"},
		{"/stats/expiring?table=counts", "kind,window,count", 18, "never_verified"},
		{"/stats/batches", "batch_id,source,status,size,duplicates,created_at,started_at,finished_at,canceled_at,queued_seconds,duration_seconds,done,throughput_per_minute,approved,denied,needs_review,incomplete,unknown_provider,failed,canceled,queued,running", 2, "b2"},
		{"/stats/monitoring", "import_id,source,status,version,file_date,rows,started_at,finished_at,activated_at,new_matches", 3, "superseded"},
	}
	for _, tc := range tests {
		sep := "?"
		if strings.Contains(tc.path, "?") {
			sep = "&"
		}
		a := k.get(tc.path + sep + "format=csv")
		if a.status != 200 || a.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
			!strings.HasPrefix(a.header.Get("Content-Disposition"), `attachment; filename="stats-`) {
			t.Errorf("%s: %d %v", tc.path, a.status, a.header)
			continue
		}
		body := string(a.raw)
		if !strings.HasPrefix(body, "\ufeff") {
			t.Errorf("%s: no byte order mark", tc.path)
		}
		rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\ufeff"))).ReadAll()
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		if strings.Join(rows[0], ",") != tc.header || len(rows)-1 != tc.rows || !strings.Contains(body, tc.cell) {
			t.Errorf("%s: header %q, %d rows (want %d), holds %q: %v\n%s", tc.path, rows[0], len(rows)-1, tc.rows, tc.cell,
				strings.Contains(body, tc.cell), body)
		}
	}
}

// Bad parameters are 400 invalid_parameter naming the parameter, before
// any query.
func TestBadParameters(t *testing.T) {
	t.Parallel()
	k := newKit(t, kitOptions{})
	tests := []struct{ path, field string }{
		{"/stats/decisions?from=2026-13-01", "from"},
		{"/stats/decisions?from=2026-03-01&to=2026-02-01", "to"},
		{"/stats/decisions?from=2024-01-01&to=2026-01-01", "to"},
		{"/stats/decisions?interval=hour", "interval"},
		{"/stats/decisions?tz=Mars/Olympus", "tz"},
		{"/stats/decisions?format=xlsx", "format"},
		{"/stats/decisions?since=2026-01-01", "since"},
		{"/stats/checks?reasons=1000", "reasons"},
		{"/stats/checks?table=pivot", "table"},
		{"/stats/turnaround?interval=quarter", "interval"},
		{"/stats/expiring?kind=dea", "kind"},
		{"/stats/expiring?within=0", "within"},
		{"/stats/expiring?within=366", "within"},
		{"/stats/expiring?kind=board_certification&state=CA", "state"},
		{"/stats/expiring?state=California", "state"},
		{"/stats/expiring?limit=501", "limit"},
		{"/stats/expiring?include_past=maybe", "include_past"},
		{"/stats/batches?limit=abc", "limit"},
		{"/stats/monitoring?source=nppes", "source"},
		{"/stats/summary?from=2026-01-01", "from"},
	}
	before := k.queries.n.Load()
	for _, tc := range tests {
		a := k.get(tc.path)
		if a.status != 400 || a.body["code"] != "invalid_parameter" || a.body["field"] != tc.field ||
			!strings.HasPrefix(fmt.Sprint(a.body["detail"]), tc.field+": ") {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.path, a.status, a.raw, tc.field)
		}
	}
	for _, p := range []string{"/stats/expiring?cursor=nonsense", "/stats/batches?cursor=%7B"} {
		if a := k.get(p); a.status != 400 || a.body["code"] != "invalid_cursor" {
			t.Errorf("%s: %d %s", p, a.status, a.raw)
		}
	}
	if k.queries.n.Load() != before || k.metric("stats_query_duration_seconds", "report=decisions") != 0 {
		t.Error("a bad request reached the database")
	}
}
