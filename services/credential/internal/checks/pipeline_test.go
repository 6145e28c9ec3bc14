package checks

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/provcred/credential/internal/audit"
	"github.com/provcred/credential/internal/gen"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/roster"
	"github.com/provcred/credential/internal/sources/importer"
	"github.com/provcred/platform/domain"
	"github.com/provcred/platform/semaphore"
	"github.com/provcred/platform/server"
)

// TestPipelineAgainstGenerator is the credential module's end-to-end test:
// the generator's edge-case data set goes through the service's own HTTP
// endpoints (source imports, roster import, POST /credential) on a real
// listener and a real database, and every decision must equal expected.csv.
func TestPipelineAgainstGenerator(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	k := newKit(t)
	o := gen.DefaultOptions(120)
	o.Seed = 20261127
	g := gen.New(o)
	e := k.engine(Options{})
	files := semaphore.New("file", 4, 5*time.Second, k.reg)
	srv := server.New(server.Options{Service: "credential", Logger: k.log, Metrics: k.reg, BodyLimit: 1 << 20,
		StreamPaths: []string{"/providers/import", "/admin/imports"}})
	(&providers.Handler{Store: k.store, Import: roster.ImportHandler(k.store, files, 50000, 64<<20)}).Routes(srv.App)
	im := importer.New(k.pool, k.log)
	importer.NewHandler(im, files, time.Hour).Routes(srv.App)
	(&Handler{Engine: e}).Routes(srv.App)
	(&results.Handler{Store: k.runs}).Routes(srv.App)
	(&audit.Handler{Pool: k.pool}).Routes(srv.App)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.App.Listener(ln) }()
	t.Cleanup(func() { _ = srv.App.Shutdown() })
	base := "http://" + ln.Addr().String()

	send := func(method, path, ctype string, body []byte, out any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set(server.HeaderActor, "key_pipeline")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s = %d %s", method, path, resp.StatusCode, b)
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatal(err)
			}
		}
	}
	write := func(f func(io.Writer) error) []byte {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	for _, s := range []struct {
		source string
		f      func(io.Writer) error
	}{{"nppes", g.WriteNPPES}, {"leie", g.WriteLEIE}, {"sam", g.WriteSAM}, {"licenses", g.WriteLicenses}} {
		send("POST", "/admin/imports/"+s.source+"?file_date=2026-11-01", "text/csv", write(s.f), nil)
	}
	send("POST", "/providers/import", "text/csv", write(g.WriteRoster), nil)

	exp, err := csv.NewReader(bytes.NewReader(write(g.WriteExpected))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, row := range exp[1:] {
		id, c, want := row[0], gen.Case(row[2]), domain.Decision(row[3])
		var run results.Run
		send("POST", "/credential/"+id, "", nil, &run)
		seen[string(c)]++
		if run.Decision != want {
			t.Errorf("%s (%s): decision %s, want %s; reasons %+v", id, c, run.Decision, want, run.Reasons)
		}
	}
	for c := range gen.Expected {
		if seen[string(c)] == 0 {
			t.Errorf("the data set has no %s provider", c)
		}
	}
	var logs struct {
		Items []audit.Record `json:"items"`
	}
	send("GET", "/logs?event=credential.completed&actor=key_pipeline&limit=500", "", nil, &logs)
	if len(logs.Items) != len(exp)-1 {
		t.Errorf("%d credential.completed entries, want %d", len(logs.Items), len(exp)-1)
	}
	t.Logf("cases: %v", fmt.Sprint(seen))
}
