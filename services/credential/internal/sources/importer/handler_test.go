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
	NewHandler(New(pool, log), files).Routes(s.App)
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
	if st != 404 {
		t.Errorf("get missing: %d %v", st, body)
	}
}
