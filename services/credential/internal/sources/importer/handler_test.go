package importer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/semaphore"
	"github.com/provcred/platform/server"
)

const requestTimeout = 200 * time.Millisecond

func startServer(t *testing.T) (string, *semaphore.Semaphore) {
	t.Helper()
	pool, _ := testdb.New(t)
	m := metrics.New("credential")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	files := semaphore.New("file", 1, 0, m)
	s := server.New(server.Options{Service: "credential", Logger: log, Metrics: m, BodyLimit: 1 << 20,
		StreamPaths: []string{"/admin/imports"}, ShutdownTimeout: time.Second,
		RequestTimeout: requestTimeout}) // API calls get it; imports must not
	NewHandler(New(pool, log), files, time.Hour).Routes(s.App)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.App.Listener(ln) }()
	t.Cleanup(func() { _ = s.App.Shutdown() })
	return "http://" + ln.Addr().String(), files
}

func call(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("X-Actor-Id", "key_admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d non-JSON body %q", method, url, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

func TestHandler(t *testing.T) {
	t.Parallel()
	base, files := startServer(t)
	// Larger than the body limit: must stream.
	big := leieFile(20000, "BIG")
	if len(big) <= 1<<20 {
		t.Fatalf("test file of %d bytes does not exceed the body limit", len(big))
	}
	start := time.Now()
	st, body := call(t, "POST", base+"/admin/imports/leie?file_name=UPDATED.csv&file_date=2024-10-01", big)
	if d := time.Since(start); d < requestTimeout {
		t.Logf("the upload took %s, under the request timeout: its exemption is not exercised", d)
	}
	if st != 200 || body["status"] != "active" || body["rows"] != float64(20000) || body["actor"] != "key_admin" ||
		body["version"] != float64(1) || body["load_ms"] == nil {
		t.Fatalf("upload: %d %v", st, body)
	}
	bad := leieHeader + leieRow("A", "B", "", "20200101") + leieRow("C", "D", "", "2020/01/01")
	st, body = call(t, "POST", base+"/admin/imports/leie", bad)
	if st != 422 || body["code"] != "import_failed" || !strings.HasPrefix(body["detail"].(string), "line 3: EXCLDATE") {
		t.Fatalf("bad file: %d %v", st, body)
	}
	st, body = call(t, "POST", base+"/admin/imports/dea", "x")
	if st != 400 || body["code"] != "unknown_source" {
		t.Fatalf("unknown source: %d %v", st, body)
	}
	st, body = call(t, "POST", base+"/admin/imports/leie?file_date=yesterday", "x")
	if st != 422 || body["code"] != "validation_failed" {
		t.Fatalf("bad file_date: %d %v", st, body)
	}
	if err := files.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A small body: with a large one the server's early answer races the
	// client still writing (it may see a connection reset instead).
	st, body = call(t, "POST", base+"/admin/imports/leie", leieFile(3, "BUSY"))
	files.Release()
	if st != 503 || body["code"] != "file_operations_busy" {
		t.Fatalf("semaphore full: %d %v", st, body)
	}

	// List: newest first, cursor pagination.
	for i := 0; i < 3; i++ {
		call(t, "POST", base+"/admin/imports/sam", "Classification,Name,First,Middle,Last,Exclusion Type,Active Date,Termination Date,NPI\nFirm,ACME,,,,X,01/01/2020,,\n")
	}
	seen := map[float64]bool{}
	url := base + "/admin/imports?limit=2"
	pages := 0
	for url != "" {
		st, body = call(t, "GET", url, "")
		if st != 200 {
			t.Fatalf("list: %d %v", st, body)
		}
		for _, it := range body["items"].([]any) {
			id := it.(map[string]any)["id"].(float64)
			if seen[id] {
				t.Fatalf("id %v listed twice", id)
			}
			seen[id] = true
		}
		url = ""
		if c, _ := body["next_cursor"].(string); c != "" {
			url = base + "/admin/imports?limit=2&cursor=" + c
		}
		pages++
	}
	if len(seen) != 5 || pages != 3 {
		t.Errorf("listed %d imports in %d pages, want 5 in 3", len(seen), pages)
	}
	st, body = call(t, "GET", base+"/admin/imports?source=sam", "")
	if st != 200 || len(body["items"].([]any)) != 3 {
		t.Errorf("filter by source: %d %v", st, body)
	}
	st, body = call(t, "GET", base+"/admin/imports?cursor=garbage", "")
	if st != 400 || body["code"] != "invalid_cursor" {
		t.Errorf("bad cursor: %d %v", st, body)
	}
	st, body = call(t, "GET", base+"/admin/imports/1", "")
	if st != 200 || body["source"] != "leie" {
		t.Errorf("get: %d %v", st, body)
	}
	st, body = call(t, "GET", base+fmt.Sprintf("/admin/imports/%d", 999999), "")
	if st != 404 || body["code"] != "not_found" || body["detail"] != "no such import" {
		t.Errorf("get missing: %d %v", st, body)
	}
}

func send(t *testing.T, method, url, ctype, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d non-JSON body %q", method, url, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// Every refusal of an upload is a 4xx with a stable code; the file-level
// ones name the line.
func TestHandlerRefusals(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t)
	if st, body := call(t, "POST", base+"/admin/imports/leie?file_name=UPDATED.csv", leieFile(10, "BASE")); st != 200 {
		t.Fatalf("base list: %d %v", st, body)
	}
	huge := strings.Repeat("N", 1_000_000)
	samHeader := "Classification,Name,First,Middle,Last,Exclusion Type,Active Date,Termination Date,NPI\n"
	licHeader := "state,license_number,status,expiration_date,last_name,first_name\n"
	nppesRow := func(last string) string {
		return `"1234567893","1","` + last + `","JOHN","","","","","","","","","",""` + "\n"
	}
	tests := []struct {
		name, path, ctype, body string
		status                  int
		code, detail            string
	}{
		{"no content type", "/admin/imports/leie", "", leieFile(1, "X"), 415, "unsupported_media_type", "text/csv"},
		{"form content type", "/admin/imports/leie", "application/x-www-form-urlencoded", leieFile(1, "X"), 415, "unsupported_media_type", ""},
		{"JSON content type", "/admin/imports/sam", "application/json", `{"a":1}`, 415, "unsupported_media_type", ""},
		{"csv with charset", "/admin/imports/leie?file_name=UPDATED.csv", "text/csv; charset=windows-1252", leieFile(6, "Y"), 200, "", ""},
		{"shrunk list", "/admin/imports/leie?file_name=UPDATED.csv", "text/csv", leieFile(2, "Z"), 409, "import_shrink_refused",
			"the file has 2 rows, the active version 6: fewer than 50%"},
		{"shrunk list allowed", "/admin/imports/leie?file_name=UPDATED.csv&allow_shrink=true", "text/csv", leieFile(2, "Z"), 200, "", ""},
		{"allow_shrink not a boolean", "/admin/imports/leie?allow_shrink=perhaps", "text/csv", leieFile(2, "Z"), 422, "validation_failed", "allow_shrink"},
		{"unknown kind", "/admin/imports/leie?kind=weekly", "text/csv", leieFile(2, "Z"), 422, "validation_failed", "kind: must be one of full, supplement"},
		{"supplement sent as full", "/admin/imports/leie?file_name=1701REIN.csv&kind=full", "text/csv", leieFile(2, "Z"), 422,
			"import_kind_mismatch", `"1701REIN.csv" is a supplement file`},
		{"supplement without a list", "/admin/imports/nppes?kind=increment", "text/csv", nppesHeader + nppesRow("A"), 409, "no_active_version", ""},
		{"1 MB name, LEIE", "/admin/imports/leie", "text/csv", leieFile(3, "X") + leieRow(huge, "B", "", "20200101"), 422,
			"import_failed", `line 5: column "LASTNAME" is longer than 4096 bytes`},
		{"1 MB name, SAM", "/admin/imports/sam", "text/csv", samHeader + "Individual,,A,,B,X,01/01/2020,,\nIndividual,," + huge + ",,B,X,01/01/2020,,\n",
			422, "import_failed", `line 3: column "First" is longer`},
		{"1 MB name, licenses", "/admin/imports/licenses", "text/csv", licHeader + "TX,1,active,,A,B\nTX,2,active,," + huge + ",B\n",
			422, "import_failed", `line 3: column "last_name" is longer`},
		{"1 MB name, NPPES", "/admin/imports/nppes", "text/csv", nppesHeader + nppesRow(huge), 422, "import_failed",
			`line 2: column "Provider Last Name (Legal Name)" is longer`},
		{"long name under the field limit", "/admin/imports/licenses", "text/csv", licHeader + "TX,2,active,," + strings.Repeat("N", 300) + ",B\n",
			422, "import_failed", "line 2: last_name is longer than 256 bytes"},
		{"BOM before a quoted header", "/admin/imports/leie?file_name=UPDATED.csv", "text/csv", "\ufeff" + leieFile(6, "BOM"), 200, "", ""},
	}
	for _, tt := range tests { // in order: the base list changes
		st, body := send(t, "POST", base+tt.path, tt.ctype, tt.body)
		if st != tt.status || (tt.code != "" && body["code"] != tt.code) ||
			(tt.detail != "" && !strings.Contains(fmt.Sprint(body["detail"]), tt.detail)) {
			t.Errorf("%s: %d %v; want %d %s …%s…", tt.name, st, body, tt.status, tt.code, tt.detail)
		}
	}
}

// An upper-case import path routes to the upload (Fiber matches paths
// case-insensitively) and must be streamed like the lower-case one, not
// capped at the body limit.
func TestUpperCasePathIsStreamed(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t)
	big := leieFile(20000, "BIG")
	st, body := call(t, "POST", base+"/ADMIN/Imports/leie?file_name=UPDATED.csv", big)
	if st != 200 || body["rows"] != float64(20000) {
		t.Fatalf("upper-case path: %d %v", st, body)
	}
}
