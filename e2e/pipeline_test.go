package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provcred/platform/apiclient"
	"github.com/provcred/platform/pgtest"
	"github.com/provcred/platform/proctest"
)

// TestCredentialingPipeline drives the whole verification pipeline through
// the gateway, as an integrator would: the generator's edge-case data set
// (credgen) is imported (LEIE, SAM, NPPES, licenses via POST /admin/imports,
// the roster via POST /providers/import), every provider is credentialed
// with POST /credential/{id}, and each decision must equal expected.csv.
// Then an LEIE re-import triggers continuous monitoring: every provider
// excluded by NPI is flagged and audited once.
func TestCredentialingPipeline(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the services")
	}
	bin := build(t)
	data := t.TempDir()
	if out, err := exec.Command(filepath.Join(bin, "credgen"), "-out", data, "-providers", "150", "-seed", "20261127").CombinedOutput(); err != nil {
		t.Fatalf("credgen: %v\n%s", err, out)
	}

	adminKey, adminEntry := keygen(t, bin, "pipeline-admin", "admin")
	operatorKey, operatorEntry := keygen(t, bin, "pipeline-operator", "operator")
	credential := start(t, bin, "credential", map[string]string{"DATABASE_URL": pgtest.NewDatabase(t)})
	credential.WaitReady(t, 60*time.Second)
	gateway := start(t, bin, "gateway", map[string]string{
		"CREDENTIAL_URL": credential.URL, "STATS_URL": "http://" + proctest.FreeAddr(t), "CHAT_URL": "http://" + proctest.FreeAddr(t),
		"API_KEYS": adminEntry + "," + operatorEntry,
		// This test is about decisions, not rate limiting: ~170 calls per key.
		"RATE_LIMIT_REQUESTS_PER_MINUTE": "100000",
		// Every provider is credentialed once and every source imported:
		// past the tighter credential and import policies' defaults.
		"RATE_LIMIT_CREDENTIAL": "100000/1m", "RATE_LIMIT_IMPORT": "100000/1m",
	})
	gateway.WaitReady(t, 30*time.Second)
	c := newClient(t, gateway.URL, 2*time.Minute)

	upload := func(path, file string) reply {
		t.Helper()
		f, err := os.Open(filepath.Join(data, file))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", c.base+path, f)
		// A known length, as credctl sends it.
		req.ContentLength = st.Size()
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Authorization", "Bearer "+adminKey)
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
		_ = json.Unmarshal(raw, &r.body)
		if r.status != 200 {
			t.Fatalf("POST %s: %d %s", path, r.status, raw)
		}
		return r
	}
	sources := []struct{ source, file string }{
		{"nppes", "npidata_pfile.csv"}, {"leie", "UPDATED.csv"}, {"sam", "sam_exclusions.csv"}, {"licenses", "licenses.csv"},
	}
	// The sources go in as credctl sends them: through the typed client
	// (platform/apiclient), which the contract check holds to the document.
	api := &apiclient.Client{BaseURL: c.base, APIKey: adminKey, HTTP: c.http}
	for _, s := range sources {
		f, err := os.Open(filepath.Join(data, s.file))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		rec, raw, err := api.ImportSource(context.Background(), s.source, f, st.Size(), s.file, "")
		f.Close()
		if err != nil || rec.Rows < 1 || rec.Status != "active" {
			t.Fatalf("import %s: %v %s", s.source, err, raw)
		}
	}
	upload("/providers/import", "providers.csv")

	f, err := os.Open(filepath.Join(data, "expected.csv"))
	if err != nil {
		t.Fatal(err)
	}
	expected, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(expected) < 2 || strings.Join(expected[0][:4], ",") != "provider_id,npi,case,expected_decision" {
		t.Fatalf("expected.csv: %v %v", err, expected[:1])
	}
	cases := map[string]int{}
	byCase := map[string][]string{}
	wantDecisions := map[string]int{}
	for _, row := range expected[1:] {
		id, kase, want := row[0], row[2], row[3]
		cases[kase]++
		byCase[kase] = append(byCase[kase], id)
		wantDecisions[want]++
		r := c.do("POST", "/credential/"+id, operatorKey, nil)
		if r.status != 200 {
			t.Fatalf("POST /credential/%s: %d %s", id, r.status, r.raw)
		}
		if r.body["decision"] != want {
			t.Errorf("%s (%s): decision %v, want %s; reasons %s", id, kase, r.body["decision"], want, reasons(r.body))
		}
		if checks, _ := r.body["checks"].([]any); len(checks) != 5 {
			t.Errorf("%s: %d checks", id, len(checks))
		}
	}
	for _, kase := range []string{"clean", "excluded_leie_npi", "excluded_sam_npi", "leie_name_dob_only", "leie_reinstated",
		"leie_waiver", "sam_terminated", "license_expired", "license_revoked", "license_other_state", "npi_deactivated",
		"name_case", "name_punctuation", "name_suffix", "name_middle_initial"} {
		if cases[kase] == 0 {
			t.Errorf("the data set has no %s provider", kase)
		}
	}
	t.Logf("cases %v; decisions %v", cases, wantDecisions)

	// The stored results agree: one latest run per provider, by decision.
	for decision, n := range wantDecisions {
		got := 0
		for cursor := ""; ; {
			r := c.do("GET", "/results?limit=500&decision="+decision+cursor, operatorKey, nil)
			items, _ := r.body["items"].([]any)
			got += len(items)
			next, _ := r.body["next_cursor"].(string)
			if r.status != 200 || next == "" {
				break
			}
			cursor = "&cursor=" + next
		}
		if got != n {
			t.Errorf("GET /results?decision=%s: %d runs, want %d", decision, got, n)
		}
	}

	// Continuous monitoring: the LEIE file imported again now that the roster
	// exists flags every provider excluded by NPI (waivers included: they need
	// a human), once, with an audit entry naming the import.
	// The re-screen is a job the import queued: wait for its result on the import record.
	rescreened := func(imp reply) map[string]any {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			r := c.do("GET", fmt.Sprintf("/admin/imports/%v", imp.body["id"]), adminKey, nil)
			rs, _ := r.body["rescreen"].(map[string]any)
			if rs != nil && (rs["status"] == "done" || rs["status"] == "failed") {
				return rs
			}
			if time.Now().After(deadline) {
				t.Fatalf("re-screen of import %v not done: %s", imp.body["id"], r.raw)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if rs := rescreened(upload("/admin/imports/leie?file_name=UPDATED.csv", "UPDATED.csv")); rs["status"] != "done" {
		t.Fatalf("re-screen: %v", rs)
	}
	// Again: nobody twice, no review item twice.
	if rs := rescreened(upload("/admin/imports/leie?file_name=UPDATED.csv", "UPDATED.csv")); rs["flagged"] != float64(0) || rs["reviews_opened"] != float64(0) {
		t.Errorf("the same file again: %v", rs)
	}
	wantFlagged := append(append([]string{}, byCase["excluded_leie_npi"]...), byCase["leie_waiver"]...)
	r := c.do("GET", "/logs?event=provider.exclusion_flagged&limit=500", operatorKey, nil)
	items, _ := r.body["items"].([]any)
	if r.status != 200 || len(items) != len(wantFlagged) {
		t.Fatalf("exclusion_flagged entries: %d %d, want %d", r.status, len(items), len(wantFlagged))
	}
	for _, id := range wantFlagged {
		p := c.do("GET", "/providers/"+id, operatorKey, nil)
		if p.status != 200 || p.body["exclusion_flagged_at"] == nil {
			t.Errorf("%s not flagged: %d %s", id, p.status, p.raw)
		}
	}
	for _, id := range append(byCase["leie_reinstated"], byCase["leie_name_dob_only"]...) {
		if p := c.do("GET", "/providers/"+id, operatorKey, nil); p.body["exclusion_flagged_at"] != nil {
			t.Errorf("%s flagged though not excluded by NPI", id)
		}
	}
	// The demo data's possible matches (an LEIE row with the name and date of
	// birth, no NPI) are in the review queue, opened by the re-screen or a run.
	for _, id := range byCase["leie_name_dob_only"] {
		r := c.do("GET", "/reviews?check=leie&provider_id="+id, operatorKey, nil)
		items, _ := r.body["items"].([]any)
		if r.status != 200 || len(items) != 1 {
			t.Errorf("%s: %d review items (%d): %s", id, len(items), r.status, r.raw)
		}
	}
}

func reasons(body map[string]any) string {
	b, _ := json.Marshal(body["reasons"])
	return fmt.Sprintf("%s", b)
}
