package exclusions

import (
	"context"
	"testing"
	"time"

	"github.com/provcred/platform/pgtest"
)

// TestEnded runs the one definition of "in force" on PostgreSQL: a
// reinstatement or termination dated on or before the day ends the row.
func TestEnded(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewPool(t, "")
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	d := func(s string) *time.Time { v, _ := time.Parse(time.DateOnly, s); return &v }
	for _, c := range []struct {
		name       string
		rein, term *time.Time
		want       string
	}{
		{"no dates", nil, nil, ""},
		{"reinstated today", d("2026-06-01"), nil, "reinstated"},
		{"reinstated yesterday", d("2026-05-31"), nil, "reinstated"},
		{"reinstated tomorrow", d("2026-06-02"), nil, ""},
		{"terminated today", nil, d("2026-06-01"), "terminated"},
		{"terminated tomorrow", nil, d("2026-06-02"), ""},
		{"both past: reinstatement named", d("2020-01-01"), d("2021-01-01"), "reinstated"},
		{"reinstated later, terminated already", d("2027-01-01"), d("2021-01-01"), "terminated"},
	} {
		var ended *string
		var inForce bool
		err := pool.QueryRow(context.Background(), `SELECT `+Ended("e", "$3::date")+`, `+InForce("e", "$3::date")+`
			FROM (VALUES ($1::date, $2::date)) e(rein_date, termination_date)`, c.rein, c.term, day).Scan(&ended, &inForce)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if ended != nil {
			got = *ended
		}
		if got != c.want || inForce != (c.want == "") {
			t.Errorf("%s: ended %q in force %v, want %q", c.name, got, inForce, c.want)
		}
	}
}
