package summary

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/platform/pgtest"
)

// credentialSchema is a template holding the credential service's real
// schema, applied by its own `migrate` subcommand: stats reads those tables,
// so the test must see exactly what production has. Its key hashes what
// decides that schema: the credential store package (its migrations) and
// the module's go.mod (River's version).
func credentialSchema(t *testing.T) pgtest.Template {
	t.Helper()
	key, err := pgtest.Fingerprint([]fs.FS{os.DirFS("../../../credential/internal/store")}, mustRead(t, "../../../credential/go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	return pgtest.Template{Name: "stats_credential", Key: key, SearchPath: "credential",
		Migrate: func(ctx context.Context, url string) error {
			cmd := exec.CommandContext(ctx, "go", "run", "github.com/provcred/credential/cmd/credential", "migrate")
			cmd.Env = append(os.Environ(), "DATABASE_URL="+url)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("credential migrate: %w\n%s", err, out)
			}
			return nil
		}}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// credentialDB makes a database with the credential service's schema.
func credentialDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, _ := credentialSchema(t).NewPool(t)
	return pool
}

func TestSummaryCounts(t *testing.T) {
	t.Parallel()
	pool := credentialDB(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		INSERT INTO providers (id, npi, first_name, last_name, decision, last_verified_at, approved_at, exclusion_flagged_at) VALUES
		('p1', '1234567893', 'A', 'One', 'approved', now(), now() - interval '35 months', NULL),
		('p2', '1245319599', 'B', 'Two', 'denied', now() - interval '200 days', NULL, now()),
		('p3', '1003000126', 'C', 'Three', NULL, NULL, NULL, NULL);
		INSERT INTO provider_licenses (provider_id, state, number, expires_on) VALUES
		('p1', 'CA', 'A1', current_date - 1), ('p1', 'NY', 'B1', current_date + 30), ('p2', 'TX', 'C1', current_date + 400);
		INSERT INTO audit_log (actor, event, entity, entity_id) VALUES ('k', 'provider.created', 'provider', 'p1')`)
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New()
	(&Handler{Pool: pool}).Routes(app)
	resp, err := app.Test(httptest.NewRequest("GET", "/stats/summary", nil))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	want := Summary{ProvidersTotal: 3, NeverCredentialed: 1, VerificationStale: 2, ExclusionFlagged: 1,
		RecredentialingDue90d: 1, LicensesTotal: 3, LicensesExpired: 1, LicensesExpiring90d: 1, AuditEntriesLast24h: 1}
	byDecision := s.ByDecision
	s.GeneratedAt, s.ByDecision = want.GeneratedAt, nil
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("got %+v\nwant %+v", s, want)
	}
	if byDecision["approved"] != 1 || byDecision["denied"] != 1 || byDecision["needs_review"] != 0 {
		t.Fatalf("by_decision = %v", byDecision)
	}
}
