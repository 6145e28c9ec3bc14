package openapi

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	platformpage "github.com/provcred/platform/page"

	"github.com/provcred/gateway/internal/routes"
)

type doc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
	Comp    struct {
		Schemas struct {
			ErrorCode struct {
				Enum []string `json:"enum"`
			} `json:"ErrorCode"`
		} `json:"schemas"`
	} `json:"components"`
}

func load(t *testing.T) doc {
	t.Helper()
	var s doc
	if err := json.Unmarshal(Spec(), &s); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if !strings.HasPrefix(s.OpenAPI, "3.1") {
		t.Fatalf("openapi version %q", s.OpenAPI)
	}
	return s
}

// pattern turns a Fiber route pattern into a regexp over concrete paths.
func pattern(p string) *regexp.Regexp {
	q := regexp.QuoteMeta(p)
	q = regexp.MustCompile(`:[a-z_]+`).ReplaceAllString(q, `[^/]+`)
	q = strings.ReplaceAll(q, `\*`, `.*`)
	return regexp.MustCompile("^" + q + "$")
}

// concrete fills an OpenAPI template ({id} -> x1).
func concrete(p string) string { return regexp.MustCompile(`\{[a-z_]+\}`).ReplaceAllString(p, "x1") }

func routed(method, path string) bool {
	for _, rt := range routes.Table {
		for _, m := range rt.Methods {
			if strings.EqualFold(m, method) && pattern(rt.Path).MatchString(path) {
				return true
			}
		}
	}
	return false
}

func TestSpecMatchesRouteTable(t *testing.T) {
	s := load(t)
	open := map[string]bool{}
	for _, p := range routes.Open {
		open[p] = true
	}
	// Every documented operation is served: by the gateway itself or routed.
	for path, ops := range s.Paths {
		for method := range ops {
			if open[path] {
				if method != "get" {
					t.Errorf("%s %s: open endpoints are GET only", method, path)
				}
				continue
			}
			if !routed(method, concrete(path)) {
				t.Errorf("documented %s %s is not in the route table", strings.ToUpper(method), path)
			}
		}
	}
	for p := range open {
		if _, ok := s.Paths[p]; !ok {
			t.Errorf("open endpoint %s is not documented", p)
		}
	}
	// Every route of the table is documented by at least one operation.
	for _, rt := range routes.Table {
		re := pattern(rt.Path)
		for _, m := range rt.Methods {
			if m == "HEAD" || (m == "PATCH" && strings.HasSuffix(rt.Path, "*")) {
				continue // HEAD mirrors GET; PATCH is passed through generically
			}
			found := false
			for path, ops := range s.Paths {
				if _, ok := ops[strings.ToLower(m)]; ok && re.MatchString(concrete(path)) {
					found = true
				}
			}
			if !found {
				t.Errorf("route %s %s has no documented operation", m, rt.Path)
			}
		}
	}
}

func TestDocsMarkdownInSync(t *testing.T) {
	s := load(t)
	md, err := os.ReadFile("../../../../docs/api.md")
	if err != nil {
		t.Fatalf("docs/api.md: %v", err)
	}
	doc := string(md)
	var paths []string
	for p := range s.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		for m := range s.Paths[p] {
			if !strings.Contains(doc, strings.ToUpper(m)+" "+p) {
				t.Errorf("docs/api.md does not document %s %s", strings.ToUpper(m), p)
			}
		}
	}
	codes := s.Comp.Schemas.ErrorCode.Enum
	if len(codes) < 10 {
		t.Fatalf("error codes: %v", codes)
	}
	for _, c := range codes {
		if !strings.Contains(doc, "`"+c+"`") {
			t.Errorf("docs/api.md does not list error code %s", c)
		}
	}
	for _, c := range []string{"unauthorized", "forbidden", "rate_limited", "upstream_unavailable", "upstream_timeout", "overloaded", "body_too_large"} {
		found := false
		for _, e := range codes {
			found = found || e == c
		}
		if !found {
			t.Errorf("gateway error code %s is not in the spec", c)
		}
	}
}

// The pages load only what the binary serves: no other origin, no inline
// script (the Content-Security-Policy allows none), every asset embedded.
func TestDocsPagesAreSelfContained(t *testing.T) {
	srcs := regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	for name, p := range map[string][]byte{"docs.html": docsPage, "redoc.html": redocPage} {
		s := string(p)
		if strings.Contains(s, "http://") || strings.Contains(s, "https://") || strings.Contains(s, "//cdn") {
			t.Errorf("%s refers to another origin", name)
		}
		if regexp.MustCompile(`<script(?:\s+type="module")?>`).MatchString(s) || strings.Contains(s, " on") && regexp.MustCompile(` on[a-z]+=`).MatchString(s) {
			t.Errorf("%s has inline script", name)
		}
		for _, m := range srcs.FindAllStringSubmatch(s, -1) {
			u := m[1]
			if u == "docs" || u == "redoc" || u == "openapi.json" || u == "data:," {
				continue
			}
			a, ok := strings.CutPrefix(u, "docs/assets/")
			if !ok {
				t.Errorf("%s loads %s, not an embedded asset", name, u)
				continue
			}
			if _, err := assets.ReadFile("assets/" + a); err != nil {
				t.Errorf("%s loads %s: %v", name, u, err)
			}
		}
	}
	if !strings.Contains(string(redocPage), `spec-url="openapi.json"`) {
		t.Error("the Redoc page does not load the document")
	}
	js, _ := assets.ReadFile("assets/docs.js")
	if !strings.Contains(string(js), `url: "openapi.json"`) || !strings.Contains(string(js), "tryItOutEnabled: true") {
		t.Error("Swagger UI is not set up on the document with try it out")
	}
	// The vendored packages keep their licenses and say their versions.
	for _, f := range []string{"assets/swagger-ui/LICENSE", "assets/swagger-ui/NOTICE", "assets/redoc/LICENSE", "assets/VERSIONS"} {
		if b, err := assets.ReadFile(f); err != nil || len(b) == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// Every ?limit= the spec describes has the bounds the services enforce
// (platform/page).
func TestLimitBoundsMatchThePager(t *testing.T) {
	d, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, item := range d.Paths.Map() {
		for method, op := range item.Operations() {
			for _, p := range op.Parameters {
				if p.Value.Name != "limit" {
					continue
				}
				n++
				s := p.Value.Schema.Value
				if s.Min == nil || *s.Min != 1 || s.Max == nil || *s.Max != platformpage.MaxLimit {
					t.Errorf("%s %s: limit %v..%v, the services accept 1..%d", method, path, s.Min, s.Max, platformpage.MaxLimit)
				}
				if path != "/stats/expiring" && path != "/stats/batches" && s.Default != platformpage.DefaultLimit && s.Default != float64(platformpage.DefaultLimit) {
					t.Errorf("%s %s: limit default %v, the services use %d", method, path, s.Default, platformpage.DefaultLimit)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no limit parameter found")
	}
	md, err := os.ReadFile("../../../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("`?limit=` (1-%d, default %d)", platformpage.MaxLimit, platformpage.DefaultLimit); !strings.Contains(string(md), want) {
		t.Errorf("docs/api.md does not say %s", want)
	}
}
