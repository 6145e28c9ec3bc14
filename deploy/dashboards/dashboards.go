// Package dashboards defines the Grafana dashboards as code: an overview
// (RED per route, saturation) and one per service. cmd/dashboards writes
// them as JSON into the chart (files/dashboards), which ships them as
// ConfigMaps for the Grafana sidecar; a test keeps the files in step with
// this code. Every query uses the observability contract's names.
package dashboards

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Dashboard is the part of Grafana's dashboard model we use.
type Dashboard struct {
	UID           string      `json:"uid"`
	Title         string      `json:"title"`
	Tags          []string    `json:"tags"`
	Timezone      string      `json:"timezone"`
	SchemaVersion int         `json:"schemaVersion"`
	Refresh       string      `json:"refresh"`
	Time          TimeRange   `json:"time"`
	Templating    Templating  `json:"templating"`
	Panels        []Panel     `json:"panels"`
	Links         []Link      `json:"links"`
	Editable      bool        `json:"editable"`
	GraphTooltip  int         `json:"graphTooltip"`
	Annotations   Annotations `json:"annotations"`
}

type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a dashboard variable: the data source, and the namespace.
type Variable struct {
	Name       string      `json:"name"`
	Label      string      `json:"label"`
	Type       string      `json:"type"`
	Query      any         `json:"query"`
	Datasource *Datasource `json:"datasource,omitempty"`
	Refresh    int         `json:"refresh,omitempty"`
	IncludeAll bool        `json:"includeAll,omitempty"`
	Multi      bool        `json:"multi,omitempty"`
	AllValue   string      `json:"allValue,omitempty"`
	Current    any         `json:"current"`
	Hide       int         `json:"hide"`
}

type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type Link struct {
	Title      string   `json:"title"`
	Type       string   `json:"type"`
	Tags       []string `json:"tags"`
	AsDropdown bool     `json:"asDropdown"`
}

type Annotations struct {
	List []any `json:"list"`
}

// Panel is a time series, stat or row panel.
type Panel struct {
	ID          int          `json:"id"`
	Type        string       `json:"type"`
	Title       string       `json:"title"`
	Description string       `json:"description,omitempty"`
	GridPos     GridPos      `json:"gridPos"`
	Datasource  *Datasource  `json:"datasource,omitempty"`
	Targets     []Target     `json:"targets,omitempty"`
	FieldConfig *FieldConfig `json:"fieldConfig,omitempty"`
	Options     any          `json:"options,omitempty"`
	Collapsed   *bool        `json:"collapsed,omitempty"`
}

type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Target is one PromQL query of a panel.
type Target struct {
	RefID        string      `json:"refId"`
	Expr         string      `json:"expr"`
	LegendFormat string      `json:"legendFormat"`
	Datasource   *Datasource `json:"datasource"`
}

type FieldConfig struct {
	Defaults  Defaults `json:"defaults"`
	Overrides []any    `json:"overrides"`
}

