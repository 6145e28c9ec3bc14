package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/provcred/deploy/dashboards"
	"github.com/provcred/deploy/monitoring"
)

// contract reads the metric names of docs/architecture.md's "Observability
// contract" section: `name{labels}` or `prefix_a|b|c{labels}`; a trailing *
// is a prefix (pgxpool_*).
func contract(t *testing.T) (names map[string]bool, prefixes []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(deployDir(t)), "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "## Observability contract")
	if start < 0 {
		t.Fatal("docs/architecture.md has no Observability contract section")
	}
	section := doc[start+10:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	names = map[string]bool{}
	for _, m := range regexp.MustCompile("`([a-z_:*|]+)(\\{[^`]*\\})?`").FindAllStringSubmatch(section, -1) {
		tok := m[1]
		if strings.HasSuffix(tok, "*") {
			prefixes = append(prefixes, strings.TrimSuffix(tok, "*"))
			continue
		}
		parts := strings.Split(tok, "|")
		names[parts[0]] = true
		if i := strings.Index(parts[0], "_"); i >= 0 {
			for _, p := range parts[1:] {
				names[parts[0][:i+1]+p] = true
			}
		}
	}
	if len(names) < 20 {
		t.Fatalf("only %d names read from the contract: %v", len(names), names)
	}
	return names, prefixes
}

// everyQuery is every expression shipped: rules, dashboards, and the
// autoscaling queries of the rendered chart and the adapter rules.
func everyQuery(t *testing.T) []monitoring.Query {
	t.Helper()
	qs, err := monitoring.All(deployDir(t), ".*")
	if err != nil {
		t.Fatal(err)
	}
	auto, err := monitoring.Autoscaling(render(t, nil, "autoscaling.mode=keda").Docs)
	if err != nil {
		t.Fatal(err)
	}
	if len(auto) != len(scaled) {
		t.Fatalf("%d autoscaling queries, want %d", len(auto), len(scaled))
	}
	qs = append(qs, auto...)
	rules, err := monitoring.AdapterRules(deployDir(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		ms, err := monitoring.Metrics(monitoring.AdapterQuery(r, namespace))
		if err != nil {
			t.Fatalf("adapter %s: %v", r.Name.As, err)
		}
		qs = append(qs, monitoring.Query{Kind: "autoscaling", Source: "prometheus-adapter " + r.Name.As, Expr: r.MetricsQuery, Metrics: ms})
	}
	return qs
}

func TestEveryExpressionParsesAndUsesTheContract(t *testing.T) {
	t.Parallel()
	names, prefixes := contract(t)
	recorded := map[string]bool{"credentialing:autoscaling_max_replicas": true}
	qs := everyQuery(t)
	for _, q := range qs {
		if q.Kind == "record" {
			recorded[strings.TrimPrefix(q.Source[strings.LastIndex(q.Source, " ")+1:], "")] = true
		}
	}
	kinds := map[string]int{}
	for _, q := range qs {
		kinds[q.Kind]++
		// monitoring.All and Autoscaling parsed it; check its names.
		if len(q.Metrics) == 0 && !strings.Contains(q.Expr, "vector(") {
			t.Errorf("%s: selects no metric: %s", q.Source, q.Expr)
		}
		for _, m := range q.Metrics {
			base := m
			for _, suf := range []string{"_bucket", "_count", "_sum"} {
				if b, ok := strings.CutSuffix(m, suf); ok && names[b] {
					base = b
				}
			}
			ok := names[base] || recorded[m] || m == "up" || slices.Contains(monitoring.ExpectedLater, m) ||
				slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(m, p) })
			if !ok {
				t.Errorf("%s: %s is not in the observability contract (docs/architecture.md)", q.Source, m)
			}
		}
	}
	for _, k := range []string{"alert", "record", "panel", "autoscaling"} {
		if kinds[k] == 0 {
			t.Errorf("no %s expressions found", k)
		}
	}
}

func TestDashboardFilesAreGenerated(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(deployDir(t), "helm", "credentialing", "files", "dashboards")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != len(dashboards.Names()) {
		t.Errorf("%d dashboard files, %d dashboards: run `go run ./cmd/dashboards` in deploy/", len(files), len(dashboards.Names()))
	}
	uids := map[string]bool{}
	for name, d := range dashboards.All() {
		want, err := dashboards.JSON(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, name+".json"))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s.json is not what cmd/dashboards writes (%v): run `GOWORK=off go run ./cmd/dashboards` in deploy/", name, err)
		}
		if uids[d.UID] {
			t.Errorf("uid %s twice", d.UID)
		}
		uids[d.UID] = true
		ids := map[int]bool{}
		for _, p := range d.Panels {
			if ids[p.ID] || p.GridPos.W < 1 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("%s: panel %q id %d at %+v", name, p.Title, p.ID, p.GridPos)
			}
			ids[p.ID] = true
		}
	}
}

