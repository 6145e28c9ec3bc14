package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// The contract test: every request an end-to-end test sends through the
// gateway, and every answer it gets, is checked against the OpenAPI
// document the gateway serves (GET /openapi.json). An undocumented route,
// status, header value or response field fails the test that sent it.
//
// A request the document itself refuses (no key, a wrong field) is how the
// tests probe the error paths: it must be answered with a documented 4xx, so
// the document is never stricter than the server, nor the server laxer.

func init() {
	// Bodies the document describes as text: read as strings.
	for _, ct := range []string{"text/html", "text/event-stream", "application/zip"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
}

// contract is an http.RoundTripper that validates what passes through it.
type contract struct {
	t      testing.TB
	doc    *openapi3.T
	router routers.Router
	next   http.RoundTripper

	mu   sync.Mutex
	seen map[string]map[int]int // operationId -> status -> count
}

var (
	docsMu sync.Mutex
	docs   = map[string]*openapi3.T{} // by gateway URL
)

// newContract loads the document the gateway at base serves.
func newContract(t testing.TB, base string) *contract {
	t.Helper()
	docsMu.Lock()
	doc, ok := docs[base]
	docsMu.Unlock()
	if !ok {
		resp, err := http.Get(base + "/openapi.json")
		if err != nil {
			t.Fatalf("GET /openapi.json: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if doc, err = openapi3.NewLoader().LoadFromData(b); err != nil {
			t.Fatalf("the served document does not load: %v", err)
		}
		if err := doc.Validate(context.Background()); err != nil {
			t.Fatalf("the served document is not valid: %v", err)
		}
		// Match any host: the document's server is the relative "/".
		doc.Servers = nil
		docsMu.Lock()
		docs[base] = doc
		docsMu.Unlock()
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	c := &contract{t: t, doc: doc, router: r, next: http.DefaultTransport, seen: map[string]map[int]int{}}
	t.Cleanup(c.report)
	return c
}

// newClient is the tests' client of the gateway at base, every exchange
// checked against the document.
func newClient(t *testing.T, base string, timeout time.Duration) *client {
	return &client{t: t, base: base, http: &http.Client{Timeout: timeout, Transport: newContract(t, base)}}
}

var contractOptions = &openapi3filter.Options{
	IncludeResponseStatus: true,
	MultiError:            true,
	// The key's format is the scheme's; whether it is known is the gateway's
	// to say (401), which the response check then holds to the document.
	AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
		h := in.RequestValidationInput.Request.Header.Get("Authorization")
		if !strings.HasPrefix(h, "Bearer ") || len(h) == len("Bearer ") {
			return errors.New("no bearer token")
		}
		return nil
	},
}

func (c *contract) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	where := req.Method + " " + req.URL.RequestURI()
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		c.t.Errorf("contract: %s is not in the document: %v", where, err)
		return c.next.RoundTrip(req)
	}
	in := &openapi3filter.RequestValidationInput{Request: req.Clone(req.Context()), PathParams: params, Route: route, Options: contractOptions}
	in.Request.Body = io.NopCloser(bytes.NewReader(body))
	reqErr := openapi3filter.ValidateRequest(req.Context(), in)
	in.Request.Body = io.NopCloser(bytes.NewReader(body))

	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	c.count(route.Operation.OperationID, resp.StatusCode)
	if reqErr != nil && (resp.StatusCode < 400 || resp.StatusCode > 499) {
		c.t.Errorf("contract: %s breaks the document, yet the gateway answered %d: %v", where, resp.StatusCode, short(reqErr))
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// A stream is read as it comes: only its status and headers here.
		c.validate(where, in, resp, nil)
		return resp, nil
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	if err != nil {
		return resp, nil // the test reading the body sees the short body
	}
	c.validate(where, in, resp, raw)
	return resp, nil
}

func (c *contract) validate(where string, in *openapi3filter.RequestValidationInput, resp *http.Response, raw []byte) {
	opts := *contractOptions
	opts.ExcludeResponseBody = raw == nil
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: &opts}
	out.SetBodyBytes(raw)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		c.t.Errorf("contract: %s answered %d, not as documented: %v\nbody: %.600s", where, resp.StatusCode, short(err), raw)
	}
}

func (c *contract) count(op string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[op] == nil {
		c.seen[op] = map[int]int{}
	}
	c.seen[op][status]++
}

// report logs which operations and statuses the test exercised.
func (c *contract) report() {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lines []string
	for op, st := range c.seen {
		var s []string
		for code, n := range st {
			s = append(s, fmt.Sprintf("%d×%d", code, n))
		}
		sort.Strings(s)
		lines = append(lines, op+" "+strings.Join(s, " "))
	}
	sort.Strings(lines)
	c.t.Logf("contract: %d operations checked:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// short keeps a validation error readable: the first lines of each part.
func short(err error) string {
	s := err.Error()
	if len(s) > 2000 {
		s = s[:2000] + "…"
	}
	return s
}
