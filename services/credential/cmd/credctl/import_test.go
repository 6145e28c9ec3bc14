package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "UPDATED.csv")
	content := strings.Repeat(`"A","B"`+"\n", 5000)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	var got struct {
		path, query, auth, ctype string
		body                     []byte
		length                   int64
	}
	fail := false
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.path, got.query, got.auth, got.ctype = r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		got.length = r.ContentLength
		got.body, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		if fail {
			w.WriteHeader(422)
			fmt.Fprint(w, `{"code":"import_failed","detail":"line 3: EXCLDATE: date \"x\" is not YYYYMMDD"}`)
			return
		}
		if r.URL.Query().Get("kind") == "supplement" {
			fmt.Fprint(w, `{"id":8,"source":"leie","status":"active","kind":"supplement","version":3,"rows":4990,"file_rows":12,
				"encoding":"windows-1252","changes":{"added":2,"removed":9,"replaced":0,"unmatched":1},"replaced":7}`)
			return
		}
		fmt.Fprintf(w, `{"id":7,"source":"leie","status":"active","version":2,"rows":5000,"bytes":%d,"sha256":"ab","load_ms":10,"index_ms":2,"swap_ms":1,"replaced":6}`, len(got.body))
	}))
	defer s.Close()

	var out, errb bytes.Buffer
	code := run([]string{"import", "--source", "leie", "--file", path, "--url", s.URL, "--api-key", "k123", "--file-date", "2024-10-01", "--quiet"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got.path != "/admin/imports/leie" || got.query != "file_date=2024-10-01&file_name=UPDATED.csv" || got.auth != "Bearer k123" ||
		got.ctype != "text/csv" || string(got.body) != content || got.length != int64(len(content)) {
		t.Errorf("request: %s?%s auth %q type %q len %d body %d bytes", got.path, got.query, got.auth, got.ctype, got.length, len(got.body))
	}
	if !strings.Contains(out.String(), "import 7: leie version 2 active, 5000 rows") || !strings.Contains(out.String(), "replaced import 6") {
		t.Errorf("output %q", out.String())
	}

	fail = true
	out.Reset()
	errb.Reset()
	code = run([]string{"import", "--source", "leie", "--file", path, "--url", s.URL, "--quiet"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "HTTP 422 import_failed: line 3: EXCLDATE") {
		t.Errorf("failure: exit %d, stderr %q", code, errb.String())
	}
	// A supplement: the kind and the shrink override go as query parameters,
	// the answer's changes are printed.
	fail = false
	out.Reset()
	code = run([]string{"import", "--source", "leie", "--file", path, "--url", s.URL, "--kind", "supplement", "--allow-shrink", "--quiet"}, &out, &errb)
	if code != 0 || got.query != "allow_shrink=true&file_name=UPDATED.csv&kind=supplement" {
		t.Errorf("kind and allow-shrink: exit %d, query %q", code, got.query)
	}
	if !strings.Contains(out.String(), "supplement of 12 rows applied to import 7: 2 added, 9 removed, 0 replaced, 1 matched nothing") ||
		!strings.Contains(out.String(), "transcoded from windows-1252") {
		t.Errorf("supplement output %q", out.String())
	}
	if code := run([]string{"import", "--file", path}, &out, &errb); code != 2 {
		t.Errorf("missing --source: exit %d", code)
	}
	if code := run([]string{"nope"}, &out, &errb); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
}

// -h lists every flag with its default; the API key from the environment
// must not be one of them, while the key is still sent.
func TestHelpDoesNotPrintTheAPIKey(t *testing.T) {
	const key = "pc_not_for_the_terminal"
	t.Setenv(envAPIKey, key)
	for _, args := range [][]string{{"import", "-h"}, {"batch", "submit", "-h"}, {"batch", "status", "-h"}, {"batch", "cancel", "-h"}} {
		var out, errOut bytes.Buffer
		run(args, &out, &errOut)
		if !strings.Contains(errOut.String(), "-api-key") {
			t.Fatalf("%v: help lists no -api-key flag: %s", args, errOut.String())
		}
		if strings.Contains(out.String()+errOut.String(), key) {
			t.Errorf("%v: help prints the API key", args)
		}
	}
	var auth string
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"batch_id":"b1","status":"finished","counts":{}}`)
	}))
	defer s.Close()
	var out, errOut bytes.Buffer
	run([]string{"batch", "status", "--url", s.URL, "b1"}, &out, &errOut)
	if auth != "Bearer "+key {
		t.Errorf("Authorization = %q, want the key from %s", auth, envAPIKey)
	}
	run([]string{"batch", "status", "--url", s.URL, "--api-key", "pc_flag", "b1"}, &out, &errOut)
	if auth != "Bearer pc_flag" {
		t.Errorf("Authorization = %q, want the --api-key flag's", auth)
	}
}
