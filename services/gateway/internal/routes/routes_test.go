package routes

import (
	"slices"
	"strings"
	"testing"

	"github.com/provcred/gateway/internal/auth"
)

func TestTableIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Table {
		if r.Upstream != Credential && r.Upstream != Stats && r.Upstream != Chat {
			t.Errorf("%s: unknown upstream %q", r.Path, r.Upstream)
		}
		if r.Role == auth.RoleNone {
			t.Errorf("%s: no role", r.Path)
		}
		for _, m := range r.Methods {
			k := m + " " + r.Path
			if seen[k] {
				t.Errorf("%s registered twice", k)
			}
			seen[k] = true
			// Reads never need more than reader, except the admin area
			// (imports, and webhooks, which hold signing secrets).
			if (m == "GET" || m == "HEAD") && r.Role != auth.RoleReader && r.Upstream == Credential &&
				r.Path != "/admin/imports" && r.Path != "/admin/imports/*" && r.Path != "/webhooks" && r.Path != "/webhooks/*" {
				t.Errorf("%s needs %s to read", k, r.Role)
			}
			// POST /chat is a question, answered from read routes only.
			if m != "GET" && m != "HEAD" && r.Role == auth.RoleReader && r.Path != "/chat" {
				t.Errorf("%s lets a reader write", k)
			}
		}
		if r.Import != IsImportPath(trimWildcard(r.Path)) {
			t.Errorf("%s: Import=%v but IsImportPath disagrees", r.Path, r.Import)
		}
	}
}

func trimWildcard(p string) string {
	if len(p) > 2 && p[len(p)-2:] == "/*" {
		return p[:len(p)-1] + "x"
	}
	return p
}

func TestImportRole(t *testing.T) {
	tests := map[string]auth.Role{"/providers/import": auth.RoleAdmin, "/batch-credential": auth.RoleOperator,
		"/admin/imports": auth.RoleAdmin, "/admin/imports/sam": auth.RoleAdmin}
	for p, want := range tests {
		if got, ok := ImportRole(p); !ok || got != want {
			t.Errorf("ImportRole(%q) = %s %v, want %s", p, got, ok, want)
		}
	}
	if _, ok := ImportRole("/batch/b1"); ok {
		t.Error("/batch/b1 is not an import route")
	}
}

func TestIsImportPath(t *testing.T) {
	tests := map[string]bool{
		"/providers/import": true, "/admin/imports": true, "/admin/imports/leie": true,
		// Fiber routes these to the import routes: they must be import paths too.
		"/ADMIN/IMPORTS/leie": true, "/Providers/Import": true,
		"/providers": false, "/providers/p1": false, "/admin/importsx": false, "/stats/summary": false, "/": false,
	}
	for p, want := range tests {
		if got := IsImportPath(p); got != want {
			t.Errorf("IsImportPath(%q) = %v", p, got)
		}
	}
}

// The stats reports go to the stats service for any reader, HEAD included.
func TestStatsReportsAreReaderRoutes(t *testing.T) {
	for _, p := range []string{"/stats/summary", "/stats/decisions", "/stats/checks", "/stats/turnaround", "/stats/expiring",
		"/stats/batches", "/stats/monitoring"} {
		for _, m := range []string{"GET", "HEAD"} {
			var got *Route
			for i, r := range Table {
				base, wild := strings.CutSuffix(r.Path, "/*")
				if (r.Path == p || wild && strings.HasPrefix(p, base+"/")) && slices.Contains(r.Methods, m) {
					got = &Table[i]
					break
				}
			}
			if got == nil || got.Upstream != Stats || got.Role != auth.RoleReader || got.Import {
				t.Errorf("%s %s routes to %+v", m, p, got)
			}
		}
	}
}
