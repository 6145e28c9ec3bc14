// Package tools is what the chat model may call: read-only lookups over the
// credential and stats services' own HTTP APIs (never their tables), made
// with the caller's identity, each behind its upstream's breaker and a
// timeout, each result cut to a bounded size with personal data removed.
// Every tool reports the records it returned to the turn's citation
// ledger. No tool writes.
package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/provcred/chat/internal/cite"
	"github.com/provcred/chat/internal/llm"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/domain"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/text"
)

// Options configure a Kit.
type Options struct {
	// SharePII keeps dates of birth, DEA numbers, addresses and phone
	// numbers in what the model sees.
	SharePII bool
	// MaxResultBytes bounds the JSON one call hands the model.
	MaxResultBytes int
	Metrics        *metrics.Registry
	Log            *slog.Logger
}

// Kit holds the tools and what they need; For makes a turn's Set.
type Kit struct {
	client *Client
	opts   Options
	calls  *prometheus.CounterVec
}

// NewKit builds the kit and the chat_tool_calls_total series.
func NewKit(client *Client, o Options) *Kit {
	k := &Kit{client: client, opts: o,
		calls: o.Metrics.CounterVec("chat_tool_calls_total", "Tool calls the chat model made, by tool and outcome.", "tool", "outcome")}
	for _, t := range catalog {
		for _, oc := range []string{outcomeOK, outcomeNotFound, outcomeInvalid, outcomeUnavailable, outcomeTimeout, outcomeError} {
			k.calls.WithLabelValues(t.def.Name, oc)
		}
	}
	return k
}

// Outcomes of a tool call (the outcome label).
const (
	outcomeOK          = "ok"
	outcomeNotFound    = "not_found"
	outcomeInvalid     = "invalid_arguments"
	outcomeRefused     = "refused"
	outcomeUnavailable = "unavailable"
	outcomeTimeout     = "timeout"
	outcomeError       = "error"
	outcomeUnknown     = "unknown_tool"
)

// Set is the tools one caller may use in one turn.
type Set struct {
	kit    *Kit
	caller Caller
	ledger *cite.Ledger
}

// For returns the caller's tools for one turn, reporting to ledger.
func (k *Kit) For(caller Caller, ledger *cite.Ledger) *Set {
	return &Set{kit: k, caller: caller, ledger: ledger}
}

// Defs are the definitions of the tools the caller's role may use.
func (s *Set) Defs() []llm.Tool {
	var out []llm.Tool
	for _, t := range catalog {
		if may(s.caller.Role, t.role) {
			out = append(out, t.def)
		}
	}
	return out
}

// Call runs the named tool with the model's JSON arguments and returns
// what the model gets back: the data, or an error object it can explain.
// It never fails: a bad call is the model's to recover from.
func (s *Set) Call(ctx context.Context, name, args string) string {
	t, ok := byName[name]
	if !ok {
		s.kit.calls.WithLabelValues("unknown", outcomeUnknown).Inc()
		return errorResult(outcomeUnknown, "there is no tool called "+strconv.Quote(text.Clip(name, 64)))
	}
	if !may(s.caller.Role, t.role) {
		s.kit.calls.WithLabelValues(name, outcomeRefused).Inc()
		return errorResult(outcomeRefused, "the caller's role may not use this tool")
	}
	data, records, err := t.run(ctx, s, json.RawMessage(args))
	outcome := outcomeOf(err)
	s.kit.calls.WithLabelValues(name, outcome).Inc()
	if err != nil {
		if outcome == outcomeError || outcome == outcomeUnavailable {
			// The cause is for the operator; arguments (names, ids) stay out.
			s.kit.opts.Log.WarnContext(ctx, "tool call failed", "tool", name, "outcome", outcome, "err", err.Error())
		}
		return errorResult(outcome, detail(err))
	}
	if !s.kit.opts.SharePII {
		data = redact(data)
	}
	body, truncated, fits := fit(map[string]any{"tool": name, "data": data}, s.kit.opts.MaxResultBytes)
	if !fits {
		return errorResult(outcomeError, "the result is too large to show; ask for fewer records")
	}
	if truncated {
		// Say so, so the model does not present a shortened list as complete.
		body = append(bytes.TrimSuffix(body, []byte("}")), `,"truncated":true}`...)
	}
	// Only what the model was shown can be cited or named without a flag.
	var shown any
	_ = json.Unmarshal(body, &shown)
	s.ledger.Know(identifiers(shown)...)
	s.ledger.Add(shownRecords(records, shown)...)
	return string(body)
}

