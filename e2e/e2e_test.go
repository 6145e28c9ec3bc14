package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provcred/platform/apiclient"
	"github.com/provcred/platform/pgtest"
	"github.com/provcred/platform/proctest"
)

// commands are the four services every end-to-end test runs and the data
// generator, built once for all the tests.
var commands = []string{"github.com/provcred/credential/cmd/credential", "github.com/provcred/stats/cmd/stats",
	"github.com/provcred/chat/cmd/chat", "github.com/provcred/gateway/cmd/gateway",
	"github.com/provcred/credential/cmd/credgen"}

// build compiles the commands into one directory.
func build(t *testing.T) string { return proctest.Build(t, commands...) }

// start runs bin/name on a free port with env; it stops when t ends.
func start(t *testing.T, bin, name string, env map[string]string) *proctest.Proc {
	t.Helper()
	withLog := map[string]string{"LOG_LEVEL": "info"}
	for k, v := range env {
		withLog[k] = v
	}
	return proctest.Start(t, filepath.Join(bin, name), name, withLog)
}

// keygen runs `gateway keygen` and returns the key and its API_KEYS entry.
func keygen(t *testing.T, bin, id, role string) (string, string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(bin, "gateway"), "keygen", "--id", id, "--role", role).Output()
	if err != nil {
		t.Fatalf("keygen: %v", err)
	}
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		vals[k] = v
	}
	if !strings.HasPrefix(vals["API_KEY"], "pc_") || !strings.HasPrefix(vals["API_KEYS_ENTRY"], id+":"+role+":") {
		t.Fatalf("keygen output: %q", out)
	}
	return vals["API_KEY"], vals["API_KEYS_ENTRY"]
}

type client struct {
	t    *testing.T
	base string
	http *http.Client
}

