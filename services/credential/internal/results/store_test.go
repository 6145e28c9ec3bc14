package results_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/provcred/credential/internal/events"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/domain"
)

// A stored run writes its events in its own transaction: exactly one
// verification.completed per run, and provider.decision_changed only when
// the run sets the provider's decision to another one (not for a repeat of
// the same decision, an older run that is not the latest, or a provider
// deleted meanwhile).
func TestSaveWritesTheRunsEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := testdb.New(t)
	store := results.NewStore(pool)
	if _, err := pool.Exec(ctx, `INSERT INTO providers (id, npi, first_name, last_name) VALUES
		('p1', '1234567893', 'Ann', 'Lee'), ('gone', '1245319599', 'Bo', 'Kim')`); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	type event struct {
		Link string
		Data map[string]any
	}
	read := func(typ, provider string) []event {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT link, data FROM events WHERE type = $1 AND provider_id = $2 ORDER BY seq`, typ, provider)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []event
		for rows.Next() {
			var e event
			var data []byte
			if err := rows.Scan(&e.Link, &data); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &e.Data); err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		return out
	}
	for i, c := range []struct {
		name     string
		provider string
		decision domain.Decision
		at       time.Duration // finished at t0 + at
		before   any           // previous_decision in the payload
		changed  bool
	}{
		{"first run: none → approved", "p1", domain.Approved, time.Hour, nil, true},
		{"same decision again", "p1", domain.Approved, 2 * time.Hour, "approved", false},
		{"approved → denied", "p1", domain.Denied, 3 * time.Hour, "approved", true},
		{"an older run is not the latest: the decision stays", "p1", domain.Approved, 30 * time.Minute, "denied", false},
		{"incomplete is a decision too", "p1", domain.Incomplete, 4 * time.Hour, "denied", true},
		{"a provider deleted before the run is stored", "gone", domain.Approved, time.Hour, nil, false},
	} {
		if c.provider == "gone" {
			if _, err := pool.Exec(ctx, `DELETE FROM providers WHERE id = 'gone'`); err != nil {
				t.Fatal(err)
			}
		}
		completedBefore, changedBefore := len(read(events.VerificationCompleted, c.provider)), len(read(events.ProviderDecisionChanged, c.provider))
		run := &results.Run{ID: uuid.NewString(), ProviderID: c.provider, NPI: "1234567893", Decision: c.decision,
			Reasons: []results.Reason{}, Actor: "test", StartedAt: t0.Add(c.at - time.Second), FinishedAt: t0.Add(c.at)}
		for _, n := range results.CheckNames {
			run.Checks = append(run.Checks, results.Check{Check: n, Outcome: domain.Pass, Evidence: results.Evidence{Source: n}})
		}
		if err := store.Save(ctx, run); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		completed := read(events.VerificationCompleted, c.provider)
		if len(completed) != completedBefore+1 {
			t.Fatalf("%s: %d verification.completed events, want %d", c.name, len(completed), completedBefore+1)
		}
		got := completed[len(completed)-1]
		checks, _ := got.Data["checks"].(map[string]any)
		if got.Link != "/results/run/"+run.ID || got.Data["run_id"] != run.ID || got.Data["decision"] != string(c.decision) ||
			got.Data["previous_decision"] != c.before || got.Data["batch_id"] != nil || len(checks) != 5 || checks["leie"] != "pass" {
			t.Errorf("%s: verification.completed %+v", c.name, got)
		}
		changed := read(events.ProviderDecisionChanged, c.provider)
		want := changedBefore
		if c.changed {
			want++
		}
		if len(changed) != want {
			t.Fatalf("%s (step %d): %d provider.decision_changed events, want %d", c.name, i, len(changed), want)
		}
		if c.changed {
			got := changed[len(changed)-1]
			if got.Link != "/results/"+c.provider || got.Data["run_id"] != run.ID ||
				got.Data["decision"] != string(c.decision) || got.Data["previous_decision"] != c.before {
				t.Errorf("%s: provider.decision_changed %+v", c.name, got)
			}
		}
	}
}
