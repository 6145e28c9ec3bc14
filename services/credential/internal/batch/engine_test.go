package batch

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/provcred/credential/internal/checks"
	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/seed"
	"github.com/provcred/platform/domain"
)

// TestWithTheRealEngine runs a batch through internal/checks on loaded
// sources: every known provider is approved with exactly one stored final
// run for the batch, the unknown id is reported, and a second worker pass
// (a rescued job) does not add a run.
func TestWithTheRealEngine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var engine *checks.Engine
	e := newEnv(t, nil, func(o *Options) {
		opts := checks.Settings(config.Defaults().Checks)
		opts.DB, opts.Runs, opts.Providers, opts.Metrics, opts.Log = o.Pool, results.NewStore(o.Pool), o.Providers, o.Metrics, log
		engine = checks.New(opts)
		o.Credentialer = engine
	}, true)
	ps := seed.Providers("eng_", 6)
	if err := seed.Create(ctx, e.pool, ps); err != nil {
		t.Fatal(err)
	}
	if err := seed.Load(ctx, e.pool, ps, log); err != nil {
		t.Fatal(err)
	}
	ids := []string{"missing_one"}
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	r := e.do(t, "POST", "/batch-credential?wait=20s", "application/json", idsBody(ids...), "X-Actor-Id", "key-7")
	if r.code != 200 {
		t.Fatalf("%d %s", r.code, r.raw)
	}
	counts := r.body["counts"].(map[string]any)
	if counts["approved"] != float64(6) || counts["unknown_provider"] != float64(1) {
		t.Fatalf("counts %v (%s)", counts, r.raw)
	}
	id := r.body["batch_id"].(string)
	if n := e.count(t, `SELECT count(*) FROM credential_runs WHERE batch_id = $1 AND actor = 'key-7'`, id); n != 6 {
		t.Fatalf("%d runs stored for the batch, want 6", n)
	}
	if n := e.count(t, `SELECT count(*) FROM batch_items i JOIN credential_runs r ON r.id::text = i.run_id WHERE i.batch_id = $1`, id); n != 6 {
		t.Fatalf("%d items point at their run, want 6", n)
	}
	// A job that runs again (rescued after a crash) gets the same run back.
	runID, decision, err := engine.CredentialForBatch(ctx, ps[0].ID, id, "key-7")
	if err != nil || decision != domain.Approved {
		t.Fatalf("again: %s %s %v", runID, decision, err)
	}
	if n := e.count(t, `SELECT count(*) FROM credential_runs WHERE batch_id = $1`, id); n != 6 {
		t.Fatalf("re-run added a run: %d", n)
	}

}