// shownRecords keeps the records whose id the model actually saw (a list
// cut to fit loses its tail, and those records are not cited).
func shownRecords(records []cite.Record, shown any) []cite.Record {
	ids := map[string]bool{}
	for _, id := range identifiers(shown) {
		ids[id] = true
	}
	var out []cite.Record
	for _, r := range records {
		if ids[r.ID] || r.Type == cite.Search || r.Type == cite.Report || r.Type == cite.AuditLog {
			out = append(out, r)
		}
	}
	return out
}

func outcomeOf(err error) string {
	var ae *apiError
	var ie invalidError
	switch {
	case err == nil:
		return outcomeOK
	case errors.As(err, &ie):
		return outcomeInvalid
	case errors.Is(err, errRefused):
		return outcomeRefused
	case errors.As(err, &ae) && ae.Status == 404:
		return outcomeNotFound
	case errors.As(err, &ae) && (ae.Status == 400 || ae.Status == 422):
		return outcomeInvalid
	case errors.As(err, &ae) && (ae.Status == 401 || ae.Status == 403):
		return outcomeRefused
	case errors.Is(err, context.Canceled):
		return outcomeError
	case breaker.IsTimeout(err):
		return outcomeTimeout
	case errors.Is(err, errUnavailable):
		return outcomeUnavailable
	}
	return outcomeError
}

// detail is what the model is told about a failed call.
func detail(err error) string {
	var ae *apiError
	var ie invalidError
	switch {
	case errors.As(err, &ie):
		return ie.Error()
	case errors.Is(err, errRefused):
		return "that request is not allowed: ids are letters, digits, '_', '.' or '-'"
	case errors.As(err, &ae) && ae.Detail != "":
		return ae.Detail
	case errors.As(err, &ae):
		return ae.Error()
	case breaker.IsTimeout(err):
		return "the service did not answer in time"
	case errors.Is(err, errUnavailable):
		return "the service is unavailable right now"
	}
	return "the lookup failed"
}

func errorResult(code, detail string) string {
	b, _ := json.Marshal(map[string]string{"error": code, "detail": detail})
	return string(b)
}

type invalidError struct{ field, msg string }

func (e invalidError) Error() string { return e.field + ": " + e.msg }

// tool is one function the model may call.
type tool struct {
	def  llm.Tool
	role string
	run  func(ctx context.Context, s *Set, args json.RawMessage) (any, []cite.Record, error)
}

var byName = map[string]tool{}

func init() {
	for _, t := range catalog {
		byName[t.def.Name] = t
	}
}

// Tool names.
const (
	SearchProviders    = "search_providers"
	GetProvider        = "get_provider"
	GetLatestResult    = "get_latest_result"
	GetAuditLog        = "get_audit_log"
	ListNeedingReview  = "list_providers_needing_review"
	ListExpiring       = "list_expiring_licenses"
	GetStatsSummary    = "get_stats_summary"
	maxListLimit       = 20
	defaultListLimit   = 10
	historyRunsToShow  = 5
	providerIDArgument = "provider_id"
)

