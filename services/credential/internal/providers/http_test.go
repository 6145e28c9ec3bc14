package providers_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/credential/internal/npi"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/server"
)

type api struct {
	t   *testing.T
	app *fiber.App
}

func newAPI(t *testing.T) (*api, *providers.Store) {
	pool, _ := testdb.New(t)
	store := providers.NewStore(pool)
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		ae, ok := apierr.From(err)
		if !ok {
			t.Errorf("non-API error reached the handler: %v", err)
			ae = apierr.Internal()
		}
		return c.Status(ae.Status).JSON(ae)
	}})
	// The identity the platform server would have verified.
	app.Use(server.WithIdentity(internalauth.Identity{Actor: "key_admin", Role: "admin"}))
	(&providers.Handler{Store: store}).Routes(app)
	return &api{t, app}, store
}

func (a *api) do(method, path, body string, hdr ...string) (int, map[string]any) {
	a.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := a.app.Test(req, 10000)
	if err != nil {
		a.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

const ann = `{"id":"provider_001","npi":"1234567893","first_name":"Ann","last_name":"Lee","date_of_birth":"1970-01-31",
	"specialty":"Cardiology","licenses":[{"state":"CA","number":"A123","type":"MD","expires_on":"2027-06-30"}]}`

func TestCRUDAndAudit(t *testing.T) {
	t.Parallel()
	a, _ := newAPI(t)
	st, p := a.do("POST", "/providers", ann)
	if st != 201 || p["id"] != "provider_001" || p["verification_stale"] != true {
		t.Fatalf("create: %d %v", st, p)
	}
	if st, body := a.do("POST", "/providers", ann); st != 409 || body["code"] != "provider_exists" {
		t.Fatalf("duplicate id: %d %v", st, body)
	}
	if st, body := a.do("POST", "/providers", strings.Replace(ann, "provider_001", "provider_002", 1)); st != 409 || body["code"] != "npi_exists" {
		t.Fatalf("duplicate npi: %d %v", st, body)
	}
	if st, body := a.do("GET", "/providers/provider_001", ""); st != 200 || len(body["licenses"].([]any)) != 1 {
		t.Fatalf("get: %d %v", st, body)
	}
	upd := strings.Replace(ann, `"Lee"`, `"Lee-Smith"`, 1)
	upd = strings.Replace(upd, `"licenses":[{"state":"CA","number":"A123","type":"MD","expires_on":"2027-06-30"}]`, `"licenses":[]`, 1)
	if st, body := a.do("PUT", "/providers/provider_001", upd); st != 200 || body["last_name"] != "Lee-Smith" || len(body["licenses"].([]any)) != 0 {
		t.Fatalf("put: %d %v", st, body)
	}
	if st, body := a.do("PUT", "/providers/nobody", strings.Replace(ann, `"id":"provider_001",`, "", 1)); st != 404 || body["code"] != "not_found" {
		t.Fatalf("put unknown: %d %v", st, body)
	}
	if st, _ := a.do("DELETE", "/providers/provider_001", ""); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if st, _ := a.do("GET", "/providers/provider_001", ""); st != 404 {
		t.Fatalf("get after delete: %d", st)
	}
}

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.New(t)
	store := providers.NewStore(pool)
	ctx := context.Background()
	p := &providers.Provider{NPI: "1234567893", FirstName: "Ann", LastName: "Lee"}
	p.Normalize()
	created, err := store.Create(ctx, providers.Actor{ID: "key_a", RequestID: "r1"}, p)
	if err != nil {
		t.Fatal(err)
	}
	p.LastName = "Lee-Smith"
	if _, err := store.Replace(ctx, providers.Actor{ID: "key_b"}, created.ID, p); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, providers.Actor{ID: "key_c"}, created.ID); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT actor, event, before->>'last_name', after->>'last_name' FROM audit_log WHERE provider_id = $1 ORDER BY id`, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var actor, event string
		var before, after *string
		_ = rows.Scan(&actor, &event, &before, &after)
		got = append(got, fmt.Sprintf("%s %s %v→%v", actor, event, deref(before), deref(after)))
	}
	want := []string{"key_a provider.created <nil>→Lee", "key_b provider.updated Lee→Lee-Smith", "key_c provider.deleted Lee-Smith→<nil>"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit:\n got %v\nwant %v", got, want)
	}
	// Append-only: the database refuses to rewrite history.
	if _, err := pool.Exec(ctx, `UPDATE audit_log SET actor = 'x'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("update of audit_log: %v", err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM audit_log`); err == nil {
		t.Fatal("delete of audit_log succeeded")
	}
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func TestBadInputIs4xx(t *testing.T) {
	t.Parallel()
	a, _ := newAPI(t)
	tests := []struct {
		name, body string
		status     int
		code       string
		field      string
	}{
		{"empty body", ``, 400, "invalid_json", ""},
		{"malformed", `{"npi":`, 400, "invalid_json", ""},
		{"two objects", `{} {}`, 400, "invalid_json", ""},
		{"array body", `[]`, 400, "invalid_json", ""},
		{"string body", `"x"`, 400, "invalid_json", ""},
		// encoding/json alone keeps the last of two keys (ignoring case):
		// what a reviewer or WAF read would not be what is stored.
		{"duplicate key", `{"npi":"1234567893","first_name":"A","last_name":"B","last_name":"C"}`, 400, "invalid_json", ""},
		{"duplicate key in other case", `{"npi":"1234567893","first_name":"A","last_name":"B","LAST_NAME":"C"}`, 400, "invalid_json", ""},
		{"duplicate key in a license", `{"npi":"1234567893","first_name":"A","last_name":"B","licenses":[{"state":"CA","number":"1","state":"NY"}]}`, 400, "invalid_json", ""},
		{"licenses not a list", `{"npi":"1234567893","first_name":"A","last_name":"B","licenses":{}}`, 422, "validation_failed", "licenses"},
		{"wrong type", `{"npi":1234567893}`, 422, "validation_failed", "npi"},
		{"unknown field", `{"npi":"1234567893","first_name":"A","last_name":"B","nickname":"x"}`, 422, "validation_failed", "nickname"},
		{"ssn refused", `{"npi":"1234567893","first_name":"A","last_name":"B","ssn":"123-45-6789"}`, 422, "validation_failed", "ssn"},
		{"bad npi", `{"npi":"1234567890","first_name":"A","last_name":"B"}`, 422, "validation_failed", "npi"},
		{"bad date", `{"npi":"1234567893","first_name":"A","last_name":"B","date_of_birth":"1970-13-01"}`, 422, "validation_failed", "date_of_birth"},
		{"bad state", `{"npi":"1234567893","first_name":"A","last_name":"B","licenses":[{"state":"ZZ","number":"1"}]}`, 422, "validation_failed", "licenses[0].state"},
		// PostgreSQL refuses NUL in text and jsonb: these were 500s.
		{"nul in license type", `{"npi":"1234567893","first_name":"A","last_name":"B","licenses":[{"state":"CA","number":"1","type":"MD\u0000"}]}`, 422, "validation_failed", "licenses[0].type"},
		{"nul in board specialty", `{"npi":"1234567893","first_name":"A","last_name":"B","board_certifications":[{"board":"ABIM","specialty":"x\u0000"}]}`, 422, "validation_failed", "board_certifications[0].specialty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body := a.do("POST", "/providers", tt.body)
			if st != tt.status || body["code"] != tt.code || (tt.field != "" && body["field"] != tt.field) {
				t.Fatalf("got %d %v", st, body)
			}
		})
	}
	// Details speak JSON, not Go type names.
	if _, body := a.do("POST", "/providers", `{"licenses":{}}`); body["detail"] != "licenses: must be a JSON array" {
		t.Errorf("detail %q", body["detail"])
	}
	if _, body := a.do("POST", "/providers", `{"npi":"1234567893","npi":"1"}`); body["detail"] != `duplicate key "npi" in the body (keys are compared ignoring case)` {
		t.Errorf("detail %q", body["detail"])
	}
	if st, body := a.do("GET", "/providers", ""); st != 200 || len(body["items"].([]any)) != 0 {
		t.Fatalf("bad input stored something: %v", body)
	}
}

func TestListFiltersAndPagination(t *testing.T) {
	t.Parallel()
	a, store := newAPI(t)
	ctx := context.Background()
	var npis []string
	for _, base := range []string{"123456789", "124531959", "100300012", "123456780", "123456781"} {
		npis = append(npis, base+string(npi.CheckDigit(base)))
	}
	specs := []struct{ first, last, state, spec string }{
		{"Ann", "Lee", "CA", "Cardiology"}, {"Bob", "Adams", "NY", "Pediatrics"}, {"Cy", "Lee", "CA", "Pediatrics"},
		{"Di", "Zhu", "TX", "cardiology"}, {"Ed", "O'Neil", "CA", "Oncology"},
	}
	for i, s := range specs {
		p := &providers.Provider{ID: fmt.Sprintf("p%d", i), NPI: npis[i], FirstName: s.first, LastName: s.last, Specialty: s.spec,
			Licenses: []providers.License{{State: s.state, Number: fmt.Sprint("L", i)}}}
		p.Normalize()
		if e := p.Validate(providers.TestNow); e != nil {
			t.Fatalf("fixture %d: %v", i, e)
		}
		if _, err := store.Create(ctx, providers.Actor{ID: "t"}, p); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(body map[string]any) string {
		var out []string
		for _, it := range body["items"].([]any) {
			out = append(out, it.(map[string]any)["id"].(string))
		}
		return strings.Join(out, ",")
	}
	tests := []struct{ query, want string }{
		{"", "p1,p0,p2,p4,p3"},
		{"?state=ca", "p0,p2,p4"},
		{"?specialty=CARDIOLOGY", "p0,p3"},
		{"?q=lee", "p0,p2"},
		{"?q=1245319599", "p1"},
		{"?q=50%25", ""},
		{"?decision=none", "p1,p0,p2,p4,p3"},
		{"?decision=approved", ""},
	}
	for _, tt := range tests {
		st, body := a.do("GET", "/providers"+tt.query, "")
		if st != 200 || ids(body) != tt.want {
			t.Errorf("%s: %d %q, want %q", tt.query, st, ids(body), tt.want)
		}
	}
	// Walk pages of 2: every provider exactly once, in order.
	var walked []string
	next := ""
	for {
		_, body := a.do("GET", "/providers?limit=2"+next, "")
		walked = append(walked, ids(body))
		c, _ := body["next_cursor"].(string)
		if c == "" {
			break
		}
		next = "&cursor=" + c
	}
	if strings.Join(walked, "|") != "p1,p0|p2,p4|p3" {
		t.Fatalf("pages %v", walked)
	}
	// A cursor shows no name (they end up in URLs, browser history and
	// ingress logs) and cannot be forged: the readable cursors of before,
	// {"l":"lee","i":"p0"} base64url-encoded, were taken as they came.
	_, first := a.do("GET", "/providers?limit=2", "")
	cur, _ := first["next_cursor"].(string)
	raw, _ := base64.RawURLEncoding.DecodeString(cur)
	if cur == "" || bytes.Contains(bytes.ToLower(raw), []byte("bob")) || bytes.Contains(bytes.ToLower(raw), []byte("lee")) || strings.Contains(strings.ToLower(cur), "lee") {
		t.Fatalf("cursor %q (%q) shows a name", cur, raw)
	}
	forged := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	for _, c := range []string{
		forged(providers.ListCursor{LastName: "lee", ID: "p0"}),
		forged(map[string]string{"l": "a", "i": ""}),
		cur[:len(cur)-2] + "AA",
	} {
		if st, body := a.do("GET", "/providers?cursor="+c, ""); st != 400 || body["code"] != "invalid_cursor" {
			t.Errorf("forged cursor %s: %d %v", c, st, body)
		}
	}
	// The last cursor is {"l":"\u0000","i":"x"}: PostgreSQL refuses NUL (was a 500).
	for _, q := range []string{"?state=XX", "?decision=maybe", "?limit=0", "?cursor=zzz", "?cursor=eyJsIjoiXHUwMDAwIiwiaSI6IngifQ"} {
		if st, body := a.do("GET", "/providers"+q, ""); st < 400 || st > 422 || body["code"] == nil {
			t.Errorf("%s: %d %v", q, st, body)
		}
	}
}

// Where the server streams bodies (the /providers/import prefix also covers
// PUT /providers/import), BODY_LIMIT_BYTES is not applied: the handler must
// bound what it reads itself instead of buffering any size.
func TestStreamedBodyIsBounded(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.New(t)
	app := fiber.New(fiber.Config{BodyLimit: 4096, StreamRequestBody: true, ErrorHandler: func(c *fiber.Ctx, err error) error {
		ae, _ := apierr.As(err)
		return c.Status(ae.Status).JSON(ae)
	}})
	(&providers.Handler{Store: providers.NewStore(pool)}).Routes(app)
	big := `{"npi":"1234567893","first_name":"Ann","last_name":"Lee"` + strings.Repeat(" ", 2<<20) + `}`
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/providers", big, 413},
		{"PUT", "/providers/import", big, 413},
		{"POST", "/providers", `{"id":"import","npi":"1234567893","first_name":"Ann","last_name":"Lee"}` + strings.Repeat(" ", 8192), 201},
	} {
		req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := app.Test(req, 10000)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != c.status {
			t.Errorf("%s %s (%d bytes): %d %s, want %d", c.method, c.path, len(c.body), resp.StatusCode, b, c.status)
		}
	}
}
