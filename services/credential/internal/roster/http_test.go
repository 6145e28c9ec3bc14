package roster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/roster"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/semaphore"
	"github.com/provcred/platform/server"
)

func TestImportUpsertsAndAudits(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.New(t)
	store := providers.NewStore(pool)
	ctx := context.Background()
	existing := &providers.Provider{ID: "keep_me", NPI: "1245319599", FirstName: "Bob", LastName: "Ray"}
	existing.Normalize()
	if _, err := store.Create(ctx, providers.Actor{ID: "seed"}, existing); err != nil {
		t.Fatal(err)
	}
	sem := semaphore.New("file", 1, 0, metrics.New("t"))
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		ae, ok := apierr.From(err)
		if !ok {
			t.Errorf("non-API error: %v", err)
			ae = apierr.Internal()
		}
		return c.Status(ae.Status).JSON(ae)
	}})
	// The identity the platform server would have verified.
	app.Use(server.WithIdentity(internalauth.Identity{Actor: "key_admin", Role: "admin"}))
	app.Post("/providers/import", roster.ImportHandler(store, sem, 100, 1<<20))
	post := func(ctype, body string) (int, map[string]any) {
		req := httptest.NewRequest("POST", "/providers/import", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		resp, err := app.Test(req, 10000)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}
	csv := "npi,first_name,last_name,license_state,license_number,license_expires_on\n" +
		"1234567893,Ann,Lee,CA,A1,2027-01-01\n1245319599,Bob,Ray-Jones,NY,B1,\n1245319599,Bob,Ray-Jones,NJ,B2,\n"
	st, body := post("text/csv", csv)
	if st != 200 || body["created"] != float64(1) || body["updated"] != float64(1) || body["rows"] != float64(3) {
		t.Fatalf("%d %v", st, body)
	}
	bob, err := store.Get(ctx, "keep_me")
	if err != nil || bob.LastName != "Ray-Jones" || len(bob.Licenses) != 2 {
		t.Fatalf("NPI match must update the existing provider: %+v %v", bob, err)
	}
	var audits int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE actor = 'key_admin' AND before IS NOT NULL AND provider_id = 'keep_me' AND event = 'provider.updated'`).Scan(&audits)
	if audits != 1 {
		t.Fatalf("audit entries for the update = %d", audits)
	}
	// keep_me changes NPI while an id-less row names its old NPI: both rows
	// resolve to keep_me (was a 500 from ON CONFLICT updating a row twice).
	st, body = post("text/csv", "id,npi,first_name,last_name\nkeep_me,1003000126,Bob,Ray\n,1245319599,Cy,Doe\n")
	if st != 409 || body["code"] != "conflict" || !strings.Contains(body["detail"].(string), "keep_me") {
		t.Fatalf("%d %v", st, body)
	}
	if bob, err := store.Get(ctx, "keep_me"); err != nil || bob.NPI != "1245319599" {
		t.Fatalf("a refused roster changed keep_me: %+v %v", bob, err)
	}
	// A bad row anywhere writes nothing.
	st, body = post("text/csv", "npi,first_name,last_name\n1003000126,Cy,Doe\n1234567890,Bad,Npi\n")
	if st != 422 || body["code"] != "import_failed" || len(body["errors"].([]any)) != 1 {
		t.Fatalf("%d %v", st, body)
	}
	if _, err := store.Get(ctx, "none"); err == nil {
		t.Fatal("unexpected")
	}
	var n int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM providers`).Scan(&n)
	if n != 2 {
		t.Fatalf("providers = %d after a rejected roster, want 2", n)
	}
	// A roster cut off mid-row is refused at that line and leaves the
	// provider's licenses as they were (it used to upsert the row with its
	// missing type and expiry empty).
	full := "id,npi,first_name,last_name,license_state,license_number,license_type,license_expires_on\n"
	if st, body = post("text/csv", full+"lic,1003000134,Di,Poe,CA,L1,MD,2028-05-01\n"); st != 200 {
		t.Fatalf("%d %v", st, body)
	}
	st, body = post("text/csv", full+"lic,1003000134,Di,Poe,CA,L1,MD,2028-05-01\nlic,1003000134,Di,Poe,CA,L1")
	if st != 422 || body["code"] != "import_failed" || !strings.Contains(body["detail"].(string), "line 3: the row has 6 fields, the header has 8") {
		t.Fatalf("cut-off roster: %d %v", st, body)
	}
	if p, err := store.Get(ctx, "lic"); err != nil || len(p.Licenses) != 1 || p.Licenses[0].Type != "MD" || p.Licenses[0].ExpiresOn == nil {
		t.Fatalf("the refused roster changed the license: %+v %v", p, err)
	}
	_, _ = pool.Exec(ctx, `DELETE FROM providers WHERE id = 'lic'`)
	if st, body := post("application/json", "{}"); st != 415 {
		t.Fatalf("%d %v", st, body)
	}
	// NPI clash between a row with an explicit id and another provider.
	st, body = post("text/csv", "id,npi,first_name,last_name\nother,1234567893,Ann,Lee\n")
	if st != 409 || body["code"] != "npi_exists" {
		t.Fatalf("%d %v", st, body)
	}
	// multipart/form-data with a "file" part, as docs/api.md promises (was 415).
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("note", "ignored")
	fw, _ := mw.CreateFormFile("file", "roster.csv")
	_, _ = io.WriteString(fw, "id,npi,first_name,last_name\nfrom_form,1003000126,Cy,Doe\n")
	_ = mw.Close()
	st, body = post(mw.FormDataContentType(), mp.String())
	if st != 200 || body["created"] != float64(1) {
		t.Fatalf("multipart: %d %v", st, body)
	}
	if p, err := store.Get(ctx, "from_form"); err != nil || p.LastName != "Doe" {
		t.Fatalf("multipart roster not stored: %+v %v", p, err)
	}
	mp.Reset()
	mw = multipart.NewWriter(&mp)
	_ = mw.WriteField("roster", "npi\n")
	_ = mw.Close()
	if st, body = post(mw.FormDataContentType(), mp.String()); st != 422 || body["code"] != "import_failed" {
		t.Fatalf("multipart without file: %d %v", st, body)
	}
	if st, body = post("multipart/form-data", "x"); st != 400 || body["code"] != "bad_request" {
		t.Fatalf("multipart without boundary: %d %v", st, body)
	}
	// The file semaphore is enforced.
	_ = sem.Acquire(ctx)
	st, body = post("text/csv", csv)
	sem.Release()
	if st != 503 || body["code"] != "file_operations_busy" {
		t.Fatalf("%d %v", st, body)
	}
}