func object(props map[string]any, required ...string) map[string]any {
	o := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

var (
	providerIDProp = map[string]any{"type": "string", "description": "The provider's id, as returned by search_providers (e.g. provider_001)."}
	limitProp      = map[string]any{"type": "integer", "minimum": 1, "maximum": maxListLimit, "description": "How many to return (default 10)."}
	stateProp      = map[string]any{"type": "string", "description": "Two-letter US state of a license, e.g. TX."}
)

var catalog = []tool{
	{role: "reader", run: searchProviders, def: llm.Tool{Name: SearchProviders,
		Description: "Search providers by name or NPI (q), license state, specialty or latest decision. Returns at most 20.",
		Parameters: object(map[string]any{
			"q":         map[string]any{"type": "string", "description": "Part of a name, or an NPI."},
			"state":     stateProp,
			"specialty": map[string]any{"type": "string"},
			"decision":  map[string]any{"type": "string", "enum": domain.Decisions},
			"limit":     limitProp,
		})}},
	{role: "reader", run: getProvider, def: llm.Tool{Name: GetProvider,
		Description: "Get one provider's record: NPI, name, specialty, licenses, board certifications, latest decision and dates.",
		Parameters:  object(map[string]any{providerIDArgument: providerIDProp}, providerIDArgument)}},
	{role: "reader", run: getLatestResult, def: llm.Tool{Name: GetLatestResult,
		Description: "Get a provider's latest credentialing run (decision, reasons, every check with its evidence: source, source version, matched record) and a summary of earlier runs.",
		Parameters:  object(map[string]any{providerIDArgument: providerIDProp}, providerIDArgument)}},
	{role: "reader", run: getAuditLog, def: llm.Tool{Name: GetAuditLog,
		Description: "Get a provider's audit log, newest first: who changed what and when.",
		Parameters:  object(map[string]any{providerIDArgument: providerIDProp, "limit": limitProp}, providerIDArgument)}},
	{role: "reader", run: listNeedingReview, def: llm.Tool{Name: ListNeedingReview,
		Description: "List providers whose latest decision is needs_review (a person must look at them), optionally in one license state.",
		Parameters:  object(map[string]any{"state": stateProp, "limit": limitProp})}},
	{role: "reader", run: listExpiring, def: llm.Tool{Name: ListExpiring,
		Description: "List state licenses expiring within a number of days from today (soonest first), with their providers, and the counts per window (7, 14, 30, 60, 90 days).",
		Parameters: object(map[string]any{
			"within_days": map[string]any{"type": "integer", "minimum": 1, "maximum": 365, "description": "Window in days from today (default 90)."},
			"state":       stateProp,
			"limit":       limitProp,
		})}},
	{role: "reader", run: getStatsSummary, def: llm.Tool{Name: GetStatsSummary,
		Description: "Get the headline counts: providers by decision, never credentialed, stale verifications, exclusions flagged, recredentialing due, licenses expired or expiring.",
		Parameters:  object(map[string]any{})}},
}

// decodeArgs reads the model's arguments into dst. An empty string is {}.
// Unknown fields are ignored (models add them), wrong types are not.
func decodeArgs(raw json.RawMessage, dst any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return invalidError{"arguments", "must be a JSON object matching the tool's parameters"}
	}
	return nil
}

var statePattern = regexp.MustCompile(`^[A-Z]{2}$`)

type listArgs struct {
	Q         string `json:"q"`
	State     string `json:"state"`
	Specialty string `json:"specialty"`
	Decision  string `json:"decision"`
	Limit     int    `json:"limit"`
}

func (a *listArgs) query() (url.Values, error) {
	q := url.Values{}
	a.State = strings.ToUpper(strings.TrimSpace(a.State))
	switch {
	case a.Limit < 0 || a.Limit > maxListLimit:
		return nil, invalidError{"limit", fmt.Sprintf("must be 1-%d", maxListLimit)}
	case a.State != "" && !statePattern.MatchString(a.State):
		return nil, invalidError{"state", "must be a two-letter state code"}
	case len(a.Q) > 200 || len(a.Specialty) > 200:
		return nil, invalidError{"q", "is too long"}
	}
	if a.Decision != "" && !domain.Decision(a.Decision).Valid() {
		return nil, invalidError{"decision", "must be approved, denied, needs_review or incomplete"}
	}
	if a.Limit == 0 {
		a.Limit = defaultListLimit
	}
	for k, v := range map[string]string{"q": strings.TrimSpace(a.Q), "state": a.State, "specialty": strings.TrimSpace(a.Specialty), "decision": a.Decision} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", strconv.Itoa(a.Limit))
	return q, nil
}

type page struct {
	Items      []map[string]any `json:"items"`
	NextCursor string           `json:"next_cursor"`
}

func searchProviders(ctx context.Context, s *Set, raw json.RawMessage) (any, []cite.Record, error) {
	var a listArgs
	if err := decodeArgs(raw, &a); err != nil {
		return nil, nil, err
	}
	return s.listProviders(ctx, a)
}

func listNeedingReview(ctx context.Context, s *Set, raw json.RawMessage) (any, []cite.Record, error) {
	var a struct {
		State string `json:"state"`
		Limit int    `json:"limit"`
	}
	if err := decodeArgs(raw, &a); err != nil {
		return nil, nil, err
	}
	return s.listProviders(ctx, listArgs{State: a.State, Limit: a.Limit, Decision: string(domain.NeedsReview)})
}

func (s *Set) listProviders(ctx context.Context, a listArgs) (any, []cite.Record, error) {
	q, err := a.query()
	if err != nil {
		return nil, nil, err
	}
	var p page
	if err := s.kit.client.get(ctx, s.caller, "providers", q, &p); err != nil {
		return nil, nil, err
	}
	search := "/providers?" + q.Encode()
	records := []cite.Record{{Citation: cite.Citation{Type: cite.Search, ID: search, URL: search}, Direct: true}}
	items := make([]any, 0, len(p.Items))
	for _, it := range p.Items {
		items = append(items, it)
		if r, ok := providerRecord(it, false); ok {
			records = append(records, r)
		}
	}
	return map[string]any{"providers": items, "more": p.NextCursor != ""}, records, nil
}

