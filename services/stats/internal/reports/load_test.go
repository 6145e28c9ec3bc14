package reports

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// holdLock takes an exclusive lock on the counts table in an open
// transaction: report queries on it wait until release is called.
func (k *kit) holdLock(table string) (release func()) {
	k.t.Helper()
	ctx := context.Background()
	conn, err := k.seed.Acquire(ctx)
	if err != nil {
		k.t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		k.t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		k.t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = tx.Rollback(ctx)
			conn.Release()
		})
	}
	k.t.Cleanup(release)
	return release
}

// listen serves the kit's app on a loopback port.
func (k *kit) listen() string {
	k.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		k.t.Fatal(err)
	}
	go func() { _ = k.srv.App.Listener(ln) }()
	k.t.Cleanup(func() { _ = k.srv.App.Shutdown() })
	return "http://" + ln.Addr().String()
}

// Fifty identical requests at once cost the replica one query: while the
// first waits on the database, the other 49 wait for its answer.
func TestConcurrentIdenticalRequestsShareOneQuery(t *testing.T) {
	t.Parallel()
	k := seeded(t, kitOptions{ttl: 30 * time.Second})
	base := k.listen()
	release := k.holdLock("credential.report_counts")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	const n = 50
	var wg sync.WaitGroup
	bodies := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(base + "/stats/decisions?from=2026-02-01&to=2026-03-31&interval=week&tz=America/New_York")
			if err != nil {
				bodies <- "error: " + err.Error()
				return
			}
			defer resp.Body.Close()
			var b strings.Builder
			buf := make([]byte, 4096)
			for {
				m, err := resp.Body.Read(buf)
				b.Write(buf[:m])
				if err != nil {
					break
				}
			}
			bodies <- resp.Status + " " + b.String()
		}()
	}
	// All fifty are in the service before the database answers the first.
	deadline := time.Now().Add(20 * time.Second)
	for k.metric("http_server_inflight_requests") < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	release()
	wg.Wait()
	close(bodies)
	var first string
	for b := range bodies {
		if !strings.HasPrefix(b, "200 ") {
			t.Fatalf("answer %s", b)
		}
		if first == "" {
			first = b
		} else if b != first {
			t.Fatal("the answers differ")
		}
	}
	miss := k.metric("stats_cache_requests_total", "report=decisions", "result=miss")
	shared := k.metric("stats_cache_requests_total", "report=decisions", "result=shared")
	hit := k.metric("stats_cache_requests_total", "report=decisions", "result=hit")
	if q := k.queries.n.Load(); q != 1 || miss != 1 || shared+hit != n-1 || shared == 0 {
		t.Fatalf("%d queries; miss %v shared %v hit %v: want 1 query, 1 miss, %d shared or hit", q, miss, shared, hit, n-1)
	}
	if k.metric("stats_query_duration_seconds", "report=decisions") != 1 {
		t.Error("query time not recorded once")
	}
	// Within the TTL the answer comes from the cache.
	if a := k.get("/stats/decisions?from=2026-02-01&to=2026-03-31&interval=week&tz=America/New_York"); a.header.Get("X-Cache") != "hit" ||
		k.queries.n.Load() != 1 {
		t.Errorf("X-Cache %q after %d queries", a.header.Get("X-Cache"), k.queries.n.Load())
	}
}

// A query past the statement timeout is stopped by the database and
// answered 504 timeout; nothing is cached, and the next request succeeds.
func TestStatementTimeout(t *testing.T) {
	t.Parallel()
	k := seeded(t, kitOptions{ttl: 30 * time.Second, timeout: 300 * time.Millisecond})
	release := k.holdLock("credential.report_counts")
	start := time.Now()
	a := k.get("/stats/decisions")
	if a.status != 504 || a.body["code"] != "timeout" || time.Since(start) > 10*time.Second {
		t.Fatalf("%d %s after %s", a.status, a.raw, time.Since(start))
	}
	release()
	if a := k.get("/stats/decisions"); a.status != 200 || a.header.Get("X-Cache") != "miss" {
		t.Fatalf("after the lock: %d %s %q", a.status, a.raw, a.header.Get("X-Cache"))
	}
}

// The reports read the reporting views and nothing else: a role granted
// only those runs every report, and cannot read a credential table.
func TestReportsNeedOnlyTheReportingViews(t *testing.T) {
	t.Parallel()
	k := seeded(t, kitOptions{})
	ctx := context.Background()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	role := "stats_reader_" + hex.EncodeToString(b)
	db := k.url[strings.LastIndex(k.url, "/")+1 : strings.Index(k.url, "?")]
	k.exec(`CREATE ROLE ` + role + ` LOGIN;
		GRANT CONNECT ON DATABASE ` + db + ` TO ` + role + `;
		GRANT USAGE ON SCHEMA reporting TO ` + role + `;
		GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO ` + role)
	t.Cleanup(func() {
		_, _ = k.seed.Exec(context.Background(), `DROP OWNED BY `+role+`; DROP ROLE `+role)
	})
	roleURL := strings.Replace(k.url, "postgres@", role+"@", 1)
	k.serve(kitOptions{readURL: roleURL})
	for _, p := range []string{"/stats/summary", "/stats/decisions?from=2026-02-01&to=2026-03-31&tz=America/New_York",
		"/stats/checks", "/stats/turnaround", "/stats/expiring", "/stats/expiring?kind=board_certification",
		"/stats/expiring?kind=recredentialing", "/stats/expiring?kind=verification", "/stats/batches", "/stats/monitoring",
		"/stats/expiring?format=csv"} {
		if a := k.get(p); a.status != 200 {
			t.Errorf("%s as %s: %d %s", p, role, a.status, a.raw)
		}
	}
	conn, err := pgx.Connect(ctx, roleURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM credential.providers`).Scan(&n); err == nil ||
		!strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("the reader role reads a credential table: %v", err)
	}
}
