package webhooks

// The real credential binary, SIGKILLed with deliveries pending: after a
// restart every event reaches the receiver. Skipped with -short.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/pgtest"
	"github.com/provcred/platform/poll"
	"github.com/provcred/platform/proctest"
)

const credentialPkg = "github.com/provcred/credential/cmd/credential"

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := proctest.SignedClient(internalauth.Identity{Actor: "key_admin", Role: "admin"}).Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func TestDeliveriesSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts credential processes; skipped with -short")
	}
	t.Parallel()
	url := pgtest.NewDatabase(t)
	bin := proctest.Binary(proctest.Build(t, credentialPkg), credentialPkg)
	var down atomic.Bool
	down.Store(true)
	rc := newReceiver(t, func(int, *http.Request) int {
		if down.Load() {
			return 503
		}
		return 200
	})
	env := map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "warn", "SHUTDOWN_TIMEOUT": "3s",
		"WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_TIMEOUT": "1s", "WEBHOOK_RETRY_BASE": "100ms",
		"WEBHOOK_RETRY_MAX_DELAY": "400ms", "WEBHOOK_RETRY_FOR": "10m", "WEBHOOK_RELAY_INTERVAL": "50ms",
		"BATCH_JOB_TIMEOUT": "2s", "BATCH_RESCUE_STUCK_AFTER": "5s"}

	first := proctest.Start(t, bin, "credential-1", env)
	first.WaitReady(t, 90*time.Second)
	code, w := post(t, first.URL+"/webhooks", `{"url":"`+rc.srv.URL+`/hook","event_types":["batch.completed.v1"]}`)
	if code != 201 {
		t.Fatalf("create webhook: %d %v", code, w)
	}
	rc.setSecret(w["secret"].(string))
	// Each batch of unknown providers finishes at once: one batch.completed each.
	const n = 12
	for i := range n {
		if code, b := post(t, first.URL+"/batch-credential", fmt.Sprintf(`{"provider_ids":["ghost_%d"]}`, i)); code != 202 && code != 200 {
			t.Fatalf("batch %d: %d %v", i, code, b)
		}
	}
	poll.Until(t, 60*time.Second, "every delivery attempted and failing", func() bool { return rc.total() >= 2*n })
	if err := first.Kill(); err != nil {
		t.Fatal(err)
	}
	// Events committed after the last relay, and deliveries retrying, are
	// all in the database; the receiver recovers while nothing runs.
	down.Store(false)
	second := proctest.Start(t, bin, "credential-2", env)
	second.WaitReady(t, 90*time.Second)

	pool := testdb.Connect(t, url)
	var want []string
	if err := pool.QueryRow(context.Background(), `SELECT array_agg(id) FROM events WHERE type = 'batch.completed.v1'`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if len(want) != n {
		t.Fatalf("%d batch.completed events, want %d", len(want), n)
	}
	poll.Until(t, 120*time.Second, "every event delivered after the restart", func() bool {
		for _, id := range want {
			if rc.count(id) == 0 {
				return false
			}
		}
		return true
	})
	poll.Until(t, 30*time.Second, "every delivery recorded delivered", func() bool {
		var open int
		_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'`).Scan(&open)
		return open == 0
	})
	dup := 0
	for _, id := range want {
		dup += rc.count(id) - 1
	}
	t.Logf("%d events delivered after SIGKILL; %d duplicate deliveries (at least once)", n, dup)
}