type providerArgs struct {
	ProviderID string `json:"provider_id"`
	Limit      int    `json:"limit"`
}

func (a *providerArgs) check() error {
	a.ProviderID = strings.TrimSpace(a.ProviderID)
	if a.ProviderID == "" {
		return invalidError{providerIDArgument, "is required"}
	}
	if a.Limit < 0 || a.Limit > maxListLimit {
		return invalidError{"limit", fmt.Sprintf("must be 1-%d", maxListLimit)}
	}
	if a.Limit == 0 {
		a.Limit = defaultListLimit
	}
	return nil
}

func providerArg(raw json.RawMessage) (providerArgs, error) {
	var a providerArgs
	if err := decodeArgs(raw, &a); err != nil {
		return a, err
	}
	return a, a.check()
}

func getProvider(ctx context.Context, s *Set, raw json.RawMessage) (any, []cite.Record, error) {
	a, err := providerArg(raw)
	if err != nil {
		return nil, nil, err
	}
	var p map[string]any
	if err := s.kit.client.get(ctx, s.caller, "provider", nil, &p, a.ProviderID); err != nil {
		return nil, nil, err
	}
	var records []cite.Record
	if r, ok := providerRecord(p, true); ok {
		records = append(records, r)
	}
	return map[string]any{"provider": p}, records, nil
}

func getLatestResult(ctx context.Context, s *Set, raw json.RawMessage) (any, []cite.Record, error) {
	a, err := providerArg(raw)
	if err != nil {
		return nil, nil, err
	}
	var res struct {
		ProviderID string           `json:"provider_id"`
		Latest     map[string]any   `json:"latest"`
		History    []map[string]any `json:"history"`
	}
	q := url.Values{"limit": {strconv.Itoa(historyRunsToShow + 1)}}
	if err := s.kit.client.get(ctx, s.caller, "results", q, &res, a.ProviderID); err != nil {
		return nil, nil, err
	}
	records := []cite.Record{providerCitation(res.ProviderID, true)}
	if res.Latest != nil {
		if id, _ := res.Latest["run_id"].(string); id != "" {
			records = append(records, runRecord(id, true))
		}
		records = append(records, sourceVersions(res.Latest)...)
	}
	// Earlier runs in brief: the model gets the decisions over time, the
	// latest run carries the evidence.
	latestID, _ := res.Latest["run_id"].(string)
	var earlier []any
	for _, run := range res.History {
		id, _ := run["run_id"].(string)
		if id == "" || id == latestID || len(earlier) == historyRunsToShow {
			continue
		}
		earlier = append(earlier, map[string]any{"run_id": id, "decision": run["decision"], "reasons": run["reasons"],
			"finished_at": run["finished_at"], "batch_id": run["batch_id"]})
		records = append(records, runRecord(id, false))
	}
	if earlier == nil {
		earlier = []any{}
	}
	var latest any
	if res.Latest != nil {
		latest = res.Latest
	}
	return map[string]any{"provider_id": res.ProviderID, "latest": latest, "earlier_runs": earlier}, records, nil
}

func getAuditLog(ctx context.Context, s *Set, raw json.RawMessage) (any, []cite.Record, error) {
	a, err := providerArg(raw)
	if err != nil {
		return nil, nil, err
	}
	var p page
	q := url.Values{"limit": {strconv.Itoa(a.Limit)}}
	if err := s.kit.client.get(ctx, s.caller, "logs", q, &p, a.ProviderID); err != nil {
		return nil, nil, err
	}
	entries := make([]any, 0, len(p.Items))
	for _, e := range p.Items {
		entries = append(entries, e)
	}
	logURL := "/logs/" + url.PathEscape(a.ProviderID)
	records := []cite.Record{{Citation: cite.Citation{Type: cite.AuditLog, ID: a.ProviderID, URL: logURL}, Direct: true}}
	return map[string]any{"provider_id": a.ProviderID, "entries": entries, "more": p.NextCursor != ""}, records, nil
}

func getStatsSummary(ctx context.Context, s *Set, raw json.RawMessage) (any, []cite.Record, error) {
	var sum map[string]any
	if err := s.kit.client.get(ctx, s.caller, "stats_summary", nil, &sum); err != nil {
		return nil, nil, err
	}
	records := []cite.Record{{Citation: cite.Citation{Type: cite.Report, ID: "stats_summary", URL: "/stats/summary"}, Direct: true}}
	return map[string]any{"summary": sum}, records, nil
}

