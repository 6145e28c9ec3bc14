// Package routes is the gateway's route table: which public path goes to
// which service and which role it needs. It is data, so the proxy, the
// OpenAPI check and the docs test all read the same list.
package routes

import (
	"strings"

	"github.com/provcred/gateway/internal/auth"
)

// Upstream names, also the breaker suffixes (upstream_<name>).
const (
	Credential = "credential"
	Stats      = "stats"
	Chat       = "chat"
)

// Read and write method sets.
var (
	Read  = []string{"GET", "HEAD"}
	Write = []string{"POST", "PUT", "PATCH", "DELETE"}
)

// Route sends Methods on Path (a Fiber pattern) to Upstream for keys of at
// least Role.
type Route struct {
	Methods  []string
	Path     string
	Upstream string
	Role     auth.Role
	// Import routes stream the request body to the upstream (no size cap
	// beyond IMPORT_BODY_LIMIT_BYTES, no buffering) and get IMPORT_TIMEOUT.
	Import bool
	// Limit is the rate limit policy (route group) the route is charged
	// to; empty is LimitDefault.
	Limit string
}

// Rate limit route groups: each has its own policy (RATE_LIMIT_<GROUP>),
// and a request is charged to its route's group only.
const (
	LimitDefault    = "default"
	LimitChat       = "chat"
	LimitBatch      = "batch"
	LimitCredential = "credential"
	LimitImport     = "import"
)

// Limits are every route group.
var Limits = []string{LimitDefault, LimitChat, LimitBatch, LimitCredential, LimitImport}

// LimitGroup is r's route group.
func (r Route) LimitGroup() string {
	if r.Limit == "" {
		return LimitDefault
	}
	return r.Limit
}

// Table is every proxied route. Order matters where patterns overlap: the
// first match wins (POST /providers/import before POST /providers/*).
var Table = []Route{
	{Methods: []string{"POST"}, Path: "/providers/import", Upstream: Credential, Role: auth.RoleAdmin, Import: true, Limit: LimitImport},
	{Methods: Read, Path: "/providers", Upstream: Credential, Role: auth.RoleReader},
	{Methods: []string{"POST"}, Path: "/providers", Upstream: Credential, Role: auth.RoleAdmin},
	{Methods: Read, Path: "/providers/*", Upstream: Credential, Role: auth.RoleReader},
	{Methods: Write, Path: "/providers/*", Upstream: Credential, Role: auth.RoleAdmin},

	{Methods: []string{"POST"}, Path: "/credential/:provider_id", Upstream: Credential, Role: auth.RoleOperator, Limit: LimitCredential},
	// A batch may carry a roster CSV and wait (?wait=) for its results: it
	// streams and gets the import timeout, like the other uploads.
	{Methods: []string{"POST"}, Path: "/batch-credential", Upstream: Credential, Role: auth.RoleOperator, Import: true, Limit: LimitBatch},
	{Methods: []string{"DELETE"}, Path: "/batch/:batch_id", Upstream: Credential, Role: auth.RoleOperator},
	{Methods: Read, Path: "/batches", Upstream: Credential, Role: auth.RoleReader},

	{Methods: Read, Path: "/results", Upstream: Credential, Role: auth.RoleReader},
	{Methods: Read, Path: "/results/*", Upstream: Credential, Role: auth.RoleReader},
	{Methods: Read, Path: "/logs", Upstream: Credential, Role: auth.RoleReader},
	{Methods: Read, Path: "/logs/*", Upstream: Credential, Role: auth.RoleReader},

	// The review queue: readers see it, operators resolve.
	{Methods: Read, Path: "/reviews", Upstream: Credential, Role: auth.RoleReader},
	{Methods: Read, Path: "/reviews/*", Upstream: Credential, Role: auth.RoleReader},
	{Methods: []string{"POST"}, Path: "/reviews/*", Upstream: Credential, Role: auth.RoleOperator},

	{Methods: Read, Path: "/admin/imports", Upstream: Credential, Role: auth.RoleAdmin, Import: true},
	// Reading an import's progress is not an import: only POST is charged to it.
	{Methods: Read, Path: "/admin/imports/*", Upstream: Credential, Role: auth.RoleAdmin, Import: true},
	{Methods: []string{"POST"}, Path: "/admin/imports/*", Upstream: Credential, Role: auth.RoleAdmin, Import: true, Limit: LimitImport},

	// Webhooks hold signing secrets and reach outside: admin only. Events
	// carry no names or dates of birth: readers may pull them.
	{Methods: Read, Path: "/webhooks", Upstream: Credential, Role: auth.RoleAdmin},
	{Methods: []string{"POST"}, Path: "/webhooks", Upstream: Credential, Role: auth.RoleAdmin},
	{Methods: Read, Path: "/webhooks/*", Upstream: Credential, Role: auth.RoleAdmin},
	{Methods: []string{"POST", "DELETE"}, Path: "/webhooks/*", Upstream: Credential, Role: auth.RoleAdmin},
	{Methods: Read, Path: "/events", Upstream: Credential, Role: auth.RoleReader},

	{Methods: Read, Path: "/stats/*", Upstream: Stats, Role: auth.RoleReader},

	// Chat only reads (its tools call the read routes with the caller's own
	// key id and role), so a reader may ask.
	{Methods: []string{"POST"}, Path: "/chat", Upstream: Chat, Role: auth.RoleReader, Limit: LimitChat},
}

// Open lists the paths the gateway serves itself, without a key and without
// rate limiting (probes and documentation).
var Open = []string{"/livez", "/readyz", "/health", "/health/concurrency", "/metrics", "/openapi.json", "/docs", "/redoc"}

// StreamPrefixes are the path prefixes of the import routes, for the
// server's StreamPaths: their bodies reach the proxy as a stream, every other
// route's body is capped at BODY_LIMIT_BYTES before routing. Derived from
// Table so a new import route cannot be left capped.
func StreamPrefixes() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range Table {
		p := strings.TrimSuffix(r.Path, "/*")
		if r.Import && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// IsImportPath reports whether a raw request path belongs to an import
// route. It runs before routing (when the request headers arrive) to give
// the connection the import read timeout, so it matches by prefix.
func IsImportPath(path string) bool {
	_, ok := ImportRole(path)
	return ok
}

// ImportRole is the role an import route on path needs (the weakest, when
// methods differ), read from Table: a wildcard route matches by prefix.
func ImportRole(path string) (auth.Role, bool) {
	role, found := auth.RoleNone, false
	for _, r := range Table {
		if !r.Import {
			continue
		}
		base, wild := strings.CutSuffix(r.Path, "/*")
		if (wild && hasPrefix(path, base+"/")) || (!wild && strings.EqualFold(path, r.Path)) {
			if !found || r.Role < role {
				role = r.Role
			}
			found = true
		}
	}
	return role, found
}

// hasPrefix compares case-insensitively, as Fiber routes: an upper-case
// import path reaches the import route and must get its timeout.
func hasPrefix(s, p string) bool { return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) }