type Defaults struct {
	Unit     string   `json:"unit,omitempty"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
	Mappings []any    `json:"mappings,omitempty"`
	Custom   any      `json:"custom,omitempty"`
}

var prom = &Datasource{Type: "prometheus", UID: "${datasource}"}

// Q is a query with its legend.
type Q struct{ Expr, Legend string }

// board accumulates panels laid out in a 24-column grid.
type board struct {
	d    Dashboard
	x, y int
	rowH int
}

func newBoard(uid, title string, tags ...string) *board {
	return &board{d: Dashboard{
		UID: uid, Title: title, Tags: append([]string{"credentialing"}, tags...), Timezone: "utc",
		SchemaVersion: 39, Refresh: "30s", Time: TimeRange{From: "now-6h", To: "now"}, GraphTooltip: 1,
		Annotations: Annotations{List: []any{}},
		Links:       []Link{{Title: "Credentialing", Type: "dashboards", Tags: []string{"credentialing"}, AsDropdown: true}},
		Templating: Templating{List: []Variable{
			{Name: "datasource", Label: "Data source", Type: "datasource", Query: "prometheus", Current: map[string]any{}},
			{Name: "namespace", Label: "Namespace", Type: "query", Datasource: prom, Refresh: 2,
				Query:   map[string]any{"query": "label_values(http_server_requests_total, namespace)", "refId": "namespace"},
				Current: map[string]any{}, IncludeAll: true, Multi: true, AllValue: ".*"},
		}},
	}}
}

// row starts a new row of panels under a title.
func (b *board) row(title string) {
	b.newline()
	f := false
	b.d.Panels = append(b.d.Panels, Panel{Type: "row", Title: title, GridPos: GridPos{H: 1, W: 24, X: 0, Y: b.y}, Collapsed: &f})
	b.y++
}

func (b *board) newline() {
	if b.x > 0 {
		b.x, b.y = 0, b.y+b.rowH
	}
}

func (b *board) add(typ, title, unit, desc string, w int, qs ...Q) {
	const h = 8
	if b.x+w > 24 {
		b.newline()
	}
	p := Panel{Type: typ, Title: title, Description: desc, GridPos: GridPos{H: h, W: w, X: b.x, Y: b.y}, Datasource: prom,
		FieldConfig: &FieldConfig{Defaults: Defaults{Unit: unit}, Overrides: []any{}}}
	if typ == "stat" {
		p.Options = map[string]any{"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}}, "colorMode": "value"}
	}
	for i, q := range qs {
		p.Targets = append(p.Targets, Target{RefID: string(rune('A' + i)), Expr: q.Expr, LegendFormat: q.Legend, Datasource: prom})
	}
	b.d.Panels = append(b.d.Panels, p)
	b.x += w
	b.rowH = h
}

func (b *board) ts(title, unit string, w int, qs ...Q) {
	b.add("timeseries", title, unit, "", w, qs...)
}

func (b *board) stat(title, unit string, w int, qs ...Q) { b.add("stat", title, unit, "", w, qs...) }

func (b *board) done() Dashboard {
	for i := range b.d.Panels {
		b.d.Panels[i].ID = i + 1
	}
	return b.d
}

// sel is the selector every query carries: the service and the namespace
// chosen on the dashboard.
func sel(service string, extra ...string) string {
	m := append([]string{fmt.Sprintf(`service="%s"`, service), `namespace=~"$namespace"`}, extra...)
	return "{" + strings.Join(m, ",") + "}"
}

// Probes are not traffic.
const apiRoutes = `route!~"/livez|/readyz|/metrics"`

// red adds rate, errors and duration per route of one service.
func red(b *board, service string) {
	s := sel(service, apiRoutes)
	b.ts("Requests per second by route", "reqps", 8,
		Q{fmt.Sprintf(`sum by (route) (rate(http_server_requests_total%s[$__rate_interval]))`, s), "{{route}}"})
	b.ts("5xx ratio by route", "percentunit", 8,
		Q{fmt.Sprintf(`sum by (route) (rate(http_server_requests_total%s[$__rate_interval])) / sum by (route) (rate(http_server_requests_total%s[$__rate_interval]))`,
			sel(service, apiRoutes, `code=~"5.."`), s), "{{route}}"})
	b.ts("p95 latency by route", "s", 8,
		Q{fmt.Sprintf(`histogram_quantile(0.95, sum by (route, le) (rate(http_server_request_duration_seconds_bucket%s[$__rate_interval])))`, s), "{{route}}"})
	b.ts("Responses by code", "reqps", 12,
		Q{fmt.Sprintf(`sum by (code) (rate(http_server_requests_total%s[$__rate_interval]))`, s), "{{code}}"})
	b.ts("In-flight requests per pod", "short", 12,
		Q{fmt.Sprintf(`sum by (pod, instance) (http_server_inflight_requests%s)`, sel(service)), "{{pod}}{{instance}}"})
}

// saturation adds semaphores, the database pool and breakers of a service.
func saturation(b *board, service string, pool bool) {
	s := sel(service)
	b.ts("Semaphore use (taken / capacity)", "percentunit", 8,
		Q{fmt.Sprintf(`sum by (name) (semaphore_in_use%s) / sum by (name) (semaphore_capacity%s)`, s, s), "{{name}}"})
	b.ts("Semaphore waiting", "short", 8, Q{fmt.Sprintf(`sum by (name) (semaphore_waiting%s)`, s), "{{name}}"})
	b.ts("Semaphore rejections per second", "ops", 8,
		Q{fmt.Sprintf(`sum by (name) (rate(semaphore_rejected_total%s[$__rate_interval]))`, s), "{{name}}"})
	b.ts("Breaker state (0 closed, 1 half-open, 2 open)", "short", 12, Q{fmt.Sprintf(`max by (name) (circuit_breaker_state%s)`, s), "{{name}}"})
	b.ts("Breaker transitions", "short", 12,
		Q{fmt.Sprintf(`sum by (name, to) (increase(circuit_breaker_transitions_total%s[$__rate_interval]))`, s), "{{name}} → {{to}}"})
	if pool {
		b.ts("PostgreSQL pool in use (acquired / max)", "percentunit", 12,
			Q{fmt.Sprintf(`sum by (pool) (pgxpool_acquired_conns%s) / sum by (pool) (pgxpool_max_conns%s)`, s, s), "{{pool}}"})
		b.ts("Pool acquires that waited per second", "ops", 12,
			Q{fmt.Sprintf(`sum by (pool) (rate(pgxpool_empty_acquire_count_total%s[$__rate_interval]))`, s), "{{pool}}"})
	}
}

func overview() Dashboard {
	b := newBoard("credentialing-overview", "Credentialing / Overview", "overview")
	b.row("Service level (gateway)")
	b.stat("Availability, 30 days", "percentunit", 6,
		Q{`1 - (sum(increase(http_server_requests_total{service="gateway",namespace=~"$namespace",code=~"5..",route!~"/livez|/readyz|/metrics"}[30d])) / sum(increase(http_server_requests_total{service="gateway",namespace=~"$namespace",route!~"/livez|/readyz|/metrics"}[30d])))`, ""})
	b.ts("Availability burn rate (1h, budget 0.1%)", "short", 9,
		Q{`gateway:slo_availability_errors:ratio_rate1h{namespace=~"$namespace"} / 0.001`, "1h {{namespace}}"},
		Q{`gateway:slo_availability_errors:ratio_rate6h{namespace=~"$namespace"} / 0.001`, "6h {{namespace}}"})
	b.ts("Latency burn rate (1h, budget 1% over 1s)", "short", 9,
		Q{`gateway:slo_latency_errors:ratio_rate1h{namespace=~"$namespace"} / 0.01`, "1h {{namespace}}"},
		Q{`gateway:slo_latency_errors:ratio_rate6h{namespace=~"$namespace"} / 0.01`, "6h {{namespace}}"})
	b.row("Gateway RED per route")
	red(b, "gateway")
	b.row("Saturation")
	b.ts("Semaphore use by service (taken / capacity)", "percentunit", 8,
		Q{`sum by (service, name) (semaphore_in_use{namespace=~"$namespace"}) / sum by (service, name) (semaphore_capacity{namespace=~"$namespace"})`, "{{service}} {{name}}"})
	b.ts("PostgreSQL pools (acquired / max)", "percentunit", 8,
		Q{`sum by (service, pool) (pgxpool_acquired_conns{namespace=~"$namespace"}) / sum by (service, pool) (pgxpool_max_conns{namespace=~"$namespace"})`, "{{service}} {{pool}}"})
	b.ts("Breakers open or half-open", "short", 8,
		Q{`max by (service, name) (circuit_breaker_state{namespace=~"$namespace"}) > 0`, "{{service}} {{name}}"})
	b.ts("Rate limiter decisions", "ops", 8,
		Q{`sum by (decision) (rate(ratelimit_decisions_total{service="gateway",namespace=~"$namespace"}[$__rate_interval]))`, "{{decision}}"})
	b.ts("Shed (over MAX_CONCURRENT_CONNECTIONS)", "ops", 8,
		Q{`sum(rate(gateway_shed_requests_total{service="gateway",namespace=~"$namespace"}[$__rate_interval]))`, "shed"})
	b.ts("In-flight requests by service", "short", 8,
		Q{`sum by (service) (http_server_inflight_requests{namespace=~"$namespace"})`, "{{service}}"})
	b.row("Work")
	b.ts("Verifications by decision", "ops", 8,
		Q{`sum by (decision) (rate(credential_verifications_total{service="credential",namespace=~"$namespace"}[$__rate_interval]))`, "{{decision}}"})
	b.ts("Batch queue depth", "short", 8,
		Q{`max(credential_batch_queue_depth{service="credential",namespace=~"$namespace"})`, "waiting jobs"})
	b.ts("LLM calls by outcome", "ops", 8,
		Q{`sum by (outcome) (rate(chat_llm_requests_total{service="chat",namespace=~"$namespace"}[$__rate_interval]))`, "{{outcome}}"})
	return b.done()
}

func gateway() Dashboard {
	b := newBoard("credentialing-gateway", "Credentialing / Gateway", "gateway")
	b.row("Requests")
	red(b, "gateway")
	b.row("Rate limiting and shedding")
	b.ts("Rate limiter decisions", "ops", 8,
		Q{`sum by (decision) (rate(ratelimit_decisions_total` + sel("gateway") + `[$__rate_interval]))`, "{{decision}}"})
	b.ts("Limiter backend (Redis) errors", "ops", 8,
		Q{`sum(rate(ratelimit_backend_errors_total` + sel("gateway") + `[$__rate_interval]))`, "errors"})
	b.ts("Replicas on the local fallback", "short", 8,
		Q{`sum(ratelimit_fallback_active` + sel("gateway") + `)`, "on fallback"})
	b.ts("Shed requests (503 overloaded)", "ops", 12,
		Q{`sum(rate(gateway_shed_requests_total` + sel("gateway") + `[$__rate_interval]))`, "shed"})
	b.ts("Upstream breakers", "short", 12,
		Q{`max by (name) (circuit_breaker_state` + sel("gateway", `name=~"upstream_.*"`) + `)`, "{{name}}"})
	b.row("SLO burn rates")
	b.ts("Availability error ratio", "percentunit", 12,
		Q{`gateway:slo_availability_errors:ratio_rate5m{namespace=~"$namespace"}`, "5m"},
		Q{`gateway:slo_availability_errors:ratio_rate1h{namespace=~"$namespace"}`, "1h"},
		Q{`gateway:slo_availability_errors:ratio_rate6h{namespace=~"$namespace"}`, "6h"},
		Q{`gateway:slo_availability_errors:ratio_rate3d{namespace=~"$namespace"}`, "3d"})
	b.ts("Latency error ratio (slower than 1s)", "percentunit", 12,
		Q{`gateway:slo_latency_errors:ratio_rate5m{namespace=~"$namespace"}`, "5m"},
		Q{`gateway:slo_latency_errors:ratio_rate1h{namespace=~"$namespace"}`, "1h"},
		Q{`gateway:slo_latency_errors:ratio_rate6h{namespace=~"$namespace"}`, "6h"},
		Q{`gateway:slo_latency_errors:ratio_rate3d{namespace=~"$namespace"}`, "3d"})
	return b.done()
}

func credential() Dashboard {
	b := newBoard("credentialing-credential", "Credentialing / Credential", "credential")
	s := sel("credential")
	b.row("Verification")
	b.ts("Verifications by decision", "ops", 8,
		Q{`sum by (decision) (rate(credential_verifications_total` + s + `[$__rate_interval]))`, "{{decision}}"})
	b.ts("Checks by outcome", "ops", 8,
		Q{`sum by (check, outcome) (rate(credential_checks_total` + s + `[$__rate_interval]))`, "{{check}} {{outcome}}"})
	b.ts("Source latency p95", "s", 8,
		Q{`histogram_quantile(0.95, sum by (source, le) (rate(credential_source_duration_seconds_bucket` + s + `[$__rate_interval])))`, "{{source}}"})
	b.row("Batches")
	b.ts("Batch queue depth", "short", 8, Q{`max by (queue) (credential_batch_queue_depth` + s + `)`, "{{queue}}"})
	b.ts("Batch throughput (items finished)", "ops", 8,
		Q{`sum by (outcome) (rate(credential_batch_items_total` + s + `[$__rate_interval]))`, "{{outcome}}"})
	b.ts("Oldest ready job's wait", "s", 8, Q{`max by (queue) (credential_batch_oldest_job_age_seconds` + s + `)`, "{{queue}}"})
	b.ts("Batch jobs running", "short", 12, Q{`sum(credential_batch_jobs_running` + s + `)`, "running"})
	b.ts("Batch job duration p95", "s", 12,
		Q{`histogram_quantile(0.95, sum by (le) (rate(credential_batch_job_duration_seconds_bucket` + s + `[$__rate_interval])))`, "p95"})
	b.row("Sources and monitoring")
	b.ts("Imports by outcome", "short", 8,
		Q{`sum by (source, outcome) (increase(credential_source_imports_total` + s + `[$__rate_interval]))`, "{{source}} {{outcome}}"})
	b.stat("Days since import", "d", 8,
		Q{`(time() - max by (source) (credential_source_last_import_timestamp_seconds` + s + `)) / 86400`, "{{source}}"})
	b.stat("Rows in the active version", "short", 8, Q{`max by (source) (credential_source_rows` + s + `)`, "{{source}}"})
	b.ts("New exclusions found", "short", 24,
		Q{`sum(increase(credential_new_exclusions_total` + s + `[$__rate_interval]))`, "new exclusions"})
	b.row("Events and webhooks")
	b.ts("Events published by type", "ops", 8,
		Q{`sum by (type) (rate(events_total` + s + `[$__rate_interval]))`, "{{type}}"})
	b.ts("Webhook delivery attempts by outcome", "ops", 8,
		Q{`sum by (outcome) (rate(webhook_deliveries_total` + s + `[$__rate_interval]))`, "{{outcome}}"})
	b.ts("Attempts per delivery p95", "short", 8,
		Q{`histogram_quantile(0.95, sum by (le) (rate(webhook_delivery_attempts_bucket` + s + `[$__rate_interval])))`, "p95"})
	b.ts("Expirables raised", "short", 24,
		Q{`sum by (kind, window) (increase(credential_expirables_total` + s + `[$__rate_interval]))`, "{{kind}} {{window}}d"})
	b.row("HTTP")
	red(b, "credential")
	b.row("Saturation")
	saturation(b, "credential", true)
	return b.done()
}

func chat() Dashboard {
	b := newBoard("credentialing-chat", "Credentialing / Chat", "chat")
	s := sel("chat")
	b.row("LLM")
	b.ts("LLM calls by outcome", "ops", 8,
		Q{`sum by (outcome) (rate(chat_llm_requests_total` + s + `[$__rate_interval]))`, "{{outcome}}"})
	b.ts("LLM latency", "s", 8,
		Q{`histogram_quantile(0.5, sum by (le) (rate(chat_llm_duration_seconds_bucket` + s + `[$__rate_interval])))`, "p50"},
		Q{`histogram_quantile(0.95, sum by (le) (rate(chat_llm_duration_seconds_bucket` + s + `[$__rate_interval])))`, "p95"})
	b.ts("LLM semaphore saturation (what chat scales on)", "percentunit", 8,
		Q{`(sum(semaphore_in_use` + sel("chat", `name="llm"`) + `) + sum(semaphore_waiting` + sel("chat", `name="llm"`) + `)) / sum(semaphore_capacity` + sel("chat", `name="llm"`) + `)`, "saturation"})
	b.row("HTTP")
	red(b, "chat")
	b.row("Saturation")
	saturation(b, "chat", true)
	return b.done()
}

func stats() Dashboard {
	b := newBoard("credentialing-stats", "Credentialing / Stats", "stats")
	s := sel("stats")
	b.row("Reports")
	b.ts("Report requests by answer (hit, miss, shared)", "reqps", 8,
		Q{`sum by (result) (rate(stats_cache_requests_total` + s + `[$__rate_interval]))`, "{{result}}"})
	b.ts("Cache hit ratio by report", "percentunit", 8,
		Q{`sum by (report) (rate(stats_cache_requests_total` + sel("stats", `result=~"hit|shared"`) + `[$__rate_interval])) / sum by (report) (rate(stats_cache_requests_total` + s + `[$__rate_interval]))`, "{{report}}"})
	b.ts("Replica lag", "s", 8, Q{`max(stats_replica_lag_seconds` + s + `)`, "lag"})
	b.ts("Query time p95 by report (misses)", "s", 12,
		Q{`histogram_quantile(0.95, sum by (report, le) (rate(stats_query_duration_seconds_bucket` + s + `[$__rate_interval])))`, "{{report}}"})
	b.ts("Queries per second by report", "ops", 12,
		Q{`sum by (report) (rate(stats_query_duration_seconds_count` + s + `[$__rate_interval]))`, "{{report}}"})
	b.row("HTTP")
	red(b, "stats")
	b.row("Saturation")
	saturation(b, "stats", true)
	return b.done()
}

// All returns every dashboard by file name (without .json).
func All() map[string]Dashboard {
	return map[string]Dashboard{"overview": overview(), "gateway": gateway(), "credential": credential(),
		"chat": chat(), "stats": stats()}
}

// Names are All's keys, sorted.
func Names() []string {
	var out []string
	for n := range All() {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// JSON is a dashboard as the chart ships it.
func JSON(d Dashboard) ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
