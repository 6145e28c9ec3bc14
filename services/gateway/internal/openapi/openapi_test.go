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

func TestDocsPageIsSelfContained(t *testing.T) {
	p := string(page)
	if strings.Contains(p, "http://") || strings.Contains(p, "https://") || strings.Contains(p, "<script src") {
		t.Fatal("the docs page must not load anything from elsewhere")
	}
	if !strings.Contains(p, `fetch("openapi.json")`) {
		t.Fatal("the docs page does not load the spec")
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
