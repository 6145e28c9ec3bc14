package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/seed"
	"github.com/provcred/credential/internal/sources/importer"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/metrics"
)

// leieFile is an UPDATED.csv with one row per (npi, reindate) pair.
func leieFile(rows ...[2]string) string {
	rs := make([]seed.LEIERow, len(rows))
	for i, r := range rows {
		rs[i] = seed.LEIERow{Last: "DOE", First: "PAT" + string(rune('A'+i)), NPI: r[0], DOB: "19700101",
			ExclDate: "20200101", Rein: r[1]}
	}
	return seed.LEIE(rs...)
}

func TestRescreenFlagsNewExclusionsOnce(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.New(t)
	ctx := context.Background()
	reg := metrics.New("credential")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mon := New(pool, reg, log)
	im := importer.New(pool, log)
	im.OnExclusionsImported = mon.Hook // as main wires it
	store := providers.NewStore(pool)
	a, b, c := seed.NPI("111111111"), seed.NPI("122222222"), seed.NPI("133333333")
	for id, n := range map[string]string{"pa": a, "pb": b, "pc": c} {
		if _, err := store.Create(ctx, providers.Actor{ID: "t"}, &providers.Provider{ID: id, NPI: n, FirstName: "Pat", LastName: "Doe"}); err != nil {
			t.Fatal(err)
		}
	}
	imp := func(file string) int64 {
		t.Helper()
		rec, err := im.Import(ctx, importer.Request{Source: "leie", FileName: "UPDATED.csv", Body: strings.NewReader(file)})
		if err != nil || rec.HookError != "" {
			t.Fatalf("import: %v %s", err, rec.HookError)
		}
		return rec.ID
	}
	flagged := func() map[string]bool {
		rows, _ := pool.Query(ctx, `SELECT id FROM providers WHERE exclusion_flagged_at IS NOT NULL`)
		defer rows.Close()
		out := map[string]bool{}
		for rows.Next() {
			var id string
			_ = rows.Scan(&id)
			out[id] = true
		}
		return out
	}
	metric := func() float64 { v, _ := reg.Value("credential_new_exclusions_total"); return v }

	// Version 1 excludes nobody we know (pc's row is reinstated).
	imp(leieFile([2]string{seed.NPI("199999999"), ""}, [2]string{c, "20210101"}))
	if f := flagged(); len(f) != 0 || metric() != 0 {
		t.Fatalf("v1 flagged %v (metric %v)", f, metric())
	}
	// Version 2 newly excludes pa: flagged, audited, counted, by the import hook.
	v2 := imp(leieFile([2]string{a, ""}, [2]string{c, "20210101"}, [2]string{"0000000000", ""}))
	if f := flagged(); len(f) != 1 || !f["pa"] || metric() != 1 {
		t.Fatalf("v2 flagged %v (metric %v)", f, metric())
	}
	var n int
	var after []byte
	if err := pool.QueryRow(ctx, `SELECT count(*), max(after::text) FROM audit_log WHERE event = 'provider.exclusion_flagged' AND provider_id = 'pa'`).Scan(&n, &after); err != nil || n != 1 {
		t.Fatalf("audit entries for pa: %d %v", n, err)
	}
	var ev map[string]any
	_ = json.Unmarshal(after, &ev)
	if ev["source"] != "leie" || ev["import_id"] != float64(v2) || ev["digest"] == "" {
		t.Errorf("audit after = %s", after)
	}
	// Re-running the same version, and a new version still listing pa, count nobody twice.
	if got, err := mon.Rescreen(ctx, "leie", v2); err != nil || got != 0 {
		t.Fatalf("re-run: %d %v", got, err)
	}
	imp(leieFile([2]string{a, ""}, [2]string{b, ""}))
	if f := flagged(); len(f) != 2 || !f["pb"] || metric() != 2 {
		t.Fatalf("v3 flagged %v (metric %v)", f, metric())
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE event = 'provider.exclusion_flagged'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d flag entries, want 2", n)
	}
	// Each flag is announced once, in its statement: exclusion.match_found
	// with the source row's citation and no name.
	var providersAnnounced []string
	var data string
	if err := pool.QueryRow(ctx, `SELECT array_agg(provider_id ORDER BY provider_id), max(data::text) FILTER (WHERE provider_id = 'pa')
		FROM events WHERE type = 'exclusion.match_found.v1'`).Scan(&providersAnnounced, &data); err != nil {
		t.Fatal(err)
	}
	if strings.Join(providersAnnounced, ",") != "pa,pb" || !strings.Contains(data, `"source": "leie"`) ||
		!strings.Contains(data, fmt.Sprintf(`"import_id": %d`, v2)) || strings.Contains(strings.ToLower(data), "doe") {
		t.Errorf("exclusion.match_found for %v; pa's %s", providersAnnounced, data)
	}
	// A superseded version flags nothing, not even a provider it lists who
	// is not flagged now (without the reset, pa being flagged already would
	// make this pass whatever Rescreen does).
	if _, err := pool.Exec(ctx, `UPDATE providers SET exclusion_flagged_at = NULL WHERE id = 'pa'`); err != nil {
		t.Fatal(err)
	}
	if got, _ := mon.Rescreen(ctx, "leie", v2); got != 0 || flagged()["pa"] {
		t.Fatalf("superseded version flagged %d", got)
	}
	if _, err := mon.Rescreen(ctx, "nppes", 1); err == nil {
		t.Fatal("nppes is not an exclusion list")
	}
}
