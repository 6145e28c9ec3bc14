package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provcred/credential/internal/batch"
	"github.com/provcred/credential/internal/checks"
	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/seed"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/server"
)

// TestBatchCommand drives `credctl batch` against the real batch service and
// check engine on a real database, over HTTP.
func TestBatchCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := testdb.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ps := seed.Providers("cli_", 5)
	if err := seed.Load(ctx, pool, ps, log); err != nil {
		t.Fatal(err)
	}
	reg := metrics.New("credential")
	people := providers.NewStore(pool)
	opts := checks.Settings(config.Defaults().Checks)
	opts.DB, opts.Runs, opts.Providers, opts.Metrics, opts.Log = pool, results.NewStore(pool), people, reg, log
	bo := batch.Settings(config.Defaults())
	bo.Pool, bo.Credentialer, bo.Providers, bo.Metrics, bo.Logger = pool, checks.New(opts), people, reg, log
	bo.MaxWorkers, bo.MaxProviders, bo.Semaphore = 4, 100, batch.NewSemaphore(4, reg)
	bo.Config.BatchJobTimeout, bo.Config.BatchRescueStuckAfter = 10*time.Second, time.Minute
	bo.Config.BatchSnoozeBase, bo.Config.BatchSnoozeMax, bo.Config.BatchMaxAttempts = 100*time.Millisecond, time.Second, 2
	bo.Config.BatchWaitMax, bo.Config.BatchMetricsInterval = 10*time.Second, time.Hour
	svc, err := batch.New(bo)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop(ctx) }()
	app := server.New(server.Options{Service: "credential", Logger: log, Metrics: reg, BodyLimit: 1 << 20,
		ShutdownTimeout: time.Second, StreamPaths: []string{"/batch-credential"}})
	svc.Routes(app.App)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.App.Listener(ln) }()
	defer func() { _ = app.App.Shutdown() }()
	base := "http://" + ln.Addr().String()

	path := filepath.Join(t.TempDir(), "roster.csv")
	if err := os.WriteFile(path, []byte(seed.Roster(ps)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"batch", "submit", "--file", path, "--url", base, "--interval", "100ms", "--quiet"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "finished: 5/5 done") || !regexp.MustCompile(`approved\s+5`).MatchString(out.String()) {
		t.Fatalf("output %q (stderr %q)", out.String(), errb.String())
	}
	id := regexp.MustCompile(`batch ([0-9a-f-]{36})`).FindStringSubmatch(errb.String())
	if id == nil {
		t.Fatalf("no batch id in %q", errb.String())
	}

	out.Reset()
	if code := run([]string{"batch", "status", id[1], "--url", base}, &out, &errb); code != 0 || !strings.Contains(out.String(), "finished") {
		t.Fatalf("status: exit %d %q", code, out.String())
	}
	out.Reset()
	errb.Reset()
	code = run([]string{"batch", "submit", "--ids", "cli_00000, nobody ,cli_00000", "--url", base, "--quiet", "--interval", "100ms"}, &out, &errb)
	if code != 0 || !strings.Contains(errb.String(), "1 duplicate ids removed") || !strings.Contains(errb.String(), "1 unknown provider ids (e.g. nobody)") ||
		!regexp.MustCompile(`unknown_provider\s+1`).MatchString(out.String()) {
		t.Fatalf("ids: exit %d out %q err %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	// The batch has finished: nothing is left to cancel.
	if code := run([]string{"batch", "cancel", id[1], "--url", base}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "HTTP 409 conflict") {
		t.Fatalf("cancel a finished batch: exit %d %q %q", code, out.String(), errb.String())
	}
	errb.Reset()
	if code := run([]string{"batch", "status", "00000000-0000-4000-8000-000000000000", "--url", base}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "HTTP 404 not_found") {
		t.Fatalf("unknown: exit %d %q", code, errb.String())
	}
	if code := run([]string{"batch", "submit", "--url", base}, &out, &errb); code != 2 {
		t.Fatalf("no input: exit %d", code)
	}
}

// A poll the server never answers times out and is retried, instead of
// hanging the command until --timeout (24 h).
func TestFollowRetriesAHungPoll(t *testing.T) {
	t.Parallel()
	var polls atomic.Int32
	release := make(chan struct{})
	defer close(release)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if polls.Add(1) == 1 {
			select { // hang until the test ends or the client gives up
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"batch_id":"b1","status":"finished","total":1,"done":1,"counts":{"approved":1}}`)
	}))
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, _, err := followBatch(ctx, &client{base: s.URL, timeout: 200 * time.Millisecond}, "b1", 10*time.Millisecond, true, io.Discard)
	if err != nil || p.Status != "finished" || polls.Load() != 2 {
		t.Fatalf("progress %+v, err %v after %d polls; want finished after 2", p, err, polls.Load())
	}
}
