// Package monitoring gathers every PromQL expression the platform ships:
// alerting and recording rules, dashboard panels, and the autoscaling
// queries (KEDA triggers, prometheus-adapter rules). It parses each with
// Prometheus' own parser and names the metrics each reads, so tests can
// check that every expression parses, that only the observability
// contract's names are used, and (live) that each name returns data.
package monitoring

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/provcred/deploy/dashboards"
)

// Query is one expression and where it comes from.
type Query struct {
	// Source is e.g. "rules/ops.rules.yml alert CircuitBreakerOpen",
	// "dashboard overview: Batch queue depth", "keda credential".
	Source string `json:"source"`
	Kind   string `json:"kind"` // alert, record, panel, autoscaling
	Expr   string `json:"expr"`
	// Metrics are the names the expression selects (recording rules'
	// names included), sorted.
	Metrics []string `json:"metrics"`
}

// ExpectedLater are contract names that alerts or panels may use before a
// service emits them (none today: ratelimit_fallback_active, the first,
// landed with the Redis limiter). The live test checks each of them as
// soon as any service's source registers it, so a name that lands without
// data, or under another name, fails there.
var ExpectedLater = []string{}

// RulesDir is the chart's folder of plain rule files, relative to deploy/.
const RulesDir = "helm/credentialing/files/rules"

var promParser = parser.NewParser(parser.Options{})

// Parse parses expr with Prometheus' parser.
func Parse(expr string) (parser.Expr, error) { return promParser.ParseExpr(expr) }

// Metrics returns the metric names expr selects.
func Metrics(expr string) ([]string, error) {
	e, err := Parse(expr)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
			if name != "" {
				seen[name] = true
			}
		}
		return nil
	})
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// RuleGroups is a Prometheus rule file. (Prometheus' rulefmt would bring
// its whole query engine into this module; `promtool check rules`, which
// the tests also run, validates the files completely.)
type RuleGroups struct {
	Groups []RuleGroup `json:"groups"`
}

// RuleGroup is one group of rules.
type RuleGroup struct {
	Name     string `json:"name"`
	Interval string `json:"interval,omitempty"`
	Rules    []Rule `json:"rules"`
}

