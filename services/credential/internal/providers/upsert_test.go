package providers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/provcred/credential/internal/npi"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/testdb"
)

// A roster of tens of thousands is one set-based upsert: it must scale
// linearly. Unanalyzed, the staging table was joined by nested loops: 15,000
// rows took about 15 s (50,000: nearly 3 min, past REQUEST_TIMEOUT); now
// well under a second, so 10 s leaves a wide margin on a busy machine. Not
// parallel: timed, it runs before the package's parallel tests start.
func TestUpsertLargeRosterIsLinear(t *testing.T) {
	pool, _ := testdb.New(t)
	store := providers.NewStore(pool)
	const n = 15000
	ps := make([]*providers.Provider, n)
	for i := range ps {
		payload := fmt.Sprintf("1%08d", 30000000+i)
		ps[i] = &providers.Provider{ID: fmt.Sprintf("r%05d", i), NPI: payload + string(npi.CheckDigit(payload)),
			FirstName: "Ann", LastName: fmt.Sprintf("Lee%d", i),
			Licenses: []providers.License{{State: "CA", Number: fmt.Sprintf("L%d", i)}}}
		ps[i].Normalize()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	res, err := store.Upsert(ctx, providers.Actor{ID: "test"}, ps)
	if err != nil {
		t.Fatalf("upsert of %d providers after %v: %v", n, time.Since(start), err)
	}
	if res.Created != n || res.Updated != 0 || len(res.IDs) != n {
		t.Fatalf("created %d, updated %d, ids %d; want %d created", res.Created, res.Updated, len(res.IDs), n)
	}
	t.Logf("%d providers upserted in %v", n, time.Since(start))
}
