package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provcred/platform/pgtest"
	"github.com/provcred/platform/proctest"
)

// promNamespace is the namespace label the scrape config gives every
// target, and that the KEDA queries are rendered for.
const promNamespace = "e2e"

type shippedQuery struct {
	Source  string   `json:"source"`
	Kind    string   `json:"kind"`
	Expr    string   `json:"expr"`
	Metrics []string `json:"metrics"`
}

// shippedQueries runs deploy/cmd/monitoringqueries: every expression of the
// rules, dashboards and KEDA triggers, with the names each reads.
func shippedQueries(t *testing.T, root string) ([]shippedQuery, []string) {
	t.Helper()
	cmd := exec.Command("go", "run", "./cmd/monitoringqueries", "-namespace", promNamespace)
	cmd.Dir = filepath.Join(root, "deploy")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("monitoringqueries: %v\n%s", err, stderr.String())
	}
	var v struct {
		Queries       []shippedQuery `json:"queries"`
		ExpectedLater []string       `json:"expected_later"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return v.Queries, v.ExpectedLater
}

// prometheusBinary finds Debian's prometheus, installing it through the
// project's script once; it skips only when it cannot be had.
func prometheusBinary(t *testing.T, root string) string {
	t.Helper()
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	out, err := exec.Command("bash", filepath.Join(root, "scripts", "ensure-prometheus.sh")).CombinedOutput()
	if p, lerr := exec.LookPath("prometheus"); lerr == nil {
		return p
	}
	t.Skipf("the prometheus binary cannot be installed here (scripts/ensure-prometheus.sh: %v %s): live Prometheus test not run", err, out)
	return ""
}

// promRules copies the chart's rule files with `for:` of the alerts in
// fast shortened and every group's own `interval:` set to the second
// Prometheus evaluates at here (the SLO recording group's 30s left the
// test waiting up to half a minute for its series), and adds the
// max-replica series the chart records from its values (1 each).
var groupInterval = regexp.MustCompile(`(?m)^(\s+interval: )\S+$`)

func promRules(t *testing.T, root, dir string, fast map[string]string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "deploy", "helm", "credentialing", "files", "rules", "*.rules.yml"))
	if len(files) == 0 {
		t.Fatal("no rule files")
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := groupInterval.ReplaceAllString(string(b), "${1}1s")
		for alert, dur := range fast {
			re := regexp.MustCompile(`(?s)(- alert: ` + alert + `\n.*?\n\s+for: )\S+`)
			if strings.Contains(s, "- alert: "+alert+"\n") {
				if !re.MatchString(s) {
					t.Fatalf("%s: no for: to shorten", alert)
				}
				s = re.ReplaceAllString(s, "${1}"+dur)
			}
		}
		p := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	limits := "groups:\n  - name: credentialing-autoscaling-limits\n    rules:\n"
	for _, s := range []string{"gateway", "credential", "chat"} {
		limits += fmt.Sprintf("      - record: credentialing:autoscaling_max_replicas\n        expr: 'label_replace(label_replace(vector(1), \"service\", \"%s\", \"\", \"\"), \"namespace\", \"%s\", \"\", \"\")'\n", s, promNamespace)
	}
	p := filepath.Join(dir, "limits.rules.yml")
	if err := os.WriteFile(p, []byte(limits), 0o644); err != nil {
		t.Fatal(err)
	}
	return append(out, p)
}

type promClient struct {
	t    *testing.T
	base string
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) float() float64 {
	str, _ := s.Value[1].(string)
	f, _ := strconv.ParseFloat(str, 64)
	return f
}

func (p *promClient) get(path string, q url.Values, into any) error {
	resp, err := http.Get(p.base + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(b, &env); err != nil || env.Status != "success" {
		return fmt.Errorf("%s %s: %d %s %s", path, q.Encode(), resp.StatusCode, env.Error, b)
	}
	return json.Unmarshal(env.Data, into)
}

func (p *promClient) query(expr string) ([]promSample, error) {
	var d struct {
		ResultType string       `json:"resultType"`
		Result     []promSample `json:"result"`
	}
	err := p.get("/api/v1/query", url.Values{"query": {expr}}, &d)
	return d.Result, err
}

type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (p *promClient) alerts() []promAlert {
	var d struct {
		Alerts []promAlert `json:"alerts"`
	}
	if err := p.get("/api/v1/alerts", url.Values{}, &d); err != nil {
		p.t.Fatal(err)
	}
	return d.Alerts
}

// eventually polls f every 200ms until it returns "" or timeout passes.
func eventually(t *testing.T, timeout time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		if last = f(); last == "" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("after %s: %s", timeout, last)
}

// slowLLM is an OpenAI-compatible completions endpoint that holds each
// answer until release is closed (or 20s pass), so a chat call stays in
// flight while the test reads the autoscaling queries.
type slowLLM struct {
	mu      sync.Mutex
	release chan struct{}
}

func (l *slowLLM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.NotFound(w, r)
		return
	}
	var req struct {
		Stream bool `json:"stream"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	l.mu.Lock()
	ch := l.release
	l.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
		}
	}
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"cmpl-e2e","object":"chat.completion","created":1,"model":"e2e-model","choices":[{"index":0,"message":{"role":"assistant","content":"Ada Lovelace is approved."},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`)
		return
	}
	// The streamed wire format: chunks, a usage chunk, then [DONE].
	w.Header().Set("Content-Type", "text/event-stream")
	for _, c := range []string{
		`{"id":"cmpl-e2e","object":"chat.completion.chunk","created":1,"model":"e2e-model","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
		`{"id":"cmpl-e2e","object":"chat.completion.chunk","created":1,"model":"e2e-model","choices":[{"index":0,"delta":{"content":"Ada Lovelace is approved."},"finish_reason":null}]}`,
		`{"id":"cmpl-e2e","object":"chat.completion.chunk","created":1,"model":"e2e-model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		`{"id":"cmpl-e2e","object":"chat.completion.chunk","created":1,"model":"e2e-model","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`,
	} {
		_, _ = io.WriteString(w, "data: "+c+"\n\n")
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
}

// TestPrometheusLive runs a real Prometheus against the running services
// with the chart's rule files: every metric a dashboard, alert or
// autoscaling query names returns data, the KEDA queries give the numbers
// the scaler acts on, and stopping the credential service takes the
// gateway's breaker alert through pending to firing.
func TestPrometheusLive(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every service and Prometheus")
	}
	root := proctest.WorkspaceRoot(t)
	promBin := prometheusBinary(t, root)
	queries, later := shippedQueries(t, root)

	llm := &slowLLM{}
	llmSrv := newLocalServer(t, llm)

	bin := build(t)
	dbURL := pgtest.NewDatabase(t)
	adminKey, adminEntry := keygen(t, bin, "prom-admin", "admin")
	db := map[string]string{"DATABASE_URL": dbURL}
	credential := start(t, bin, "credential", db)
	credential.WaitReady(t, 60*time.Second)
	stats := start(t, bin, "stats", db)
	chat := start(t, bin, "chat", map[string]string{"DATABASE_URL": dbURL, "LLM_BASE_URL": llmSrv + "/v1", "LLM_TIMEOUT": "30s"})
	stats.WaitReady(t, 30*time.Second)
	chat.WaitReady(t, 30*time.Second)
	gateway := start(t, bin, "gateway", map[string]string{
		"CREDENTIAL_URL": credential.URL, "STATS_URL": stats.URL, "CHAT_URL": chat.URL, "API_KEYS": adminEntry,
		// Open after 3 failures and stay open: the alert is about an open breaker.
		"BREAKER_FAILURES": "3", "BREAKER_OPEN_TIMEOUT": "10m",
	})
	gateway.WaitReady(t, 30*time.Second)
	procs := map[string]*proctest.Proc{"gateway": gateway, "credential": credential, "chat": chat, "stats": stats}

	// Prometheus: every service scraped each second, rules evaluated each
	// second, the breaker alert's for: shortened from 5m to 3s.
	dir := t.TempDir()
	rules := promRules(t, root, dir, map[string]string{"CircuitBreakerOpen": "3s", "ReplicasAtMaximum": "3s"})
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\nrule_files:\n")
	for _, r := range rules {
		fmt.Fprintf(&cfg, "  - %q\n", r)
	}
	cfg.WriteString("scrape_configs:\n")
	for name, p := range procs {
		fmt.Fprintf(&cfg, "  - job_name: %s\n    honor_labels: true\n    static_configs:\n      - targets: [%q]\n        labels: {service: %s, namespace: %s}\n",
			name, strings.TrimPrefix(p.URL, "http://"), name, promNamespace)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := proctest.FreeAddr(t)
	startPrometheus(t, promBin, cfgPath, filepath.Join(dir, "data"), promAddr)
	pc := &promClient{t: t, base: "http://" + promAddr}
	eventually(t, 60*time.Second, func() string {
		resp, err := http.Get(pc.base + "/-/ready")
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Sprintf("/-/ready %d", resp.StatusCode)
		}
		return ""
	})

	// Traffic that makes every family report: a provider found on the LEIE
	// (re-screen: a new exclusion), a credential run (checks, source
	// latency), a batch, stats, chat.
	c := newClient(t, gateway.URL, 60*time.Second)
	prov := map[string]any{"id": "provider_prom_001", "npi": "1234567893", "first_name": "Ada", "last_name": "Lovelace",
		"date_of_birth": "1970-01-31", "specialty": "Cardiology",
		"licenses": []map[string]any{{"state": "CA", "number": "A123", "type": "MD", "expires_on": "2030-01-01"}}}
	if r := c.do("POST", "/providers", adminKey, prov); r.status != 201 {
		t.Fatalf("create provider: %d %s", r.status, r.raw)
	}
	leie := `"LASTNAME","FIRSTNAME","MIDNAME","BUSNAME","GENERAL","SPECIALTY","UPIN","NPI","DOB","ADDRESS","CITY","STATE","ZIP","EXCLTYPE","EXCLDATE","REINDATE","WAIVERDATE","WVRSTATE"` + "\n" +
		`"LOVELACE","ADA","","","IND","CARDIOLOGY","","1234567893","19700131","1 MAIN","AUSTIN","TX","78701","1128a1","20200101","00000000","00000000",""` + "\n"
	if r := c.raw("POST", "/admin/imports/leie", adminKey, "text/csv", leie); r.status/100 != 2 {
		t.Fatalf("LEIE import: %d %s", r.status, r.raw)
	}
	if r := c.do("POST", "/credential/provider_prom_001", adminKey, nil); r.status != 200 {
		t.Fatalf("credential run: %d %s", r.status, r.raw)
	}
	if r := c.do("POST", "/batch-credential?wait=30s", adminKey, map[string]any{"provider_ids": []string{"provider_prom_001"}}); r.status/100 != 2 {
		t.Fatalf("batch: %d %s", r.status, r.raw)
	}
	if r := c.do("POST", "/chat", adminKey, map[string]any{"message": "Is Ada Lovelace approved?"}); r.status != 200 {
		t.Fatalf("chat: %d %s", r.status, r.raw)
	}
	c.do("GET", "/stats/summary", adminKey, nil)
	c.do("GET", "/providers?limit=5", adminKey, nil)

	t.Run("every metric named returns data", func(t *testing.T) {
		names := map[string][]string{}
		for _, q := range queries {
			for _, m := range q.Metrics {
				names[m] = append(names[m], q.Source)
			}
		}
		laterSet := map[string]bool{}
		for _, m := range later {
			laterSet[m] = true
		}
		registered := registeredNames(t, root)
		eventually(t, 45*time.Second, func() string {
			var missing []string
			for m, srcs := range names {
				res, err := pc.query(fmt.Sprintf(`count({__name__=%q})`, m))
				if err != nil {
					t.Fatal(err)
				}
				if len(res) == 0 {
					if laterSet[m] && !registered[m] {
						continue // not emitted by any service yet (see monitoring.ExpectedLater)
					}
					missing = append(missing, fmt.Sprintf("%s (used by %s)", m, srcs[0]))
				}
			}
			if len(missing) > 0 {
				return fmt.Sprintf("no data for %d names: %s", len(missing), strings.Join(missing, "; "))
			}
			return ""
		})
		for _, m := range later {
			if registered[m] {
				t.Logf("%s is emitted now: checked like the others; drop it from monitoring.ExpectedLater", m)
			}
		}
	})

	t.Run("autoscaling queries give the numbers the scaler acts on", func(t *testing.T) {
		auto := map[string]string{}
		for _, q := range queries {
			if q.Kind == "autoscaling" {
				auto[strings.TrimPrefix(q.Source, "keda e2e-credentialing-")] = q.Expr
			}
		}
		if len(auto) != 3 {
			t.Fatalf("autoscaling queries %v", auto)
		}
		// Hold one chat call in the LLM: the gateway has >= 1 request in
		// flight, chat's LLM semaphore 1 of 5 permits taken.
		release := make(chan struct{})
		llm.mu.Lock()
		llm.release = release
		llm.mu.Unlock()
		done := make(chan reply, 1)
		go func() {
			done <- c.do("POST", "/chat", adminKey, map[string]any{"message": "Still approved?"})
		}()
		eventually(t, 20*time.Second, func() string {
			gw, err1 := pc.query(auto["gateway"])
			ch, err2 := pc.query(auto["chat"])
			if err1 != nil || err2 != nil {
				return fmt.Sprint(err1, err2)
			}
			if len(gw) != 1 || gw[0].float() < 1 {
				return fmt.Sprintf("gateway in-flight %v, want >= 1", gw)
			}
			if len(ch) != 1 || math.Abs(ch[0].float()-0.2) > 1e-9 {
				return fmt.Sprintf("chat LLM saturation %v, want 0.2 (1 of 5 permits)", ch)
			}
			return ""
		})
		close(release)
		if r := <-done; r.status != 200 {
			t.Errorf("held chat call: %d %s", r.status, r.raw)
		}
		// Queue depth: the same number the credential replica exports.
		eventually(t, 20*time.Second, func() string {
			res, err := pc.query(auto["credential"])
			if err != nil || len(res) != 1 || math.IsNaN(res[0].float()) {
				return fmt.Sprintf("credential queue depth %v %v", res, err)
			}
			direct := scrapeValue(t, credential.URL, `credential_batch_queue_depth{`)
			if res[0].float() != direct {
				return fmt.Sprintf("queue depth via Prometheus %v, /metrics %v", res[0].float(), direct)
			}
			return ""
		})
		// One pod each, against a maximum of 1: pinned.
		eventually(t, 20*time.Second, func() string {
			for _, a := range pc.alerts() {
				if a.Labels["alertname"] == "ReplicasAtMaximum" && a.Labels["service"] == "gateway" && a.State == "firing" {
					return ""
				}
			}
			return "ReplicasAtMaximum not firing for the gateway"
		})
		// The recording rules the SLO alerts read have data.
		for _, rec := range []string{"gateway:slo_availability_errors:ratio_rate5m", "gateway:slo_latency_errors:ratio_rate1h"} {
			eventually(t, 20*time.Second, func() string {
				res, err := pc.query(rec)
				if err != nil || len(res) != 1 || res[0].Metric["namespace"] != promNamespace {
					return fmt.Sprintf("%s: %v %v", rec, res, err)
				}
				return ""
			})
		}
	})

	t.Run("credential stopped: the breaker alert goes pending, then firing", func(t *testing.T) {
		credential.Stop(20 * time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Keep asking for credential routes: each failure counts, then the
		// open breaker answers 503 at once.
		go func() {
			hc := &http.Client{Timeout: 5 * time.Second, Transport: c.http.Transport}
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", gateway.URL+"/providers", nil)
				req.Header.Set("Authorization", "Bearer "+adminKey)
				if resp, err := hc.Do(req); err == nil {
					resp.Body.Close()
				}
				time.Sleep(200 * time.Millisecond)
			}
		}()
		state := func() string {
			for _, a := range pc.alerts() {
				if a.Labels["alertname"] == "CircuitBreakerOpen" && a.Labels["service"] == "gateway" && a.Labels["name"] == "upstream_credential" {
					return a.State
				}
			}
			return ""
		}
		eventually(t, 30*time.Second, func() string {
			if s := state(); s != "pending" {
				return fmt.Sprintf("CircuitBreakerOpen state %q, want pending", s)
			}
			return ""
		})
		eventually(t, 30*time.Second, func() string {
			if s := state(); s != "firing" {
				return fmt.Sprintf("CircuitBreakerOpen state %q, want firing", s)
			}
			return ""
		})
		res, err := pc.query(`circuit_breaker_state{service="gateway",name="upstream_credential"}`)
		if err != nil || len(res) != 1 || res[0].float() != 2 {
			t.Errorf("breaker state %v %v", res, err)
		}
	})
}

// startPrometheus runs the server until the test ends (SIGTERM, then kill).
func startPrometheus(t *testing.T, bin, cfg, data, addr string) {
	t.Helper()
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+data, "--web.listen-address="+addr,
		"--storage.tsdb.retention.time=1h", "--log.level=warn")
	var out syncOutput
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("---- prometheus output ----\n%s", out.String())
		}
	})
}

type syncOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncOutput) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncOutput) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newLocalServer serves h on a loopback port until the test ends.
func newLocalServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// registeredNames are the metric names the services' and platform's Go
// sources spell out as string literals: a name there is emitted.
func registeredNames(t *testing.T, root string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	lit := regexp.MustCompile(`"([a-z][a-z0-9_]*_[a-z0-9_]+)"`)
	for _, dir := range []string{"services", "platform"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
				out[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// scrapeValue sums the samples of base's /metrics whose line starts with prefix.
func scrapeValue(t *testing.T, base, prefix string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sum, n := 0.0, 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			f, err := strconv.ParseFloat(l[strings.LastIndex(l, " ")+1:], 64)
			if err == nil {
				sum += f
				n++
			}
		}
	}
	if n == 0 {
		t.Fatalf("%s/metrics has no %s", base, prefix)
	}
	return sum
}

// raw sends body as is with contentType.
func (c *client) raw(method, path, key, contentType, body string) reply {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: b}
	_ = json.Unmarshal(b, &r.body)
	return r
}