// Rule is a recording or an alerting rule.
type Rule struct {
	Record        string            `json:"record,omitempty"`
	Alert         string            `json:"alert,omitempty"`
	Expr          string            `json:"expr"`
	For           string            `json:"for,omitempty"`
	KeepFiringFor string            `json:"keep_firing_for,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// RuleFiles parses every *.rules.yml under dir (strictly: unknown fields
// fail; every expression must parse) and returns the groups by file name.
func RuleFiles(dir string) (map[string]*RuleGroups, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.rules.yml"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no *.rules.yml in %s", dir)
	}
	out := map[string]*RuleGroups{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var g RuleGroups
		if err := yaml.UnmarshalStrict(b, &g); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		for _, grp := range g.Groups {
			for _, r := range grp.Rules {
				if (r.Alert == "") == (r.Record == "") {
					return nil, fmt.Errorf("%s: group %s: a rule is an alert or a record", p, grp.Name)
				}
				if _, err := Parse(r.Expr); err != nil {
					return nil, fmt.Errorf("%s: %s%s: %w", p, r.Alert, r.Record, err)
				}
			}
		}
		out[filepath.Base(p)] = &g
	}
	return out, nil
}

// GrafanaVars are what Grafana puts in for the dashboards' variables, so a
// panel's query can be parsed and run as Prometheus would receive it.
func GrafanaVars(namespace string) *strings.Replacer {
	return strings.NewReplacer("$__rate_interval", "1m", "$namespace", namespace, "${datasource}", "")
}

// All returns the rules' and dashboards' expressions (autoscaling queries
// come from the rendered chart: see Autoscaling), with Grafana's variables
// replaced for namespace (a regular expression; ".*" for any).
func All(deployDir, namespace string) ([]Query, error) {
	var out []Query
	files, err := RuleFiles(filepath.Join(deployDir, RulesDir))
	if err != nil {
		return nil, err
	}
	for _, file := range sortedKeys(files) {
		for _, g := range files[file].Groups {
			for _, r := range g.Rules {
				q := Query{Expr: r.Expr, Kind: "record", Source: fmt.Sprintf("rules/%s record %s", file, r.Record)}
				if r.Alert != "" {
					q.Kind, q.Source = "alert", fmt.Sprintf("rules/%s alert %s", file, r.Alert)
				}
				out = append(out, q)
			}
		}
	}
	vars := GrafanaVars(namespace)
	for _, name := range dashboards.Names() {
		d := dashboards.All()[name]
		for _, p := range d.Panels {
			for _, t := range p.Targets {
				out = append(out, Query{Kind: "panel", Source: fmt.Sprintf("dashboard %s: %s", name, p.Title), Expr: vars.Replace(t.Expr)})
			}
		}
		for _, v := range d.Templating.List {
			if m, ok := v.Query.(map[string]any); ok {
				if s, ok := m["query"].(string); ok {
					if inner, ok := labelValuesMetric(s); ok {
						out = append(out, Query{Kind: "panel", Source: fmt.Sprintf("dashboard %s: variable %s", name, v.Name), Expr: inner})
					}
				}
			}
		}
	}
	return withMetrics(out)
}

// label_values(metric, label) is Grafana's, not PromQL: its metric is.
var labelValuesRE = regexp.MustCompile(`^label_values\(([^,]+),\s*[a-zA-Z_]+\)$`)

func labelValuesMetric(s string) (string, bool) {
	m := labelValuesRE.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	return strings.TrimSpace(m[1]), true
}

func withMetrics(qs []Query) ([]Query, error) {
	for i := range qs {
		ms, err := Metrics(qs[i].Expr)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", qs[i].Source, qs[i].Expr, err)
		}
		qs[i].Metrics = ms
	}
	return qs, nil
}

// Autoscaling returns the query of every KEDA prometheus trigger in the
// rendered objects (decoded YAML documents).
func Autoscaling(docs []map[string]any) ([]Query, error) {
	var out []Query
	for _, d := range docs {
		if d["kind"] != "ScaledObject" {
			continue
		}
		name := nested(d, "metadata", "name")
		spec, _ := d["spec"].(map[string]any)
		triggers, _ := spec["triggers"].([]any)
		for _, t := range triggers {
			tm, _ := t.(map[string]any)
			md, _ := tm["metadata"].(map[string]any)
			q, _ := md["query"].(string)
			out = append(out, Query{Kind: "autoscaling", Source: fmt.Sprintf("keda %s", name), Expr: q})
		}
	}
	return withMetrics(out)
}

// AdapterRule is one prometheus-adapter external rule.
type AdapterRule struct {
	SeriesQuery  string `json:"seriesQuery"`
	MetricsQuery string `json:"metricsQuery"`
	Name         struct {
		As string `json:"as"`
	} `json:"name"`
	Resources any `json:"resources"`
}

// AdapterRules reads deploy/prometheus-adapter/values.yaml's externalRules.
func AdapterRules(deployDir string) ([]AdapterRule, error) {
	b, err := os.ReadFile(filepath.Join(deployDir, "prometheus-adapter", "values.yaml"))
	if err != nil {
		return nil, err
	}
	var v struct {
		Prometheus any `json:"prometheus"`
		Rules      struct {
			Default  bool          `json:"default"`
			External []AdapterRule `json:"external"`
		} `json:"rules"`
	}
	if err := yaml.UnmarshalStrict(b, &v); err != nil {
		return nil, fmt.Errorf("prometheus-adapter values: %w", err)
	}
	return v.Rules.External, nil
}

// AdapterQuery is the query prometheus-adapter sends for r when the HPA
// selects namespace (its <<.LabelMatchers>> filled in).
func AdapterQuery(r AdapterRule, namespace string) string {
	return strings.ReplaceAll(r.MetricsQuery, "<<.LabelMatchers>>", fmt.Sprintf(`namespace="%s"`, namespace))
}

func nested(m map[string]any, keys ...string) string {
	var cur any = m
	for _, k := range keys {
		mm, _ := cur.(map[string]any)
		cur = mm[k]
	}
	s, _ := cur.(string)
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