func listExpiring(ctx context.Context, s *Set, raw json.RawMessage) (any, []cite.Record, error) {
	var a struct {
		WithinDays int    `json:"within_days"`
		State      string `json:"state"`
		Limit      int    `json:"limit"`
	}
	if err := decodeArgs(raw, &a); err != nil {
		return nil, nil, err
	}
	if a.WithinDays == 0 {
		a.WithinDays = 90
	}
	if a.WithinDays < 1 || a.WithinDays > 365 {
		return nil, nil, invalidError{"within_days", "must be 1-365"}
	}
	// The state and limit rules are the provider list's.
	la := listArgs{State: a.State, Limit: a.Limit}
	base, err := la.query()
	if err != nil {
		return nil, nil, err
	}
	q := url.Values{"kind": {"license"}, "within": {strconv.Itoa(a.WithinDays)}, "limit": base["limit"]}
	if la.State != "" {
		q.Set("state", la.State)
	}
	var rep map[string]any
	if err := s.kit.client.get(ctx, s.caller, "stats_expiring", q, &rep); err != nil {
		return nil, nil, err
	}
	report := "/stats/expiring?" + q.Encode()
	records := []cite.Record{{Citation: cite.Citation{Type: cite.Report, ID: report, URL: report}, Direct: true}}
	if items, ok := rep["items"].([]any); ok {
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				if r, ok := providerRecord(m, false); ok {
					records = append(records, r)
				}
			}
		}
	}
	return map[string]any{"report": rep}, records, nil
}

// providerRecord is the citation of a provider object (a Provider, or a
// report row with provider_id), named by id, NPI and full name.
func providerRecord(p map[string]any, direct bool) (cite.Record, bool) {
	id, _ := p["id"].(string)
	if id == "" {
		id, _ = p["provider_id"].(string)
	}
	if id == "" {
		return cite.Record{}, false
	}
	r := providerCitation(id, direct)
	if npi, _ := p["npi"].(string); npi != "" {
		r.Mentions = append(r.Mentions, npi)
	}
	first, _ := p["first_name"].(string)
	last, _ := p["last_name"].(string)
	if first != "" && last != "" {
		r.Mentions = append(r.Mentions, first+" "+last)
	}
	// Report rows carry the name whole.
	if name, _ := p["name"].(string); strings.Contains(strings.TrimSpace(name), " ") {
		r.Mentions = append(r.Mentions, strings.TrimSpace(name))
	}
	return r, true
}

func providerCitation(id string, direct bool) cite.Record {
	return cite.Record{Citation: cite.Citation{Type: cite.Provider, ID: id, URL: "/providers/" + url.PathEscape(id)},
		Direct: direct, Mentions: []string{id}}
}

func runRecord(id string, direct bool) cite.Record {
	return cite.Record{Citation: cite.Citation{Type: cite.Result, ID: id, URL: "/results/run/" + url.PathEscape(id)},
		Direct: direct, Mentions: []string{id}}
}

// sourceVersions cites the imported files a run's checks rest on
// (evidence.source_version and each item's).
func sourceVersions(run map[string]any) []cite.Record {
	var out []cite.Record
	seen := map[string]bool{}
	add := func(sv any) {
		m, ok := sv.(map[string]any)
		if !ok {
			return
		}
		n, ok := m["import_id"].(float64)
		if !ok {
			return
		}
		id := strconv.FormatInt(int64(n), 10)
		if !seen[id] {
			seen[id] = true
			out = append(out, cite.Record{Citation: cite.Citation{Type: cite.SourceVersion, ID: id, URL: "/admin/imports/" + id}, Direct: true})
		}
	}
	checks, _ := run["checks"].([]any)
	for _, c := range checks {
		cm, _ := c.(map[string]any)
		ev, _ := cm["evidence"].(map[string]any)
		add(ev["source_version"])
		items, _ := ev["items"].([]any)
		for _, it := range items {
			im, _ := it.(map[string]any)
			add(im["source_version"])
		}
	}
	return out
}

// identifiers are the record ids in a decoded tool result: values of id
// fields and NPIs, and import ids.
func identifiers(v any) []string {
	var out []string
	var walk func(x any)
	walk = func(x any) {
		switch t := x.(type) {
		case map[string]any:
			for k, y := range t {
				switch s := y.(type) {
				case string:
					if k == "id" || k == "npi" || strings.HasSuffix(k, "_id") {
						out = append(out, s)
					}
				case float64:
					if k == "import_id" || k == "id" {
						out = append(out, strconv.FormatInt(int64(s), 10))
					}
				default:
					walk(y)
				}
			}
		case []any:
			for _, y := range t {
				walk(y)
			}
		}
	}
	walk(v)
	return out
}
