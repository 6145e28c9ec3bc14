package openapi

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/provcred/gateway/internal/auth"
	"github.com/provcred/gateway/internal/routes"
)

// The document is OpenAPI 3.1 as kin-openapi reads it: every schema a valid
// JSON Schema 2020-12 schema, every $ref resolved, every example valid
// against its schema (docs/api.md says why kin-openapi, not libopenapi).
func TestSpecIsValidOpenAPI31(t *testing.T) {
	doc, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatal(err)
	}
}

// The validator this test relies on must catch what it is trusted with: a
// document broken in each of these ways is refused.
func TestValidationCatchesBrokenDocuments(t *testing.T) {
	cases := map[string]func(m map[string]any){
		"unknown type": func(m map[string]any) {
			schema(m, "Error")["properties"].(map[string]any)["detail"] = map[string]any{"type": "strin"}
		},
		"dangling ref": func(m map[string]any) {
			schema(m, "Provider")["properties"].(map[string]any)["npi"] = map[string]any{"$ref": "#/components/schemas/Nope"}
		},
		"example against its schema": func(m map[string]any) {
			op := m["paths"].(map[string]any)["/providers/import"].(map[string]any)["post"].(map[string]any)
			ok := op["responses"].(map[string]any)["200"].(map[string]any)
			ok["content"].(map[string]any)["application/json"].(map[string]any)["example"] = map[string]any{"rows": "two"}
		},
		"3.0 boolean exclusiveMinimum": func(m map[string]any) {
			schema(m, "LineError")["properties"].(map[string]any)["line"] = map[string]any{"type": "integer", "exclusiveMinimum": true}
		},
		"response without description": func(m map[string]any) {
			ops := m["paths"].(map[string]any)["/providers"].(map[string]any)["get"].(map[string]any)
			delete(ops["responses"].(map[string]any)["200"].(map[string]any), "description")
		},
	}
	for name, breakIt := range cases {
		t.Run(name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(Spec(), &m); err != nil {
				t.Fatal(err)
			}
			breakIt(m)
			b, _ := json.Marshal(m)
			doc, err := openapi3.NewLoader().LoadFromData(b)
			if err == nil {
				err = doc.Validate(context.Background(), openapi3.EnableExamplesValidation())
			}
			if err == nil {
				t.Fatal("the broken document passed")
			}
		})
	}
}

// Load reads the embedded document with kin-openapi, every $ref resolved.
func Load() (*openapi3.T, error) {
	return openapi3.NewLoader().LoadFromData(Spec())
}

