package expirables

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/events"
	"github.com/provcred/credential/internal/store"
	"github.com/provcred/credential/internal/testdb"
	platformcfg "github.com/provcred/platform/config"
	"github.com/provcred/platform/metrics"
)

func newJob(t *testing.T) (*Job, *pgxpool.Pool, *metrics.Registry) {
	t.Helper()
	pool, _ := testdb.New(t)
	c, err := platformcfg.Parse[config.Config](nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.New("credential")
	return New(pool, c.Webhooks, reg, slog.New(slog.DiscardHandler)), pool, reg
}

var day0 = time.Date(2026, 3, 10, 6, 0, 0, 0, time.UTC)

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// provider inserts a provider (npi from n) with one license expiring on expires.
func provider(t *testing.T, pool *pgxpool.Pool, id string, npi string, expires time.Time) {
	t.Helper()
	exec(t, pool, `INSERT INTO providers (id, npi, first_name, last_name) VALUES ($1, $2, 'Ada', 'Lovelace')`, id, npi)
	exec(t, pool, `INSERT INTO provider_licenses (provider_id, state, number, type, expires_on) VALUES ($1, 'CA', 'A123', 'MD', $2)`,
		id, expires.Format(time.DateOnly))
}

type raised struct {
	Type       string
	ProviderID string
	Window     int
	DaysLeft   int
}

func eventsOf(t *testing.T, pool *pgxpool.Pool) []raised {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT type, coalesce(provider_id, ''), (data->>'window_days')::int,
		(data->>'days_left')::int FROM events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []raised
	for rows.Next() {
		var r raised
		if err := rows.Scan(&r.Type, &r.ProviderID, &r.Window, &r.DaysLeft); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// A license 31 days from expiry is in the 60-day window; the next day it
// crosses into the 30-day window: one license.expiring, raised once however
// often the job runs that day or in the days after inside the window.
func TestLicenseCrossingThe30DayWindowRaisesOnce(t *testing.T) {
	t.Parallel()
	j, pool, reg := newJob(t)
	provider(t, pool, "p1", "1234567893", day0.AddDate(0, 0, 31))
	ctx := context.Background()

	if _, err := j.Run(ctx, day0); err != nil {
		t.Fatal(err)
	}
	got := eventsOf(t, pool)
	if len(got) != 1 || got[0] != (raised{events.LicenseExpiring, "p1", 60, 31}) {
		t.Fatalf("day 0: %+v", got)
	}
	for _, d := range []int{1, 1, 2, 15} {
		if _, err := j.Run(ctx, day0.AddDate(0, 0, d)); err != nil {
			t.Fatal(err)
		}
	}
	got = eventsOf(t, pool)
	if len(got) != 2 || got[1] != (raised{events.LicenseExpiring, "p1", 30, 30}) {
		t.Fatalf("after days 1, 1, 2 and 15: %+v", got)
	}
	if v, _ := reg.Value("credential_expirables_total", "kind=license", "window=30"); v != 1 {
		t.Errorf("credential_expirables_total{license,30} = %v", v)
	}
	// Day 17: 14 days left; day 31: expired.
	if _, err := j.Run(ctx, day0.AddDate(0, 0, 17)); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Run(ctx, day0.AddDate(0, 0, 40)); err != nil {
		t.Fatal(err)
	}
	got = eventsOf(t, pool)
	if len(got) != 4 || got[2] != (raised{events.LicenseExpiring, "p1", 14, 14}) || got[3] != (raised{events.LicenseExpired, "p1", 0, -9}) {
		t.Fatalf("%+v", got)
	}
	// A renewal (a new expiry date) starts over.
	exec(t, pool, `UPDATE provider_licenses SET expires_on = $1 WHERE provider_id = 'p1'`, day0.AddDate(0, 0, 80).Format(time.DateOnly))
	res, err := j.Run(ctx, day0.AddDate(0, 0, 41))
	if err != nil {
		t.Fatal(err)
	}
	if res.Total() != 1 || res[KindLicense][60] != 1 {
		t.Errorf("after renewal: %v", res)
	}
}

// Every kind, run twice on the same day: the second run raises nothing.
func TestDailyJobRunTwiceOnOneDayRaisesNothingTwice(t *testing.T) {
	t.Parallel()
	j, pool, _ := newJob(t)
	ctx := context.Background()
	provider(t, pool, "lic", "1234567893", day0.AddDate(0, 0, -3))   // expired
	provider(t, pool, "soon", "1245319599", day0.AddDate(0, 0, 100)) // outside every window
	exec(t, pool, `UPDATE providers SET board_certifications = $1 WHERE id = 'soon'`,
		`[{"board":"ABIM","specialty":"Internal Medicine","expires_on":"`+day0.AddDate(0, 0, 6).Format(time.DateOnly)+`"}]`)
	// Approved 36 months less 100 days ago, verified 121 days ago.
	approved := day0.AddDate(-3, 0, 100)
	exec(t, pool, `UPDATE providers SET decision = 'approved', approved_at = $1, last_verified_at = $2 WHERE id = 'lic'`,
		approved, day0.AddDate(0, 0, -121))

	first, err := j.Run(ctx, day0)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{KindLicense: {0: 1}, KindBoardCertification: {7: 1}, KindRecredentialing: {120: 1}, KindVerification: {0: 1}}
	if first.Total() != 4 {
		t.Fatalf("first run %v, want %v", first, want)
	}
	for k, ws := range want {
		for w, n := range ws {
			if first[k][w] != n {
				t.Errorf("first run %s/%d = %d, want %d", k, w, first[k][w], n)
			}
		}
	}
	second, err := j.Run(ctx, day0.Add(12*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if second.Total() != 0 {
		t.Fatalf("second run on the same day raised %v", second)
	}
	byType := map[string]int{}
	for _, r := range eventsOf(t, pool) {
		byType[r.Type]++
	}
	if byType[events.LicenseExpired] != 1 || byType[events.LicenseExpiring] != 1 || byType[events.RecredentialingDue] != 1 ||
		byType[events.VerificationStale] != 1 || len(byType) != 4 {
		t.Errorf("events %v", byType)
	}
	// No names or dates of birth in any payload.
	var leaked int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE data::text ILIKE '%lovelace%' OR data::text ILIKE '%ada%'`).Scan(&leaked); err != nil || leaked != 0 {
		t.Errorf("%d payloads hold the name (%v)", leaked, err)
	}
}

func TestDailySchedule(t *testing.T) {
	t.Parallel()
	s := Daily(6 * time.Hour)
	tests := map[string]string{
		"2026-03-10T05:59:00Z":      "2026-03-10T06:00:00Z",
		"2026-03-10T06:00:00Z":      "2026-03-11T06:00:00Z",
		"2026-03-10T23:00:00Z":      "2026-03-11T06:00:00Z",
		"2026-12-31T07:00:00Z":      "2027-01-01T06:00:00Z",
		"2026-03-10T01:00:00-08:00": "2026-03-11T06:00:00Z", // 09:00Z: tomorrow's
	}
	for in, want := range tests {
		at, _ := time.Parse(time.RFC3339, in)
		if got := s.Next(at).Format(time.RFC3339); got != want {
			t.Errorf("Next(%s) = %s, want %s", in, got, want)
		}
	}
}

// The periodic job on a River client: the elected leader inserts it on
// start (RunOnStart) and a worker runs it.
func TestPeriodicJobRunsOnTheLeader(t *testing.T) {
	t.Parallel()
	j, pool, _ := newJob(t)
	provider(t, pool, "p1", "1234567893", time.Now().AddDate(0, 0, 5))
	workers := river.NewWorkers()
	j.Register(workers)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: store.Schema, Workers: workers,
		Queues: j.Queues(), PeriodicJobs: j.Periodic(), FetchCooldown: 10 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done, cancel := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed)
	defer cancel()
	if err := client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer client.Stop(context.Background())
	select {
	case ev := <-done:
		if ev.Kind != river.EventKindJobCompleted || ev.Job.Kind != (Args{}).Kind() {
			t.Fatalf("job %s: %s", ev.Job.Kind, ev.Kind)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the daily job did not run on start")
	}
	if got := eventsOf(t, pool); len(got) != 1 || got[0].Type != events.LicenseExpiring || got[0].Window != 7 {
		t.Errorf("events %+v", got)
	}
}