type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (c *client) do(method, path, key string, body any) reply {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs every service")
	}
	bin := build(t)
	dbURL := pgtest.NewDatabase(t)

	adminKey, adminEntry := keygen(t, bin, "e2e-admin", "admin")
	operatorKey, operatorEntry := keygen(t, bin, "e2e-operator", "operator")
	readerKey, readerEntry := keygen(t, bin, "e2e-reader", "reader")
	burstKey, burstEntry := keygen(t, bin, "e2e-burst", "reader")

	db := map[string]string{"DATABASE_URL": dbURL}
	// The credential service owns the schema (it migrates at start), so it
	// comes first; stats reads that schema.
	// Webhooks to this machine's test receiver are allowed here.
	credential := start(t, bin, "credential", map[string]string{"DATABASE_URL": dbURL, "WEBHOOK_ALLOW_PRIVATE": "true"})
	credential.WaitReady(t, 60*time.Second)
	stats := start(t, bin, "stats", db)
	chat := start(t, bin, "chat", db)
	stats.WaitReady(t, 30*time.Second)
	chat.WaitReady(t, 30*time.Second)
	gateway := start(t, bin, "gateway", map[string]string{
		"CREDENTIAL_URL": credential.URL, "STATS_URL": stats.URL, "CHAT_URL": chat.URL,
		"API_KEYS":                       strings.Join([]string{adminEntry, operatorEntry, readerEntry, burstEntry}, ","),
		"RATE_LIMIT_REQUESTS_PER_MINUTE": "200",
	})
	gateway.WaitReady(t, 30*time.Second)
	c := newClient(t, gateway.URL, 30*time.Second)

	t.Run("health, 10 concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan string, 10)
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.http.Get(c.base + "/health")
				if err != nil {
					errs <- err.Error()
					return
				}
				defer resp.Body.Close()
				var b map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&b)
				if resp.StatusCode != 200 || b["status"] != "healthy" {
					errs <- fmt.Sprintf("%d %v", resp.StatusCode, b)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})

	t.Run("aggregated concurrency report and docs", func(t *testing.T) {
		if r := c.do("GET", "/health/concurrency", "", nil); r.status != 200 || r.body["status"] != "healthy" || r.body["config"] != nil {
			t.Fatalf("open report: %d %s", r.status, r.raw)
		}
		r := c.do("GET", "/health/concurrency", operatorKey, nil)
		conc, _ := r.body["concurrency"].(map[string]any)
		conns, _ := conc["connections"].(map[string]any)
		ups, _ := r.body["upstreams"].(map[string]any)
		if r.status != 200 || r.body["status"] != "healthy" || conns["total"] != float64(1000) || len(ups) != 3 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		for name, u := range ups {
			m, _ := u.(map[string]any)
			if m["status"] != "healthy" || m["concurrency"] == nil {
				t.Errorf("%s: %v", name, m)
			}
		}
		if r := c.do("GET", "/openapi.json", "", nil); r.status != 200 || r.body["openapi"] != "3.1.0" {
			t.Fatalf("openapi: %d", r.status)
		}
		if r := c.do("GET", "/docs", "", nil); r.status != 200 || !bytes.Contains(r.raw, []byte("openapi.json")) {
			t.Fatalf("docs: %d", r.status)
		}
	})

	provider := map[string]any{
		"id": "provider_e2e_001", "npi": "1234567893", "first_name": "Ada", "middle_name": "M", "last_name": "Lovelace",
		"suffix": "", "date_of_birth": "1970-01-31", "specialty": "Cardiology", "taxonomy_code": "207RC0000X",
		"licenses": []map[string]any{{"state": "CA", "number": "A123", "type": "MD", "expires_on": "2027-01-01"}},
	}
	t.Run("provider create, list, get", func(t *testing.T) {
		r := c.do("POST", "/providers", adminKey, provider)
		if r.status != 201 || r.body["id"] != "provider_e2e_001" || r.body["npi"] != "1234567893" {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		r = c.do("GET", "/providers", readerKey, nil)
		items, _ := r.body["items"].([]any)
		found := false
		for _, it := range items {
			if m, _ := it.(map[string]any); m["id"] == "provider_e2e_001" {
				found = true
			}
		}
		if r.status != 200 || !found {
			t.Fatalf("list: %d %s", r.status, r.raw)
		}
		r = c.do("GET", "/providers/provider_e2e_001", readerKey, nil)
		if r.status != 200 || r.body["last_name"] != "Lovelace" {
			t.Fatalf("get: %d %s", r.status, r.raw)
		}
		if r := c.do("GET", "/providers/nobody", readerKey, nil); r.status != 404 || r.body["code"] != "not_found" {
			t.Fatalf("missing: %d %s", r.status, r.raw)
		}
	})

	t.Run("audit log names the key's id", func(t *testing.T) {
		// X-Actor-Id set by the gateway reaches the audit trail.
		r := c.do("GET", "/logs/provider_e2e_001", readerKey, nil)
		items, _ := r.body["items"].([]any)
		if r.status != 200 || len(items) == 0 || items[len(items)-1].(map[string]any)["actor"] != "e2e-admin" {
			t.Fatalf("audit: %d %s", r.status, r.raw)
		}
	})

	t.Run("bad provider names the field", func(t *testing.T) {
		bad := map[string]any{}
		for k, v := range provider {
			bad[k] = v
		}
		bad["id"], bad["npi"] = "provider_e2e_bad", "1234567890"
		r := c.do("POST", "/providers", adminKey, bad)
		if r.status != 422 || r.body["code"] != "validation_failed" || r.body["field"] != "npi" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		if r := c.do("GET", "/providers/provider_e2e_bad", readerKey, nil); r.status != 404 {
			t.Fatalf("the bad provider was stored: %d", r.status)
		}
	})

	t.Run("no key is 401", func(t *testing.T) {
		r := c.do("GET", "/providers", "", nil)
		if r.status != 401 || r.body["code"] != "unauthorized" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		if r := c.do("GET", "/providers", "pc_wrong", nil); r.status != 401 {
			t.Fatalf("wrong key: %d", r.status)
		}
	})

	t.Run("reader writing is 403", func(t *testing.T) {
		p := map[string]any{}
		for k, v := range provider {
			p[k] = v
		}
		p["id"] = "provider_e2e_002"
		for _, key := range []string{readerKey, operatorKey} {
			if r := c.do("POST", "/providers", key, p); r.status != 403 || r.body["code"] != "forbidden" {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		}
		if r := c.do("DELETE", "/providers/provider_e2e_001", readerKey, nil); r.status != 403 {
			t.Fatalf("reader delete: %d", r.status)
		}
	})

	t.Run("chat without an LLM passes the service's 503 through", func(t *testing.T) {
		r := c.do("POST", "/chat", operatorKey, map[string]any{"message": "How many providers?"})
		if r.status != 503 || r.body["code"] != "llm_not_configured" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})

	// Every operation of the document once, its error paths too, so the
	// contract check (contract_test.go) sees each answer's shape.
	t.Run("every operation answers as documented", func(t *testing.T) {
		expect := func(r reply, status int, what string) reply {
			t.Helper()
			if r.status != status {
				t.Errorf("%s: %d %s", what, r.status, r.raw)
			}
			return r
		}
		for _, p := range []string{"/livez", "/readyz", "/metrics", "/docs", "/redoc"} {
			expect(c.do("GET", p, "", nil), 200, p)
		}
		p := map[string]any{}
		for k, v := range provider {
			p[k] = v
		}
		p["specialty"] = "Cardiovascular Disease"
		expect(c.do("PUT", "/providers/provider_e2e_001", adminKey, p), 200, "replace")
		expect(c.do("GET", "/providers?limit=0", readerKey, nil), 422, "limit 0")
		expect(c.do("GET", "/providers?cursor=bogus", readerKey, nil), 400, "bad cursor")
		p["ssn"] = "123-45-6789"
		expect(c.do("POST", "/providers", adminKey, p), 422, "ssn")
		delete(p, "ssn")
		p["id"] = "provider_e2e_001"
		expect(c.do("POST", "/providers", adminKey, p), 409, "duplicate")
		expect(c.do("DELETE", "/providers/nobody", adminKey, nil), 404, "delete missing")

		roster := "id,npi,first_name,last_name,date_of_birth,license_state,license_number,license_type,license_expires_on\n" +
			"provider_e2e_003,1245319599,Grace,Hopper,1906-12-09,NY,B456,MD,2028-06-30\n"
		expect(c.raw("POST", "/providers/import", adminKey, "text/csv", roster), 200, "roster")
		expect(c.raw("POST", "/providers/import", adminKey, "text/csv", "npi,first_name,last_name\n1234567890,A,B\n"), 422, "bad roster")
		expect(c.raw("POST", "/providers/import", adminKey, "application/xml", "<roster/>"), 415, "roster as XML")

		leie := `"LASTNAME","FIRSTNAME","MIDNAME","BUSNAME","GENERAL","SPECIALTY","UPIN","NPI","DOB","ADDRESS","CITY","STATE","ZIP","EXCLTYPE","EXCLDATE","REINDATE","WAIVERDATE","WVRSTATE"` + "\n" +
			`"HOPPER","GRACE","","","IND","CARDIOLOGY","","1245319599","19061209","1 MAIN","AUSTIN","TX","78701","1128a1","20200101","00000000","00000000",""` + "\n" +
			// A namesake of provider_e2e_001 without NPI or DOB: a possible match for the review queue.
			`"LOVELACE","ADA","","","IND","NURSING","","0000000000","","2 MAIN","AUSTIN","TX","78701","1128b4","20210101","00000000","00000000",""` + "\n"
		imp := expect(c.raw("POST", "/admin/imports/leie?file_date=2026-11-01", adminKey, "text/csv", leie), 200, "LEIE import")
		expect(c.raw("POST", "/admin/imports/nope", adminKey, "text/csv", leie), 400, "unknown source")
		expect(c.do("GET", "/admin/imports?limit=5", adminKey, nil), 200, "imports")
		expect(c.do("GET", fmt.Sprintf("/admin/imports/%v", imp.body["id"]), adminKey, nil), 200, "one import")
		expect(c.do("GET", "/admin/imports/999999", adminKey, nil), 404, "missing import")
		expect(c.do("GET", "/admin/imports", operatorKey, nil), 403, "operator reading imports")

		run := expect(c.do("POST", "/credential/provider_e2e_003", operatorKey, nil), 200, "credential")
		expect(c.do("POST", "/credential/nobody", operatorKey, nil), 404, "credential missing")
		expect(c.do("GET", "/results?limit=5", readerKey, nil), 200, "results")
		expect(c.do("GET", "/results/provider_e2e_003", readerKey, nil), 200, "provider results")
		expect(c.do("GET", "/results/provider_e2e_001", readerKey, nil), 200, "never credentialed")
		expect(c.do("GET", fmt.Sprintf("/results/run/%v", run.body["run_id"]), readerKey, nil), 200, "one run")
		expect(c.do("GET", "/results/run/00000000-0000-0000-0000-000000000000", readerKey, nil), 404, "missing run")

		// The review queue: provider_e2e_001's namesake row is a possible match.
		expect(c.do("POST", "/credential/provider_e2e_001", operatorKey, nil), 200, "credential a possible match")
		q := expect(c.do("GET", "/reviews?provider_id=provider_e2e_001", readerKey, nil), 200, "reviews")
		items, _ := q.body["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("review items: %v", q.body)
		}
		rid := items[0].(map[string]any)["id"].(string)
		expect(c.do("GET", "/reviews/"+rid, readerKey, nil), 200, "one review")
		expect(c.do("GET", "/reviews?status=pending", readerKey, nil), 422, "bad review status")
		resolve := map[string]any{"resolution": "cleared", "note": "different person: other DOB on the license file"}
		expect(c.do("POST", "/reviews/"+rid+"/resolve", readerKey, resolve), 403, "reader resolving a review")
		expect(c.do("POST", "/reviews/"+rid+"/resolve", operatorKey, map[string]any{"resolution": "maybe", "note": "x"}), 422, "bad resolution")
		expect(c.do("POST", "/reviews/"+rid+"/resolve", operatorKey, resolve), 200, "resolve a review")
		expect(c.do("POST", "/reviews/"+rid+"/resolve", operatorKey, resolve), 409, "second resolve")

		b := expect(c.do("POST", "/batch-credential?wait=30s", operatorKey, map[string]any{"provider_ids": []string{"provider_e2e_003", "nobody"}}), 200, "batch")
		expect(c.do("POST", "/batch-credential", operatorKey, map[string]any{"provider_ids": []string{}}), 422, "empty batch")
		expect(c.do("GET", fmt.Sprintf("/results/batch/%v?limit=5", b.body["batch_id"]), readerKey, nil), 200, "batch progress")
		expect(c.do("GET", "/batches?limit=5", readerKey, nil), 200, "batches")
		expect(c.do("DELETE", fmt.Sprintf("/batch/%v", b.body["batch_id"]), operatorKey, nil), 409, "cancel a finished batch")
		expect(c.do("DELETE", "/batch/nobody", operatorKey, nil), 404, "cancel a missing batch")

		// credctl's typed client, checked by the same contract.
		api := &apiclient.Client{BaseURL: c.base, APIKey: operatorKey, HTTP: c.http}
		ctx := context.Background()
		sub, _, err := api.SubmitBatch(ctx, "application/json", strings.NewReader(`{"provider_ids":["provider_e2e_001"]}`), "e2e-batch-1")
		if err != nil || sub.BatchID == "" {
			t.Fatalf("apiclient submit: %v", err)
		}
		again, _, err := api.SubmitBatch(ctx, "application/json", strings.NewReader(`{"provider_ids":["provider_e2e_001"]}`), "e2e-batch-1")
		if err != nil || !again.Replayed || again.BatchID != sub.BatchID {
			t.Errorf("apiclient replay: %v %+v", err, again)
		}
		if p, _, err := api.BatchProgress(ctx, sub.BatchID, 1); err != nil || p.Total != 1 {
			t.Errorf("apiclient progress: %v %+v", err, p)
		}
		// Canceled while it runs, or refused once it has finished.
		var ae *apiclient.Error
		if _, _, err := api.CancelBatch(ctx, sub.BatchID); err != nil && !(errors.As(err, &ae) && ae.Status == 409 && ae.Code == "conflict") {
			t.Errorf("apiclient cancel: %v", err)
		}
		if _, _, err := api.BatchProgress(ctx, "nobody", 0); !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "not_found" {
			t.Errorf("apiclient progress of a missing batch: %v", err)
		}

		expect(c.do("GET", "/logs?limit=5", readerKey, nil), 200, "audit log")
		expect(c.do("GET", "/logs/provider_e2e_003?limit=5", readerKey, nil), 200, "provider audit log")

		for _, q := range []string{"/stats/summary", "/stats/decisions?interval=week", "/stats/checks", "/stats/turnaround",
			"/stats/expiring?kind=license&within=365", "/stats/expiring?kind=verification", "/stats/batches", "/stats/monitoring",
			"/stats/summary?format=csv", "/stats/decisions?format=csv"} {
			expect(c.do("GET", q, readerKey, nil), 200, q)
		}
		expect(c.do("GET", "/stats/decisions?interval=hour", readerKey, nil), 400, "bad interval")

		// Events and webhooks: a receiver on this machine, one webhook through
		// its life (test delivery, replay, deletion).
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
		defer receiver.Close()
		expect(c.do("GET", "/events?limit=5", readerKey, nil), 200, "events")
		expect(c.do("GET", "/events?type=nope", readerKey, nil), 400, "unknown event type")
		wh := expect(c.do("POST", "/webhooks", adminKey, map[string]any{"url": receiver.URL + "/hook", "event_types": []string{"batch.completed.v1"},
			"description": "e2e"}), 201, "create webhook")
		expect(c.do("POST", "/webhooks", adminKey, map[string]any{"url": "ftp://example.com/"}), 422, "bad webhook url")
		whID := fmt.Sprint(wh.body["id"])
		expect(c.do("GET", "/webhooks?limit=5", adminKey, nil), 200, "webhooks")
		expect(c.do("GET", "/webhooks/"+whID, adminKey, nil), 200, "one webhook")
		test := expect(c.do("POST", "/webhooks/"+whID+"/test", adminKey, nil), 202, "test delivery")
		expect(c.do("GET", "/webhooks/"+whID+"/deliveries?limit=5", adminKey, nil), 200, "deliveries")
		expect(c.do("GET", "/webhooks/"+whID+"/deliveries?status=nope", adminKey, nil), 400, "bad delivery status")
		expect(c.do("POST", fmt.Sprintf("/webhooks/%s/deliveries/%v/replay", whID, test.body["id"]), adminKey, nil), 202, "replay")
		expect(c.do("POST", "/webhooks/"+whID+"/enable", adminKey, nil), 200, "enable")
		expect(c.do("DELETE", "/webhooks/"+whID, adminKey, nil), 204, "delete webhook")
		expect(c.do("GET", "/webhooks/"+whID, adminKey, nil), 404, "deleted webhook")

		tmp := map[string]any{"id": "provider_e2e_tmp", "npi": "1003000126", "first_name": "Tmp", "last_name": "Provider"}
		expect(c.do("POST", "/providers", adminKey, tmp), 201, "create tmp")
		expect(c.do("DELETE", "/providers/provider_e2e_tmp", adminKey, nil), 204, "delete tmp")
	})

	t.Run("201st request in a minute is 429", func(t *testing.T) {
		// GCRA refills one request every 300 ms at 200/minute, so the
		// allowance is 200 plus what refilled while we sent them.
		start := time.Now()
		ok, limited := 0, reply{}
		for i := 0; i < 400; i++ {
			r := c.do("GET", "/providers?limit=1", burstKey, nil)
			if r.status == 429 {
				limited = r
				break
			}
			if r.status != 200 {
				t.Fatalf("request %d: %d %s", i+1, r.status, r.raw)
			}
			ok++
		}
		refilled := int(time.Since(start) / (300 * time.Millisecond))
		if limited.status != 429 {
			t.Fatalf("never limited after %d requests", ok)
		}
		if ok < 200 || ok > 200+refilled+1 {
			t.Fatalf("limited after %d requests (200 + %d refilled expected)", ok, refilled)
		}
		if string(limited.raw) != `{"code":"rate_limited","detail":"Too many requests. Please try again later."}` {
			t.Fatalf("429 body %s", limited.raw)
		}
		if limited.header.Get("Retry-After") == "" || limited.header.Get("RateLimit-Policy") == "" || limited.header.Get("RateLimit") == "" {
			t.Fatalf("429 headers %v", limited.header)
		}
		// Other clients are unaffected.
		if r := c.do("GET", "/providers?limit=1", readerKey, nil); r.status != 200 {
			t.Fatalf("another key: %d", r.status)
		}
	})

	t.Run("stats down is a fast 503", func(t *testing.T) {
		if r := c.do("GET", "/stats/summary", readerKey, nil); r.status != 200 || r.body["providers_total"] == nil {
			t.Fatalf("stats up: %d %s", r.status, r.raw)
		}
		stats.Stop(15 * time.Second)
		t0 := time.Now()
		r := c.do("GET", "/stats/summary", readerKey, nil)
		if el := time.Since(t0); el > time.Second {
			t.Fatalf("took %s", el)
		}
		if r.status != 503 || r.body["code"] != "upstream_unavailable" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		// The gateway stays up and reports the hole (health probes are
		// shared for a second, so allow one refresh).
		deadline := time.Now().Add(3 * time.Second)
		for {
			r = c.do("GET", "/health", "", nil)
			ups, _ := r.body["upstreams"].(map[string]any)
			st, _ := ups["stats"].(map[string]any)
			if r.status == 200 && r.body["status"] == "degraded" && st["status"] == "unreachable" {
				break
			}
			if r.status != 200 || time.Now().After(deadline) {
				t.Fatalf("health: %d %s", r.status, r.raw)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}
