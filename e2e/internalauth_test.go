package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/pgtest"
	"github.com/provcred/platform/proctest"
)

// TestInternalAuth calls every service directly, as an attacker inside the
// network would, on every route the gateway documents (and the services'
// own health routes): unsigned with a claimed admin identity, with a
// forged signature, a stale one, and one made for another route. Every
// call is refused with 401 unauthenticated_internal before any handler
// runs (nothing is written), the probes and the metrics stay open, and the
// audit actor is only ever the one the gateway authenticated.
func TestInternalAuth(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs every service")
	}
	bin := build(t)
	dbURL := pgtest.NewDatabase(t)
	adminKey, adminEntry := keygen(t, bin, "e2e-admin", "admin")
	credential := start(t, bin, "credential", map[string]string{"DATABASE_URL": dbURL})
	credential.WaitReady(t, 60*time.Second)
	stats := start(t, bin, "stats", map[string]string{"DATABASE_URL": dbURL})
	chat := start(t, bin, "chat", map[string]string{"DATABASE_URL": dbURL})
	stats.WaitReady(t, 30*time.Second)
	chat.WaitReady(t, 30*time.Second)
	gateway := start(t, bin, "gateway", map[string]string{
		"CREDENTIAL_URL": credential.URL, "STATS_URL": stats.URL, "CHAT_URL": chat.URL, "API_KEYS": adminEntry,
		"RATE_LIMIT_REQUESTS_PER_MINUTE": "100000",
	})
	gateway.WaitReady(t, 30*time.Second)
	gw := newClient(t, gateway.URL, 30*time.Second)

	provider := func(id, npi string) map[string]any {
		return map[string]any{"id": id, "npi": npi, "first_name": "Ada", "last_name": "Lovelace",
			"date_of_birth": "1970-01-31", "specialty": "Cardiology", "taxonomy_code": "207RC0000X", "licenses": []any{}}
	}
	// Through the gateway, claiming another actor: the key's id is recorded.
	for _, p := range []map[string]any{provider("provider_auth_001", "1234567893"), provider("provider_auth_002", "1245319599")} {
		req, _ := http.NewRequest("POST", gateway.URL+"/providers", strings.NewReader(mustJSON(t, p)))
		req.Header.Set("Authorization", "Bearer "+adminKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Actor-Id", "ceo")
		req.Header.Set("X-Actor-Role", "admin")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("create %v through the gateway: %d", p["id"], resp.StatusCode)
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	count := func(q string) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	actors := func() []string {
		t.Helper()
		rows, err := conn.Query(ctx, `SELECT DISTINCT actor FROM credential.audit_log ORDER BY actor`)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := actors(); strings.Join(got, ",") != "e2e-admin" {
		t.Fatalf("audit actors through the gateway: %v", got)
	}
	writesBefore := count(`SELECT (SELECT count(*) FROM credential.audit_log) + (SELECT count(*) FROM credential.providers) +
		(SELECT count(*) FROM credential.batches) + (SELECT count(*) FROM credential.webhooks) + (SELECT count(*) FROM credential.credential_runs)`)

	// Every documented route, its path parameters filled in.
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if r := gw.do("GET", "/openapi.json", "", nil); r.status != 200 || json.Unmarshal(r.raw, &doc) != nil {
		t.Fatalf("openapi: %d", r.status)
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	type call struct{ method, target string }
	var calls []call
	open := map[string]bool{"/livez": true, "/readyz": true, "/metrics": true}
	for p, ops := range doc.Paths {
		if open[p] {
			continue // checked below
		}
		for m := range ops {
			switch m {
			case "get", "post", "put", "patch", "delete", "head":
				calls = append(calls, call{strings.ToUpper(m), param.ReplaceAllString(p, "provider_auth_001") + "?limit=5"})
			}
		}
	}
	calls = append(calls, call{"GET", "/health"}, call{"GET", "/health/concurrency"}, call{"GET", "/nowhere"},
		call{"DELETE", "/providers/provider_auth_001"}, call{"PUT", "/providers/provider_auth_001"})
	sort.Slice(calls, func(i, j int) bool { return calls[i].target+calls[i].method < calls[j].target+calls[j].method })
	if len(calls) < 25 {
		t.Fatalf("only %d routes in the document", len(calls))
	}

	genuine := proctest.Keyring()
	stale := proctest.Keyring()
	stale.Now = func() time.Time { return time.Now().Add(-2 * time.Minute) }
	forgedKeys, _ := internalauth.ParseKeys("proctest:" + strings.Repeat("f", 43))
	forged, _ := internalauth.NewKeyring(forgedKeys, 30*time.Second)
	claimed := internalauth.Identity{Actor: "ceo", Role: "admin", RequestID: "rid-attack"}
	attacks := []struct {
		name string
		sign func(req *http.Request, c call)
	}{
		{"unsigned", func(req *http.Request, _ call) {
			req.Header.Set("X-Actor-Id", claimed.Actor)
			req.Header.Set("X-Actor-Role", claimed.Role)
		}},
		{"forged", func(req *http.Request, _ call) { _ = forged.SignRequest(req, claimed) }},
		{"stale", func(req *http.Request, _ call) { _ = stale.SignRequest(req, claimed) }},
		{"another route's", func(req *http.Request, c call) {
			ts, sig, _ := genuine.Sign("GET", "/stats/summary", claimed)
			req.Header.Set("X-Actor-Id", claimed.Actor)
			req.Header.Set("X-Actor-Role", claimed.Role)
			req.Header.Set("X-Request-Id", claimed.RequestID)
			req.Header.Set(internalauth.HeaderTimestamp, ts)
			req.Header.Set(internalauth.HeaderSignature, sig)
		}},
	}
	body := mustJSON(t, provider("provider_auth_003", "1679576722"))
	services := map[string]*proctest.Proc{"credential": credential, "stats": stats, "chat": chat}
	refused := 0
	for name, svc := range services {
		for _, c := range calls {
			for _, a := range attacks {
				req, _ := http.NewRequest(c.method, svc.URL+c.target, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				a.sign(req, c)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s %s %s: %v", name, c.method, c.target, err)
				}
				var out map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if resp.StatusCode != 401 || (c.method != "HEAD" && out["code"] != internalauth.Code) {
					t.Errorf("%s %s %s %s: %d %v", name, a.name, c.method, c.target, resp.StatusCode, out)
					continue
				}
				refused++
			}
		}
	}
	t.Logf("%d direct calls refused", refused)
	if after := count(`SELECT (SELECT count(*) FROM credential.audit_log) + (SELECT count(*) FROM credential.providers) +
		(SELECT count(*) FROM credential.batches) + (SELECT count(*) FROM credential.webhooks) + (SELECT count(*) FROM credential.credential_runs)`); after != writesBefore {
		t.Fatalf("refused calls wrote rows: %d before, %d after", writesBefore, after)
	}
	if r := gw.do("GET", "/providers/provider_auth_001", adminKey, nil); r.status != 200 {
		t.Fatalf("the provider is gone: %d", r.status)
	}

	// The probes and the scrape stay open.
	for name, svc := range services {
		for _, p := range []string{"/livez", "/readyz", "/metrics"} {
			resp, err := http.Get(svc.URL + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s %s: %d", name, p, resp.StatusCode)
			}
		}
	}

	// Signed by a holder of the secret (as the gateway), the call runs and
	// the audit actor is the signed one, whatever header the caller adds.
	req, _ := http.NewRequest("DELETE", credential.URL+"/providers/provider_auth_002", nil)
	req.Header.Set("X-Actor-Id", "ceo")
	resp, err := proctest.SignedClient(internalauth.Identity{Actor: "key_direct", Role: "admin"}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("signed delete: %d", resp.StatusCode)
	}
	if got := actors(); strings.Join(got, ",") != "e2e-admin,key_direct" {
		t.Fatalf("audit actors: %v", got)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStartRequiresInternalKeys: no binary starts without the internal
// signing key, unless the dev setting says so, which it logs at WARN.
func TestStartRequiresInternalKeys(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs every service")
	}
	bin := build(t)
	_, adminEntry := keygen(t, bin, "e2e-admin", "admin")
	dbURL := pgtest.NewDatabase(t)
	gatewayEnv := map[string]string{"API_KEYS": adminEntry, "CREDENTIAL_URL": "http://127.0.0.1:9",
		"STATS_URL": "http://127.0.0.1:9", "CHAT_URL": "http://127.0.0.1:9"}
	for _, name := range []string{"credential", "stats", "chat", "gateway"} {
		env := map[string]string{"DATABASE_URL": dbURL, "INTERNAL_AUTH_INSECURE_DEV": "false"}
		if name == "gateway" {
			env = map[string]string{"INTERNAL_AUTH_INSECURE_DEV": "false"}
			for k, v := range gatewayEnv {
				env[k] = v
			}
		}
		p := start(t, bin, name, env)
		deadline := time.Now().Add(30 * time.Second)
		for p.Running() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if p.Running() || !strings.Contains(p.Output(), "INTERNAL_AUTH_KEYS (or INTERNAL_AUTH_KEYS_FILE) is required") {
			t.Errorf("%s without a key: running=%v\n%s", name, p.Running(), p.Output())
		}
	}
	// The dev setting: starts, says so loudly, and believes identity headers.
	env := map[string]string{"INTERNAL_AUTH_INSECURE_DEV": "true"}
	for k, v := range gatewayEnv {
		env[k] = v
	}
	gw := start(t, bin, "gateway", env)
	chat := start(t, bin, "chat", map[string]string{"DATABASE_URL": dbURL, "INTERNAL_AUTH_INSECURE_DEV": "true"})
	gw.WaitReady(t, 30*time.Second)
	chat.WaitReady(t, 30*time.Second)
	for _, p := range []*proctest.Proc{gw, chat} {
		if !strings.Contains(p.Output(), `"level":"WARN","msg":"INSECURE: INTERNAL_AUTH_INSECURE_DEV is set`) {
			t.Errorf("%s: no WARN line for the dev setting:\n%s", p.Name, p.Output())
		}
	}
	resp, err := http.Get(chat.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("dev mode, unsigned /health: %d", resp.StatusCode)
	}
}
