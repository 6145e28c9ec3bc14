package reports

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/provcred/stats/internal/statstest"
)

// withoutMeta is an answer without what says where and when it was read.
func withoutMeta(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "read_from")
	delete(m, "replica_lag_seconds")
	return m
}

func readOnlyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "25006" // read_only_sql_transaction
}

// The reports run on a real hot standby streaming from a private primary:
// the same answers as on the primary, the replica's lag in every answer,
// every write refused, and a 503 while the standby is down.
func TestReportsOnAStreamingReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary := statstest.StartPrimary(t)
	admin, err := pgx.Connect(ctx, primary.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE credentialing"); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	statstest.Migrate(t, primary.URL("credentialing"))
	seed := statstest.Pool(t, primary.URL("credentialing"), "credential")
	onPrimary := newKitOn(t, seed, primary.URL("credentialing"), kitOptions{})
	onPrimary.exec(history)

	standby := primary.Standby(t)
	statstest.WaitReplayed(t, primary, standby)
	k := newKitOn(t, seed, primary.URL("credentialing"), kitOptions{readURL: standby.URL("credentialing")})

	paths := []string{"/stats/summary", "/stats/decisions?from=2026-02-28&to=2026-03-09&tz=America/New_York",
		"/stats/checks?from=2026-03-01&to=2026-03-09", "/stats/turnaround?from=2026-01-01&to=2026-01-31",
		"/stats/expiring?within=7&include_past=true", "/stats/expiring?kind=verification&within=1", "/stats/batches",
		"/stats/monitoring"}
	for _, p := range paths {
		want, got := onPrimary.ok(p, nil), k.ok(p, nil)
		if w, g := withoutMeta(t, want.raw), withoutMeta(t, got.raw); !reflect.DeepEqual(w, g) {
			t.Errorf("%s differs on the standby:\nprimary %s\nstandby %s", p, want.raw, got.raw)
		}
		if lag, ok := got.body["replica_lag_seconds"].(float64); got.body["read_from"] != "replica" || !ok || lag < 0 {
			t.Errorf("%s: read_from %v, lag %v", p, got.body["read_from"], got.body["replica_lag_seconds"])
		}
	}
	// Caught up, the standby trails by nothing. (While WAL it has received
	// is being replayed, the lag shown is the age of the last transaction
	// replayed: on a primary idle since, an upper bound.)
	deadline := time.Now().Add(20 * time.Second)
	for k.ok("/stats/summary", nil).body["replica_lag_seconds"] != 0.0 {
		if time.Now().After(deadline) {
			t.Fatal("a standby that replayed everything does not report lag 0")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var s Summary
	k.ok("/stats/summary", &s)
	if s.ProvidersTotal != 25 || s.LicensesExpiring90d != 4 {
		t.Errorf("summary on the standby: %+v", s)
	}

	// Writes are refused: by the reader's read-only transaction on the
	// primary as well as on the standby, and by the standby itself.
	for name, r := range map[string]*kit{"primary": onPrimary, "standby": k} {
		_, err := r.reader.Read(ctx, func(ctx context.Context, tx pgx.Tx, _ time.Time) error {
			_, err := tx.Exec(ctx, `INSERT INTO credential.audit_log (actor, event, entity, entity_id) VALUES ('x', 'x', 'x', 'x')`)
			return err
		})
		if !readOnlyViolation(err) {
			t.Errorf("a write through the reader on the %s: %v", name, err)
		}
	}
	conn, err := pgx.Connect(ctx, standby.URL("credentialing"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE credential.providers SET decision = 'denied'`); !readOnlyViolation(err) {
		t.Errorf("a write on the standby: %v", err)
	}

	// What the primary stores reaches the reports through the standby.
	onPrimary.exec(`INSERT INTO credential_runs (id, provider_id, npi, decision, actor, started_at, finished_at)
		VALUES (gen_random_uuid(), 'd1', '1', 'denied', 't', '2026-03-10T10:00:00Z', '2026-03-10T10:00:00Z')`)
	statstest.WaitReplayed(t, primary, standby)
	var d Decisions
	k.ok("/stats/decisions?from=2026-03-10&to=2026-03-10", &d)
	if d.Totals.Denied != 1 {
		t.Errorf("the new run is not in the standby's report: %+v", d.Totals)
	}

	// Replay paused: the standby falls behind, and says by how much.
	if _, err := conn.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	onPrimary.exec(`INSERT INTO audit_log (actor, event, entity, entity_id) VALUES ('k', 'e', 'x', 'y')`)
	deadline = time.Now().Add(20 * time.Second)
	var lag float64
	for time.Now().Before(deadline) {
		a := k.ok("/stats/summary", nil)
		if v, _ := a.body["replica_lag_seconds"].(float64); v >= 1 {
			lag = v
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lag < 1 {
		t.Errorf("a paused standby reported lag %v, want at least 1 s", lag)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	// Down: 503 replica_unavailable at once, with Retry-After; back: answers again.
	standby.Stop(t)
	a := k.get("/stats/summary")
	if a.status != 503 || a.body["code"] != "replica_unavailable" || a.header.Get("Retry-After") == "" {
		t.Errorf("standby down: %d %s", a.status, a.raw)
	}
	standby.Restart(t)
	deadline = time.Now().Add(30 * time.Second)
	for {
		a := k.get("/stats/summary")
		if a.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby back: still %d %s", a.status, a.raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
