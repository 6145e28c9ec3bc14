package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/events"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/credential/internal/webhooks"
	platformcfg "github.com/provcred/platform/config"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/server"
)

func write(t *testing.T, pool *pgxpool.Pool, e events.Event) error {
	t.Helper()
	return pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error { return events.Write(context.Background(), tx, e) })
}

func TestWriteRefusesMalformedEvents(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.New(t)
	bad := []events.Event{
		{Type: "license.expiring"},    // no version
		{Type: "provider.created.v1"}, // not a type
		{Type: events.WebhookTest},    // only webhooks sends pings
		{Type: events.BatchCompleted, Link: "https://elsewhere/x"},
		{Type: events.BatchCompleted, Data: []int{1}},
		{Type: events.BatchCompleted, Data: func() {}},
	}
	for _, e := range bad {
		if err := write(t, pool, e); !errors.Is(err, events.ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", e, err)
		}
	}
	// The change and its event commit or roll back together.
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		if err := events.Write(context.Background(), tx, events.Event{Type: events.BatchCompleted, Link: "/results/batch/x"}); err != nil {
			return err
		}
		return errors.New("the change failed")
	})
	if err == nil {
		t.Fatal("expected the rollback")
	}
	if err := write(t, pool, events.Event{ID: "evt_fixed", Type: events.LicenseExpired, ProviderID: "p1", Link: "/providers/p1",
		Data: map[string]any{"days_left": 0}}); err != nil {
		t.Fatal(err)
	}
	var n int
	var id string
	if err := pool.QueryRow(context.Background(), `SELECT count(*), max(id) FROM events`).Scan(&n, &id); err != nil || n != 1 || id != "evt_fixed" {
		t.Fatalf("events: %d %s %v", n, id, err)
	}
}

// kit runs the relay (webhooks.Service) so events are published, and
// serves GET /events.
func newKit(t *testing.T) (*pgxpool.Pool, *webhooks.Service, *server.Server) {
	t.Helper()
	pool, _ := testdb.New(t)
	c, err := platformcfg.Parse[config.Config](map[string]string{"EVENT_LINK_BASE_URL": "https://api.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := webhooks.New(webhooks.Options{Pool: pool, Config: c.Webhooks, Metrics: metrics.New("credential"),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	app := server.New(server.Options{Service: "credential", Metrics: metrics.New("credential"), Logger: slog.New(slog.DiscardHandler),
		ShutdownTimeout: time.Second, RequestTimeout: 10 * time.Second})
	(&events.Handler{Pool: pool, Links: events.Links{Base: c.EventLinkBaseURL}}).Routes(app.App)
	return pool, s, app
}

func get(t *testing.T, app *server.Server, path string) (int, events.Page, map[string]any) {
	t.Helper()
	resp, err := app.App.Test(httptest.NewRequest("GET", path, nil), 10000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p events.Page
	var m map[string]any
	_ = json.Unmarshal(raw, &p)
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, p, m
}

// GET /events lists in publication order, which is commit order: an event
// whose transaction started first but committed last comes last, so a
// client paging with next_cursor never skips it.
func TestListFollowsCommitOrder(t *testing.T) {
	t.Parallel()
	pool, relay, app := newKit(t)
	ctx := context.Background()
	slow, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(ctx)
	if err := events.Write(ctx, slow, events.Event{ID: "evt_slow", Type: events.BatchCompleted, Link: "/results/batch/1"}); err != nil {
		t.Fatal(err)
	}
	if err := write(t, pool, events.Event{ID: "evt_fast", Type: events.ImportActivated, Link: "/admin/imports/1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := relay.Relay(ctx); err != nil {
		t.Fatal(err)
	}
	code, p, _ := get(t, app, "/events")
	if code != 200 || len(p.Items) != 1 || p.Items[0].ID != "evt_fast" || p.NextCursor == "" {
		t.Fatalf("first poll: %d %+v", code, p)
	}
	if p.Items[0].Link != "https://api.example.com/admin/imports/1" {
		t.Errorf("link %s", p.Items[0].Link)
	}
	cursor := p.NextCursor
	if _, p, _ = get(t, app, "/events?cursor="+cursor); len(p.Items) != 0 || p.NextCursor != cursor {
		t.Fatalf("nothing new: %+v", p)
	}
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := relay.Relay(ctx); err != nil {
		t.Fatal(err)
	}
	if _, p, _ = get(t, app, "/events?cursor="+cursor); len(p.Items) != 1 || p.Items[0].ID != "evt_slow" {
		t.Fatalf("after the slow commit: %+v", p)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	t.Parallel()
	pool, relay, app := newKit(t)
	for i, e := range []events.Event{
		{Type: events.LicenseExpiring, ProviderID: "p1", Link: "/providers/p1"},
		{Type: events.LicenseExpired, ProviderID: "p2", Link: "/providers/p2"},
		{Type: events.LicenseExpiring, ProviderID: "p2", Link: "/providers/p2"},
		{Type: events.BatchCompleted, Link: "/results/batch/b"},
	} {
		e.Data = map[string]any{"i": i}
		if err := write(t, pool, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := relay.Relay(context.Background()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query string
		n     int
	}{
		{"", 4}, {"?type=license.expiring.v1", 2}, {"?type=license.expiring.v1,license.expired.v1", 3},
		{"?type=license.expired.v1&type=batch.completed.v1", 2}, {"?provider_id=p2", 2},
		{"?provider_id=p2&type=license.expired.v1", 1}, {"?provider_id=nobody", 0},
	}
	for _, tc := range tests {
		code, p, _ := get(t, app, "/events"+tc.query)
		if code != 200 || len(p.Items) != tc.n {
			t.Errorf("%s: %d, %d items, want %d", tc.query, code, len(p.Items), tc.n)
		}
	}
	_, p1, _ := get(t, app, "/events?limit=3")
	_, p2, _ := get(t, app, "/events?limit=3&cursor="+p1.NextCursor)
	if len(p1.Items) != 3 || len(p2.Items) != 1 || p2.Items[0].Type != events.BatchCompleted || p2.Items[0].ProviderID != nil {
		t.Errorf("pages %+v / %+v", p1.Items, p2.Items)
	}
	for _, tc := range []struct{ query, code string }{
		{"?type=license.expiring", "invalid_parameter"}, {"?type=webhook.test.v1", "invalid_parameter"},
		{"?cursor=%%%", "invalid_cursor"}, {"?limit=9999", "validation_failed"},
	} {
		code, _, m := get(t, app, "/events"+tc.query)
		if code/100 != 4 || m["code"] != tc.code {
			t.Errorf("%s: %d %v, want %s", tc.query, code, m, tc.code)
		}
	}
}