// apiMarkdown is docs/api.md.
var apiMarkdown = func() string {
	b, err := os.ReadFile("../../../../docs/api.md")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

func schema(m map[string]any, name string) map[string]any {
	return m["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
}

// rawOp is what the strictness rules read of an operation.
type rawOp struct {
	OperationID string                     `json:"operationId"`
	Role        string                     `json:"x-required-role"`
	Security    *[]map[string][]string     `json:"security"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

// Rules beyond the OpenAPI schema that make the document a contract: every
// operation named and answering every status the gateway can give it, with
// the shared error responses and their code lists drawn from the one enum.
func TestSpecIsStrict(t *testing.T) {
	doc, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Paths map[string]map[string]rawOp `json:"paths"`
	}
	if err := json.Unmarshal(Spec(), &raw); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(Spec()), `"nullable"`) {
		t.Error(`"nullable" is OpenAPI 3.0: use a type list with "null"`)
	}
	open := map[string]bool{}
	for _, p := range routes.Open {
		open[p] = true
	}
	ids := map[string]string{}
	codes := doc.Components.Schemas["ErrorCode"].Value.Enum
	for path, item := range raw.Paths {
		for method, op := range item {
			where := strings.ToUpper(method) + " " + path
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", where)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s: operationId %s is also %s's", where, op.OperationID, other)
			}
			ids[op.OperationID] = where
			if open[path] {
				if op.Security == nil || len(*op.Security) != 0 {
					t.Errorf("%s: an open endpoint needs security: []", where)
				}
				continue
			}
			if op.Security != nil {
				t.Errorf("%s: routed operations take the document's security", where)
			}
			rt := route(method, concrete(path))
			if rt == nil {
				continue // TestSpecMatchesRouteTable reports it
			}
			if op.Role != rt.Role.String() {
				t.Errorf("%s: x-required-role %q, the route table says %s", where, op.Role, rt.Role)
			}
			want := []string{"400", "401", "429", "500", "503", "504"}
			if rt.Role > auth.RoleReader {
				want = append(want, "403")
			}
			if strings.Contains(path, "{") && !no404[where] {
				want = append(want, "404")
			}
			for _, s := range want {
				if _, ok := op.Responses[s]; !ok {
					t.Errorf("%s: no %s response", where, s)
				}
			}
			if _, ok := op.Responses["403"]; ok && rt.Role == auth.RoleReader {
				t.Errorf("%s: documents 403, but every key may call it", where)
			}
			o := doc.Paths.Find(path).GetOperation(strings.ToUpper(method))
			for status, r := range o.Responses.Map() {
				checkResponse(t, where+" "+status, status, r.Value, codes)
			}
		}
	}
}

// no404 are the operations with a path parameter that never answer 404:
// the parameter names a source (400 unknown_source), or an audit trail,
// which outlives its provider (an unknown one is an empty page).
var no404 = map[string]bool{"POST /admin/imports/{ref}": true, "GET /logs/{provider_id}": true}

// Every component is used: a copy left behind when a piece moved into a
// component, or a component nobody refers to, is a second home for a rule.
func TestEveryComponentIsUsed(t *testing.T) {
	var d struct {
		Components map[string]map[string]json.RawMessage `json:"components"`
	}
	if err := json.Unmarshal(Spec(), &d); err != nil {
		t.Fatal(err)
	}
	for kind, items := range d.Components {
		if kind == "securitySchemes" {
			continue
		}
		for name := range items {
			if !strings.Contains(string(Spec()), `"#/components/`+kind+`/`+name+`"`) {
				t.Errorf("#/components/%s/%s is not used", kind, name)
			}
		}
	}
}

// route is the route table's entry for a concrete path.
func route(method, path string) *routes.Route {
	for i, rt := range routes.Table {
		if slices.ContainsFunc(rt.Methods, func(m string) bool { return strings.EqualFold(m, method) }) && pattern(rt.Path).MatchString(path) {
			return &routes.Table[i]
		}
	}
	return nil
}

func checkResponse(t *testing.T, where, status string, r *openapi3.Response, codes []any) {
	t.Helper()
	if r.Description == nil || *r.Description == "" {
		t.Errorf("%s: no description", where)
	}
	if status[0] == '2' {
		for _, h := range []string{"RateLimit", "RateLimit-Policy"} {
			if hr, ok := r.Headers[h]; !ok || !hr.Value.Required {
				t.Errorf("%s: the %s header is not documented as always sent", where, h)
			}
		}
	}
	if status[0] != '4' && status[0] != '5' {
		return
	}
	mt := r.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		t.Errorf("%s: an error answer without the JSON error schema", where)
		return
	}
	s := mt.Schema
	if s.Ref != "#/components/schemas/Error" && (len(s.Value.AllOf) == 0 || s.Value.AllOf[0].Ref != "#/components/schemas/Error") {
		t.Errorf("%s: the error schema is not the Error component", where)
		return
	}
	for _, sub := range s.Value.AllOf[1:] {
		c := sub.Value.Properties["code"]
		if c == nil || len(c.Value.Enum) == 0 {
			t.Errorf("%s: the code is not narrowed to this answer's codes", where)
			continue
		}
		for _, code := range c.Value.Enum {
			if !slices.Contains(codes, code) {
				t.Errorf("%s: code %v is not in the ErrorCode enum", where, code)
			}
			if want := codeStatus(code.(string)); want != "" && want != status {
				t.Errorf("%s: code %v is a %s answer", where, code, want)
			}
		}
	}
	if status == "429" {
		if h, ok := r.Headers["Retry-After"]; !ok || !h.Value.Required {
			t.Errorf("%s: 429 without Retry-After", where)
		}
	}
}

// codeStatus is the status docs/api.md's error table gives code.
func codeStatus(code string) string {
	for _, line := range strings.Split(apiMarkdown, "\n") {
		if strings.HasPrefix(line, "| `"+code+"` |") {
			return strings.TrimSpace(strings.Split(line, "|")[2])
		}
	}
	return ""
}

// Every object a response can carry is closed: a field the document does
// not name is a contract break (integrators' generated clients drop or
// reject it), so the contract test must see it.
func TestResponseObjectsAreClosed(t *testing.T) {
	doc, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var open []string
	seen := map[*openapi3.Schema]bool{}
	for path, item := range doc.Paths.Map() {
		if path == "/openapi.json" {
			continue // the document itself: any OpenAPI object
		}
		for method, op := range item.Operations() {
			for status, r := range op.Responses.Map() {
				for ct, mt := range r.Value.Content {
					if mt.Schema != nil {
						walkClosed(mt.Schema, fmt.Sprintf("%s %s %s %s", method, path, status, ct), true, seen, &open)
					}
				}
			}
		}
	}
	sort.Strings(open)
	for _, o := range open {
		t.Error(o)
	}
}

// freeForm are the objects whose keys are data (a report's config view, a
// matched source record): they are typed by their values, not closed.
var freeForm = []string{"concurrency", "system", "config", "matched_record", "before", "after", "x-events"}

func walkClosed(s *openapi3.SchemaRef, where string, mustClose bool, seen map[*openapi3.Schema]bool, open *[]string) {
	v := s.Value
	if v == nil || seen[v] {
		return
	}
	seen[v] = true
	name := where
	if s.Ref != "" {
		name = s.Ref
	}
	closed := (v.AdditionalProperties.Has != nil && !*v.AdditionalProperties.Has) ||
		(v.AdditionalProperties.Schema != nil) || v.UnevaluatedProperties.Has != nil && !*v.UnevaluatedProperties.Has
	for _, sub := range v.AllOf {
		if sub.Value == nil || sub.Value.AdditionalProperties.Has == nil || *sub.Value.AdditionalProperties.Has {
			continue
		}
		closed = true
		// A closed half refuses what the other halves add (JSON Schema
		// checks each half alone): only a half that narrows its fields may
		// sit beside it.
		for _, other := range v.AllOf {
			for k := range other.Value.Properties {
				if _, ok := sub.Value.Properties[k]; !ok {
					*open = append(*open, fmt.Sprintf("%s: an allOf half (%s) is closed, so %q of another half is always refused", name, sub.Ref, k))
				}
			}
		}
	}
	if mustClose && (len(v.Properties) > 0 || len(v.AllOf) > 0) && !closed {
		*open = append(*open, name+": an object without additionalProperties (or unevaluatedProperties): false")
	}
	// The halves of an allOf are closed by their whole.
	for _, sub := range v.AllOf {
		walkClosed(sub, where, false, seen, open)
	}
	for k, p := range v.Properties {
		if slices.Contains(freeForm, k) {
			continue
		}
		walkClosed(p, where+"."+k, true, seen, open)
	}
	if v.Items != nil {
		walkClosed(v.Items, where+"[]", true, seen, open)
	}
	for _, sub := range append(append([]*openapi3.SchemaRef{}, v.OneOf...), v.AnyOf...) {
		walkClosed(sub, where, true, seen, open)
	}
}