// The credential dashboard shows what the issue asks of it.
func TestCredentialDashboardPanels(t *testing.T) {
	t.Parallel()
	d := dashboards.All()["credential"]
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	all := strings.Join(exprs, "\n")
	for _, m := range []string{"credential_verifications_total", "credential_checks_total", "credential_source_duration_seconds_bucket",
		"credential_batch_queue_depth", "credential_batch_items_total", "credential_source_imports_total", "credential_new_exclusions_total",
		"events_total", "webhook_deliveries_total", "webhook_delivery_attempts_bucket", "credential_expirables_total"} {
		if !strings.Contains(all, m) {
			t.Errorf("credential dashboard lacks %s", m)
		}
	}
}

// The stats dashboard shows the reports' cache, query time and replica lag.
func TestStatsDashboardPanels(t *testing.T) {
	t.Parallel()
	var exprs []string
	for _, p := range dashboards.All()["stats"].Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	all := strings.Join(exprs, "\n")
	for _, m := range []string{"stats_cache_requests_total", "stats_query_duration_seconds_bucket",
		"stats_query_duration_seconds_count", "stats_replica_lag_seconds", "http_server_requests_total"} {
		if !strings.Contains(all, m) {
			t.Errorf("stats dashboard lacks %s", m)
		}
	}
}

func TestRunbookForEveryAlert(t *testing.T) {
	t.Parallel()
	ops, err := os.ReadFile(filepath.Join(filepath.Dir(deployDir(t)), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	headings := map[string]bool{}
	for _, l := range strings.Split(string(ops), "\n") {
		if strings.HasPrefix(l, "#") {
			headings[anchor(strings.TrimLeft(l, "# "))] = true
		}
	}
	files, err := monitoring.RuleFiles(filepath.Join(deployDir(t), monitoring.RulesDir))
	if err != nil {
		t.Fatal(err)
	}
	const base = "https://github.com/provcred/provcred/blob/main/docs/operations.md#"
	n := 0
	for _, f := range files {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				n++
				u := r.Annotations["runbook_url"]
				a, ok := strings.CutPrefix(u, base)
				if !ok || !headings[a] || a != strings.ToLower(r.Alert) {
					t.Errorf("%s: runbook_url %q has no section in docs/operations.md", r.Alert, u)
				}
				if s := r.Labels["severity"]; s != "page" && s != "ticket" {
					t.Errorf("%s: severity %q, want page or ticket", r.Alert, s)
				}
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("%s: summary and description needed", r.Alert)
				}
			}
		}
	}
	if n < 13 {
		t.Errorf("%d alerts, want the 4 SLO and 9 operations alerts", n)
	}
}

// anchor is GitHub's heading slug.
func anchor(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: run scripts/ensure-prometheus.sh (make test does)")
	}
	return p
}

func TestPromtoolCheckRules(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join(deployDir(t), monitoring.RulesDir, "*.rules.yml"))
	// The PrometheusRule of the keda render (the max-replica rules too), as
	// a plain rule file.
	r := render(t, nil, "autoscaling.mode=keda")
	for _, d := range r.Docs {
		if d["kind"] == "PrometheusRule" {
			spec := d["spec"].(map[string]any)
			b, err := yaml.Marshal(spec)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "rendered.rules.yml")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, p)
		}
	}
	out, err := exec.Command(promtool(t), append([]string{"check", "rules"}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	t.Parallel()
	tests, _ := filepath.Glob(filepath.Join(deployDir(t), "prometheus", "tests", "*.test.yml"))
	if len(tests) < 3 {
		t.Fatalf("rule tests: %v", tests)
	}
	// Every alert has a test.
	var all []byte
	for _, f := range tests {
		b, _ := os.ReadFile(f)
		all = append(all, b...)
	}
	files, _ := monitoring.RuleFiles(filepath.Join(deployDir(t), monitoring.RulesDir))
	for _, f := range files {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" && !bytes.Contains(all, []byte("alertname: "+r.Alert+"\n")) {
					t.Errorf("alert %s has no promtool test", r.Alert)
				}
			}
		}
	}
	cmd := exec.Command(promtool(t), append([]string{"test", "rules"}, tests...)...)
	cmd.Dir = filepath.Join(deployDir(t), "prometheus", "tests")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
