package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/events"
	"github.com/provcred/credential/internal/testdb"
	platformcfg "github.com/provcred/platform/config"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/server"
)

// kit is a webhooks Service on a fresh database with its own River client
// (in the binary it shares the batch service's) and the relay running.
type kit struct {
	t    *testing.T
	pool *pgxpool.Pool
	s    *Service
	reg  *metrics.Registry
	app  *server.Server
}

// testConfig is the defaults with retries in milliseconds.
func testConfig(t *testing.T) config.Webhooks {
	t.Helper()
	c, err := platformcfg.Parse[config.Config](map[string]string{
		"WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_TIMEOUT": "2s", "WEBHOOK_RETRY_BASE": "40ms",
		"WEBHOOK_RETRY_MAX_DELAY": "120ms", "WEBHOOK_RETRY_FOR": "1m", "WEBHOOK_RELAY_INTERVAL": "20ms",
		"WEBHOOK_DISABLE_AFTER": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	return c.Webhooks
}

func newKit(t *testing.T, mod func(*config.Webhooks)) *kit {
	t.Helper()
	pool, _ := testdb.New(t)
	cfg := testConfig(t)
	if mod != nil {
		mod(&cfg)
	}
	reg := metrics.New("credential")
	s, err := New(Options{Pool: pool, Config: cfg, Metrics: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	workers := river.NewWorkers()
	s.Register(workers)
	s.Attach(testdb.StartRiver(t, pool, workers, s.Queues()))
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Stop(sctx)
	})
	app := server.New(server.Options{Service: "credential", Metrics: reg, Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: time.Second, RequestTimeout: 10 * time.Second})
	s.Routes(app.App)
	(&events.Handler{Pool: pool, Links: events.Links{Base: cfg.EventLinkBaseURL}}).Routes(app.App)
	return &kit{t: t, pool: pool, s: s, reg: reg, app: app}
}

// create subscribes url to types (nil: all) and returns the webhook with its secret.
func (k *kit) create(url string, types ...string) *Webhook {
	k.t.Helper()
	w, err := k.s.Create(context.Background(), CreateRequest{URL: url, EventTypes: orEmpty(types)}, "admin", "")
	if err != nil {
		k.t.Fatal(err)
	}
	return w
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// write commits one event.
func (k *kit) write(e events.Event) {
	k.t.Helper()
	err := pgx.BeginFunc(context.Background(), k.pool, func(tx pgx.Tx) error { return events.Write(context.Background(), tx, e) })
	if err != nil {
		k.t.Fatal(err)
	}
}

// do sends a request to the service's routes.
func (k *kit) do(method, path, body string) (int, map[string]any) {
	k.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(server.HeaderActor, "key_admin")
	resp, err := k.app.App.Test(req, 15000)
	if err != nil {
		k.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			k.t.Fatalf("%s %s: %d %q is not a JSON object", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

func (k *kit) metric(name string, labels ...string) float64 {
	k.t.Helper()
	v, err := k.reg.Value(name, labels...)
	if err != nil {
		k.t.Fatal(err)
	}
	return v
}

// delivery reads the stored delivery of event to webhook (the first, not a replay).
func (k *kit) delivery(webhookID, eventID string) *Delivery {
	k.t.Helper()
	var id string
	err := k.pool.QueryRow(context.Background(), `SELECT id FROM webhook_deliveries WHERE webhook_id = $1 AND event_id = $2
		AND replay_of IS NULL`, webhookID, eventID).Scan(&id)
	if err != nil {
		k.t.Fatalf("delivery of %s to %s: %v", eventID, webhookID, err)
	}
	d, err := k.s.GetDelivery(context.Background(), k.pool, webhookID, id)
	if err != nil {
		k.t.Fatal(err)
	}
	return d
}

// receiver is a webhook endpoint that verifies every request the Standard
// Webhooks way (written here from the specification, apart from the
// service's Sign) and answers what respond says for the n-th request.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	secret    string
	requests  int
	respond   func(n int, r *http.Request) int
	accepted  map[string]int // webhook-id -> 2xx answers
	envelopes map[string]events.Envelope
	ids       []string // in order of first acceptance
	badSigs   int
}

func newReceiver(t *testing.T, respond func(n int, r *http.Request) int) *receiver {
	rc := &receiver{t: t, respond: respond, accepted: map[string]int{}, envelopes: map[string]events.Envelope{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setSecret(s string) { rc.mu.Lock(); rc.secret = s; rc.mu.Unlock() }

// verifySignature is the receiver's side of Standard Webhooks: the key is
// the base64 after whsec_; the signed content is id.timestamp.body; the
// header lists space-separated versioned signatures; the timestamp must be
// within five minutes.
func verifySignature(secret string, h http.Header, body []byte, now time.Time) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || id == "" || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.requests++
	n, secret := rc.requests, rc.secret
	rc.mu.Unlock()
	if !verifySignature(secret, r.Header, body, time.Now()) {
		rc.mu.Lock()
		rc.badSigs++
		rc.mu.Unlock()
		rc.t.Errorf("receiver: bad signature on %s", r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	code := http.StatusNoContent
	if rc.respond != nil {
		code = rc.respond(n, r)
	}
	if code >= 200 && code < 300 {
		var env events.Envelope
		if err := json.Unmarshal(body, &env); err != nil {
			rc.t.Errorf("receiver: body %q: %v", body, err)
		}
		if env.ID != r.Header.Get("webhook-id") {
			rc.t.Errorf("receiver: body id %s, header id %s", env.ID, r.Header.Get("webhook-id"))
		}
		rc.mu.Lock()
		if rc.accepted[env.ID] == 0 {
			rc.ids = append(rc.ids, env.ID)
		}
		rc.accepted[env.ID]++
		rc.envelopes[env.ID] = env
		rc.mu.Unlock()
	}
	w.WriteHeader(code)
}

// byType returns how many distinct events of each type were accepted.
func (rc *receiver) byType() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]int{}
	for _, e := range rc.envelopes {
		out[e.Type]++
	}
	return out
}

// acceptedIDs is every event id answered 2xx, in order of first acceptance.
func (rc *receiver) acceptedIDs() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.ids...)
}

// snapshot copies the accepted counts and envelopes.
func (rc *receiver) snapshot() (map[string]int, map[string]events.Envelope) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	counts, envs := map[string]int{}, map[string]events.Envelope{}
	for k, v := range rc.accepted {
		counts[k] = v
	}
	for k, v := range rc.envelopes {
		envs[k] = v
	}
	return counts, envs
}

func (rc *receiver) count(id string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.accepted[id]
}

func (rc *receiver) total() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.requests
}
