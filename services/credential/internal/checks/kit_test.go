package checks

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/sources/importer"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/metrics"
)

// kit is one test database with the real importer and provider store.
type kit struct {
	t     testing.TB
	pool  *pgxpool.Pool
	reg   *metrics.Registry
	im    *importer.Importer
	store *providers.Store
	runs  *results.Store
	log   *slog.Logger
}

func newKit(t testing.TB) *kit {
	t.Helper()
	pool, _ := testdb.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &kit{t: t, pool: pool, reg: metrics.New("credential"), im: importer.New(pool, log),
		store: providers.NewStore(pool), runs: results.NewStore(pool), log: log}
}

// importCSV loads a source file through the sources helper's importer, as production does.
func (k *kit) importCSV(source, file string) int64 {
	k.t.Helper()
	rec, err := k.im.Import(context.Background(), importer.Request{Source: source, FileName: source + ".csv",
		Actor: "test", Body: strings.NewReader(file)})
	if err != nil {
		k.t.Fatalf("import %s: %v", source, err)
	}
	return rec.ID
}

func (k *kit) create(p *providers.Provider) {
	k.t.Helper()
	if _, err := k.store.Create(context.Background(), providers.Actor{ID: "test"}, p); err != nil {
		k.t.Fatalf("create provider %s: %v", p.ID, err)
	}
}

func date(s string) *providers.Date {
	d, err := providers.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return &d
}

// engine builds an engine with the settings' defaults (their struct tags)
// where o leaves a setting zero.
func (k *kit) engine(o Options) *Engine {
	d := Settings(config.Defaults().Checks)
	o.LicenseTimeout = cmp.Or(o.LicenseTimeout, d.LicenseTimeout)
	o.SourceTimeout = cmp.Or(o.SourceTimeout, d.SourceTimeout)
	o.NPPESDeadline = cmp.Or(o.NPPESDeadline, d.NPPESDeadline)
	o.Concurrency = cmp.Or(o.Concurrency, d.Concurrency)
	o.MaxWait = cmp.Or(o.MaxWait, d.MaxWait)
	if o.Breaker == (breaker.Settings{}) {
		o.Breaker = d.Breaker
	}
	o.DB, o.Runs, o.Providers, o.Metrics, o.Log = k.pool, k.runs, k.store, k.reg, k.log
	return New(o)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return v
}
