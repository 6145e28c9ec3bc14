package apiclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// seen is what the test server received.
type seen struct {
	method, uri, ctype, auth, idem, accept, body string
	length                                       int64
}

// server answers every request with status and body, recording it.
func server(t *testing.T, status int, body string) (*httptest.Server, *seen) {
	t.Helper()
	got := &seen{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*got = seen{r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), r.Header.Get("Authorization"),
			r.Header.Get("Idempotency-Key"), r.Header.Get("Accept"), string(b), r.ContentLength}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s, got
}

func TestRequestsAreTheDocumentedOnes(t *testing.T) {
	tests := []struct {
		name string
		call func(c *Client) error
		want seen
	}{
		{"import", func(c *Client) error {
			r, _, err := c.ImportSource(context.Background(), "leie", strings.NewReader("a,b\n"), 4, "UPDATED.csv", "2026-11-01")
			if err == nil && (r.ID != 7 || r.Status != "active") {
				t.Errorf("import record %+v", r)
			}
			return err
		}, seen{method: "POST", uri: "/admin/imports/leie?file_date=2026-11-01&file_name=UPDATED.csv", ctype: "text/csv", body: "a,b\n", length: 4}},
		{"submit", func(c *Client) error {
			_, _, err := c.SubmitBatch(context.Background(), "application/json", strings.NewReader(`{"provider_ids":["p1"]}`), "k-1")
			return err
		}, seen{method: "POST", uri: "/batch-credential", ctype: "application/json", idem: "k-1", body: `{"provider_ids":["p1"]}`, length: 23}},
		{"progress", func(c *Client) error {
			_, _, err := c.BatchProgress(context.Background(), "b/1", 1)
			return err
		}, seen{method: "GET", uri: "/results/batch/b%2F1?limit=1"}},
		{"cancel", func(c *Client) error {
			_, _, err := c.CancelBatch(context.Background(), "b1")
			return err
		}, seen{method: "DELETE", uri: "/batch/b1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, got := server(t, 200, `{"id":7,"status":"active","batch_id":"b1"}`)
			if err := tt.call(&Client{BaseURL: s.URL + "/", APIKey: "pc_k"}); err != nil {
				t.Fatal(err)
			}
			tt.want.auth, tt.want.accept = "Bearer pc_k", "application/json"
			if tt.want.length == 0 {
				tt.want.length = got.length // GET/DELETE: no body
			}
			if *got != tt.want {
				t.Errorf("sent %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestErrorsCarryTheCode(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   Error
		text   string
	}{
		{"api error", 409, `{"code":"conflict","detail":"batch b1 has already finished"}`,
			Error{Status: 409, Code: "conflict", Detail: "batch b1 has already finished"}, "HTTP 409 conflict: batch b1 has already finished"},
		{"bad lines", 422, `{"code":"import_failed","detail":"1 bad line","errors":[{"line":3,"field":"npi","reason":"bad"}]}`,
			Error{Status: 422, Code: "import_failed", Detail: "1 bad line", Errors: []LineError{{3, "npi", "bad"}}}, "HTTP 422 import_failed: 1 bad line"},
		{"not the error schema", 502, `<html>bad gateway</html>`,
			Error{Status: 502, Body: "<html>bad gateway</html>"}, "HTTP 502: <html>bad gateway</html>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := server(t, tt.status, tt.body)
			_, raw, err := (&Client{BaseURL: s.URL}).CancelBatch(context.Background(), "b1")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v", err)
			}
			if e.Status != tt.want.Status || e.Code != tt.want.Code || e.Detail != tt.want.Detail || e.Body != tt.want.Body ||
				len(e.Errors) != len(tt.want.Errors) || (len(e.Errors) > 0 && e.Errors[0] != tt.want.Errors[0]) {
				t.Errorf("error %+v, want %+v", *e, tt.want)
			}
			if e.Error() != tt.text || string(raw) != tt.body {
				t.Errorf("text %q raw %q", e.Error(), raw)
			}
		})
	}
}

func TestAnAnswerThatIsNotJSONIsAnError(t *testing.T) {
	s, _ := server(t, 200, `not json`)
	if _, _, err := (&Client{BaseURL: s.URL}).BatchProgress(context.Background(), "b1", 0); err == nil || !strings.Contains(err.Error(), "not the documented JSON") {
		t.Fatalf("err %v", err)
	}
}
