package webhooks

import (
	"context"
	"errors"
	"github.com/provcred/platform/poll"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/events"
)

// The published Standard Webhooks test vector, and what our receiver
// verifier says of our signature.
func TestSignMatchesTheStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	got, err := Sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	s, err := NewSecret()
	if err != nil || !strings.HasPrefix(s, "whsec_") || len(s) != len("whsec_")+44 {
		t.Fatalf("NewSecret = %q, %v", s, err)
	}
	body := []byte(`{"id":"evt_1"}`)
	now := time.Now()
	sig, _ := Sign(s, "evt_1", now.Unix(), body)
	h := http.Header{}
	h.Set("webhook-id", "evt_1")
	h.Set("webhook-timestamp", "1")
	h.Set("webhook-signature", sig)
	if verifySignature(s, h, body, now) {
		t.Error("a stale or mismatched timestamp verified")
	}
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	if !verifySignature(s, h, body, now) {
		t.Error("our signature does not verify")
	}
	if verifySignature(s, h, []byte(`{"id":"evt_2"}`), now) {
		t.Error("a changed body verified")
	}
	if _, err := Sign("whsec_!!!", "x", 1, body); err == nil {
		t.Error("a secret that is not base64 signed")
	}
}

func TestGuardAllowed(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"8.8.8.8": true, "93.184.216.34": true, "2606:4700::1111": true,
		"127.0.0.1": false, "127.8.9.10": false, "::1": false, "10.0.0.1": false, "172.16.5.4": false,
		"192.168.1.1": false, "169.254.169.254": false, "fe80::1": false, "fc00::1": false, "fd12::1": false,
		"0.0.0.0": false, "::": false, "100.64.0.1": false, "224.0.0.1": false, "255.255.255.255": false,
		"::ffff:127.0.0.1": false, "::ffff:10.1.2.3": false, "64:ff9b::a00:1": false, "64:ff9b::808:808": true,
		"198.18.0.1": false, "192.0.0.8": false,
	}
	for s, want := range tests {
		ip := netip.MustParseAddr(s)
		if got := (Guard{}).Allowed(ip); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", s, got, want)
		}
		if !(Guard{AllowPrivate: true}).Allowed(ip) {
			t.Errorf("AllowPrivate refused %s", s)
		}
	}
}

// With the protection on, a URL whose name resolves to 127.0.0.1 is
// refused when the connection is made (after DNS), and the receiver never
// hears of it; WEBHOOK_ALLOW_PRIVATE lets it through.
func TestGuardRefusesLoopbackAtConnect(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	rc := newReceiver(t, func(int, *http.Request) int { hits.Add(1); return 200 })
	port := rc.srv.URL[strings.LastIndex(rc.srv.URL, ":")+1:]
	for _, url := range []string{"http://localhost:" + port + "/hook", rc.srv.URL + "/hook"} {
		resp, err := newHTTPClient(Guard{}, 2*time.Second).Post(url, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: connected with the protection on", url)
		}
		if !errors.Is(err, ErrRefusedAddress) {
			t.Fatalf("%s: %v, want ErrRefusedAddress", url, err)
		}
		if got := failureReason(0, err); !strings.HasPrefix(got, "refused") {
			t.Errorf("reason %q", got)
		}
	}
	if hits.Load() != 0 {
		t.Fatal("the receiver was reached")
	}
	open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer open.Close()
	oport := open.URL[strings.LastIndex(open.URL, ":")+1:]
	resp, err := newHTTPClient(Guard{AllowPrivate: true}, 2*time.Second).Post("http://localhost:"+oport+"/hook", "application/json", nil)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("with WEBHOOK_ALLOW_PRIVATE: %v %v", resp, err)
	}
	resp.Body.Close()
}

// fixedResolver answers every name with its addresses (a name that
// resolves to a private address, without relying on the machine's DNS).
type fixedResolver []netip.Addr

func (f fixedResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return f, nil
}

func TestCreateRefusesPrivateHosts(t *testing.T) {
	t.Parallel()
	k := newKit(t, func(c *config.Webhooks) { c.WebhookAllowPrivate = false })
	k.s.res = fixedResolver{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("127.0.0.1")}
	for _, url := range []string{"http://127.0.0.1:9/x", "http://[::1]/x", "http://169.254.169.254/latest", "https://hooks.example.com/x"} {
		code, body := k.do("POST", "/webhooks", `{"url":"`+url+`"}`)
		if code != 422 || body["code"] != CodeURLRefused || body["field"] != "url" {
			t.Errorf("%s: %d %v", url, code, body)
		}
	}
	k.s.res = fixedResolver{netip.MustParseAddr("93.184.216.34")}
	if code, body := k.do("POST", "/webhooks", `{"url":"https://hooks.example.com/x"}`); code != 201 {
		t.Errorf("a public host: %d %v", code, body)
	}
	// A webhook whose address turned private after creation (DNS
	// rebinding): the delivery is refused at connect time and retried.
	rc := newReceiver(t, nil)
	port := rc.srv.URL[strings.LastIndex(rc.srv.URL, ":")+1:]
	w := k.create("http://localhost:"+port+"/hook", events.BatchCompleted) // stored directly, past the create check
	rc.setSecret(w.Secret)
	k.write(events.Event{Type: events.BatchCompleted, Link: "/results/batch/b1", Data: map[string]any{"batch_id": "b1"}})
	var id string
	poll.Until(t, 10*time.Second, "a refused attempt", func() bool {
		_ = k.pool.QueryRow(context.Background(), `SELECT id FROM events WHERE type = $1`, events.BatchCompleted).Scan(&id)
		if id == "" {
			return false
		}
		var n int
		_ = k.pool.QueryRow(context.Background(), `SELECT attempts FROM webhook_deliveries WHERE event_id = $1`, id).Scan(&n)
		return n >= 2
	})
	d := k.delivery(w.ID, id)
	if !strings.HasPrefix(d.LastError, "refused") || d.Status != DeliveryRetrying || d.LastStatusCode != nil {
		t.Errorf("delivery %+v", d)
	}
	if rc.total() != 0 {
		t.Error("the receiver was reached")
	}
}

// sampleEvents is one event of every type.
func sampleEvents() []events.Event {
	var out []events.Event
	for i, typ := range events.Types {
		out = append(out, events.Event{Type: typ, ProviderID: "prov_" + string(rune('a'+i)), Link: "/providers/prov",
			Data: map[string]any{"n": i}})
	}
	return out
}

func TestEveryEventTypeIsDeliveredOncePerSubscription(t *testing.T) {
	t.Parallel()
	k := newKit(t, nil)
	all := newReceiver(t, nil)
	some := newReceiver(t, nil)
	wa := k.create(all.srv.URL + "/all")
	all.setSecret(wa.Secret)
	ws := k.create(some.srv.URL+"/some", events.LicenseExpiring, events.BatchCompleted)
	some.setSecret(ws.Secret)
	for _, e := range sampleEvents() {
		k.write(e)
	}
	n := len(events.Types)
	poll.Until(t, 20*time.Second, "every event at both receivers", func() bool {
		return len(all.byType()) == n && len(some.byType()) == 2
	})
	time.Sleep(300 * time.Millisecond) // room for a duplicate to show up
	for typ, c := range all.byType() {
		if c != 1 {
			t.Errorf("all: %s delivered as %d events", typ, c)
		}
	}
	counts, envs := all.snapshot()
	for id, c := range counts {
		if c != 1 {
			t.Errorf("all: %s accepted %d times", id, c)
		}
	}
	if got := some.byType(); got[events.LicenseExpiring] != 1 || got[events.BatchCompleted] != 1 {
		t.Errorf("filtered subscription got %v", got)
	}
	if all.total() != n || some.total() != 2 {
		t.Errorf("requests: %d and %d, want %d and 2", all.total(), some.total(), n)
	}
	for _, env := range envs {
		if env.ProviderID == nil || !strings.HasPrefix(*env.ProviderID, "prov_") || env.Link != "/providers/prov" ||
			!strings.HasPrefix(env.ID, "evt_") || env.Timestamp.IsZero() {
			t.Errorf("envelope %+v", env)
		}
	}
	for _, typ := range events.Types {
		if got := k.metric("events_total", "type="+typ); got != 1 {
			t.Errorf("events_total{type=%s} = %v", typ, got)
		}
	}
	if got := k.metric("webhook_deliveries_total", "outcome="+OutcomeDelivered); got != float64(n+2) {
		t.Errorf("delivered = %v", got)
	}
}

// A receiver that answers 500 three times and then 200 gets the event
// exactly once after it recovers; the retries are recorded and counted.
func TestRecoveringReceiverGetsTheEventOnce(t *testing.T) {
	t.Parallel()
	k := newKit(t, nil)
	rc := newReceiver(t, func(n int, _ *http.Request) int {
		if n <= 3 {
			return 500
		}
		return 200
	})
	w := k.create(rc.srv.URL)
	rc.setSecret(w.Secret)
	k.write(events.Event{Type: events.ProviderDecisionChanged, ProviderID: "p1", Link: "/results/p1",
		Data: map[string]any{"decision": "denied", "previous_decision": "approved"}})
	poll.Until(t, 20*time.Second, "delivered", func() bool { return len(rc.acceptedIDs()) == 1 })
	id := rc.acceptedIDs()[0]
	poll.Until(t, 5*time.Second, "recorded", func() bool { return k.delivery(w.ID, id).Status == DeliveryDelivered })
	time.Sleep(300 * time.Millisecond)
	if rc.count(id) != 1 || rc.total() != 4 {
		t.Fatalf("accepted %d times over %d requests, want once over 4", rc.count(id), rc.total())
	}
	d := k.delivery(w.ID, id)
	if d.Attempts != 4 || d.LastStatusCode == nil || *d.LastStatusCode != 200 || d.LastError != "" || d.DeliveredAt == nil ||
		d.NextAttemptAt != nil {
		t.Errorf("delivery %+v", d)
	}
	if got := k.metric("webhook_deliveries_total", "outcome="+OutcomeRetry); got != 3 {
		t.Errorf("retries counted %v", got)
	}
	if got := k.metric("webhook_delivery_attempts"); got != 1 {
		t.Errorf("attempts histogram count %v", got)
	}
	got, _ := k.s.Get(context.Background(), w.ID)
	if got.FailingSince != nil || got.Status != StatusEnabled {
		t.Errorf("webhook after recovery %+v", got)
	}
}

// A receiver that hangs is cut at WEBHOOK_TIMEOUT and the delivery retried.
func TestHangingReceiverIsCutAtTheTimeoutAndRetried(t *testing.T) {
	t.Parallel()
	k := newKit(t, func(c *config.Webhooks) { c.WebhookTimeout = 400 * time.Millisecond })
	cut := make(chan time.Duration, 1)
	rc := newReceiver(t, func(n int, r *http.Request) int {
		if n == 1 {
			start := time.Now()
			select {
			case <-r.Context().Done(): // the service gave up on us
				cut <- time.Since(start)
			case <-time.After(20 * time.Second):
			}
			return 200
		}
		return 200
	})
	w := k.create(rc.srv.URL)
	rc.setSecret(w.Secret)
	k.write(events.Event{Type: events.BatchCompleted, Link: "/results/batch/b1", Data: map[string]any{"batch_id": "b1"}})
	select {
	case d := <-cut:
		if d > 10*time.Second {
			t.Fatalf("cut after %s", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the hanging request was not cut")
	}
	poll.Until(t, 15*time.Second, "delivered on retry", func() bool { return len(rc.acceptedIDs()) == 1 && rc.total() >= 2 })
	id := rc.acceptedIDs()[0]
	poll.Until(t, 5*time.Second, "recorded", func() bool { return k.delivery(w.ID, id).Status == DeliveryDelivered })
	d := k.delivery(w.ID, id)
	if d.Attempts != 2 {
		t.Errorf("delivery %+v", d)
	}
	var errs []string
	_ = k.pool.QueryRow(context.Background(), `SELECT array_agg(e->>'error') FROM river_job j, jsonb_array_elements(to_jsonb(j.errors)) e
		WHERE j.kind = 'webhook_delivery'`).Scan(&errs)
	if len(errs) != 1 || !strings.HasPrefix(errs[0], "timeout") {
		t.Errorf("River's record of the first attempt: %v", errs)
	}
}

// An endpoint failing every attempt for WEBHOOK_DISABLE_AFTER is disabled:
// its open deliveries are canceled and webhook.disabled goes to the others.
func TestEndpointIsDisabledAfterFailingForTheConfiguredTime(t *testing.T) {
	t.Parallel()
	k := newKit(t, func(c *config.Webhooks) { c.WebhookDisableAfter = 500 * time.Millisecond })
	down := newReceiver(t, func(int, *http.Request) int { return 503 })
	wd := k.create(down.srv.URL)
	down.setSecret(wd.Secret)
	watcher := newReceiver(t, nil)
	ww := k.create(watcher.srv.URL, events.WebhookDisabled)
	watcher.setSecret(ww.Secret)
	k.write(events.Event{Type: events.ImportActivated, Link: "/admin/imports/1", Data: map[string]any{"import_id": 1}})
	poll.Until(t, 20*time.Second, "webhook.disabled delivered", func() bool { return watcher.byType()[events.WebhookDisabled] == 1 })
	got, err := k.s.Get(context.Background(), wd.ID)
	if err != nil || got.Status != StatusDisabled || got.DisabledAt == nil || !strings.Contains(got.DisabledReason, "HTTP 503") {
		t.Fatalf("webhook %+v %v", got, err)
	}
	_, wenvs := watcher.snapshot()
	for _, env := range wenvs {
		if !strings.Contains(string(env.Data), wd.ID) || env.Link != "/webhooks/"+wd.ID {
			t.Errorf("webhook.disabled %s %s", env.Link, env.Data)
		}
	}
	var open, canceled int
	_ = k.pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE status IN ('pending', 'retrying')),
		count(*) FILTER (WHERE status = 'canceled') FROM webhook_deliveries WHERE webhook_id = $1`, wd.ID).Scan(&open, &canceled)
	if open != 0 || canceled != 1 {
		t.Errorf("open %d canceled %d", open, canceled)
	}
	// Disabled endpoints get no new deliveries; replay and test say why.
	k.write(events.Event{Type: events.ImportActivated, Link: "/admin/imports/2"})
	time.Sleep(200 * time.Millisecond)
	if code, body := k.do("POST", "/webhooks/"+wd.ID+"/test", ""); code != 409 || body["code"] != CodeDisabled {
		t.Errorf("test on a disabled webhook: %d %v", code, body)
	}
	if code, body := k.do("POST", "/webhooks/"+wd.ID+"/enable", ""); code != 200 || body["status"] != StatusEnabled {
		t.Errorf("enable: %d %v", code, body)
	}
	var audit int
	_ = k.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE event IN ('webhook.disabled', 'webhook.enabled')
		AND entity_id = $1`, wd.ID).Scan(&audit)
	if audit != 2 {
		t.Errorf("audit entries %d", audit)
	}
}

// Past River's attempt budget the delivery is given up, and says so.
func TestDeliveryIsGivenUpAfterTheLastAttempt(t *testing.T) {
	t.Parallel()
	k := newKit(t, func(c *config.Webhooks) { c.WebhookRetryFor = 150 * time.Millisecond })
	max := k.s.cfg.MaxAttempts()
	if max < 2 || max > 8 {
		t.Fatalf("MaxAttempts %d", max)
	}
	rc := newReceiver(t, func(int, *http.Request) int { return 410 })
	w := k.create(rc.srv.URL)
	rc.setSecret(w.Secret)
	k.write(events.Event{Type: events.BatchCompleted, Link: "/results/batch/b9"})
	var id string
	poll.Until(t, 20*time.Second, "given up", func() bool {
		_ = k.pool.QueryRow(context.Background(), `SELECT event_id FROM webhook_deliveries WHERE webhook_id = $1 AND status = 'failed'`,
			w.ID).Scan(&id)
		return id != ""
	})
	d := k.delivery(w.ID, id)
	if d.Attempts != max || d.LastError != "HTTP 410" || *d.LastStatusCode != 410 || d.NextAttemptAt != nil {
		t.Errorf("delivery %+v (max %d)", d, max)
	}
	if rc.total() != max {
		t.Errorf("receiver saw %d requests", rc.total())
	}
	if got := k.metric("webhook_deliveries_total", "outcome="+OutcomeFailed); got != 1 {
		t.Errorf("failed = %v", got)
	}
}

func TestReplayTestAndDeliveriesAPI(t *testing.T) {
	t.Parallel()
	k := newKit(t, nil)
	rc := newReceiver(t, nil)
	code, body := k.do("POST", "/webhooks", `{"url":"`+rc.srv.URL+`/in","event_types":["import.activated.v1","batch.completed.v1","import.activated.v1"],"description":" ERP "}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}
	id, _ := body["id"].(string)
	secret, _ := body["secret"].(string)
	rc.setSecret(secret)
	if !strings.HasPrefix(id, "wh_") || !strings.HasPrefix(secret, "whsec_") || body["description"] != "ERP" ||
		len(body["event_types"].([]any)) != 2 || body["status"] != StatusEnabled {
		t.Fatalf("created %v", body)
	}
	code, got := k.do("GET", "/webhooks/"+id, "")
	if code != 200 || got["secret"] != nil || got["url"] != rc.srv.URL+"/in" {
		t.Errorf("get: %d %v", code, got)
	}
	// Test ping: delivered, signed, listed among the deliveries, not among events.
	code, d := k.do("POST", "/webhooks/"+id+"/test", "")
	if code != 202 || d["event_type"] != events.WebhookTest || d["status"] != DeliveryPending {
		t.Fatalf("test: %d %v", code, d)
	}
	poll.Until(t, 10*time.Second, "ping", func() bool { return rc.byType()[events.WebhookTest] == 1 })
	k.write(events.Event{Type: events.ImportActivated, Link: "/admin/imports/7", Data: map[string]any{"import_id": 7}})
	poll.Until(t, 10*time.Second, "event", func() bool { return rc.byType()[events.ImportActivated] == 1 })
	var listed map[string]any
	poll.Until(t, 5*time.Second, "both delivered", func() bool {
		code, listed = k.do("GET", "/webhooks/"+id+"/deliveries?status=delivered", "")
		return code == 200 && len(listed["items"].([]any)) == 2
	})
	first := listed["items"].([]any)[0].(map[string]any)
	if first["event_type"] != events.ImportActivated || first["attempts"].(float64) != 1 || first["last_status_code"].(float64) != 204 {
		t.Errorf("newest delivery %v", first)
	}
	code, ev := k.do("GET", "/events", "")
	if code != 200 || len(ev["items"].([]any)) != 1 {
		t.Errorf("GET /events lists %v", ev)
	}
	// Replay: a new delivery of the same event id.
	code, re := k.do("POST", "/webhooks/"+id+"/deliveries/"+first["id"].(string)+"/replay", "")
	if code != 202 || re["replay_of"] != first["id"] || re["event_id"] != first["event_id"] || re["id"] == first["id"] {
		t.Fatalf("replay: %d %v", code, re)
	}
	poll.Until(t, 10*time.Second, "replayed", func() bool { return rc.count(first["event_id"].(string)) == 2 })
	// Pages.
	code, p1 := k.do("GET", "/webhooks/"+id+"/deliveries?limit=2", "")
	if code != 200 || len(p1["items"].([]any)) != 2 || p1["next_cursor"] == nil {
		t.Fatalf("page 1: %d %v", code, p1)
	}
	code, p2 := k.do("GET", "/webhooks/"+id+"/deliveries?limit=2&cursor="+p1["next_cursor"].(string), "")
	if code != 200 || len(p2["items"].([]any)) != 1 || p2["next_cursor"] != nil {
		t.Fatalf("page 2: %d %v", code, p2)
	}
	// Errors.
	for _, tc := range []struct {
		method, path string
		code         int
		errCode      string
	}{
		{"GET", "/webhooks/wh_none", 404, "not_found"},
		{"GET", "/webhooks/wh_none/deliveries", 404, "not_found"},
		{"POST", "/webhooks/wh_none/test", 404, "not_found"},
		{"POST", "/webhooks/" + id + "/deliveries/dlv_none/replay", 404, "not_found"},
		{"GET", "/webhooks/" + id + "/deliveries?status=lost", 400, "invalid_parameter"},
		{"GET", "/webhooks/" + id + "/deliveries?cursor=zzz", 400, "invalid_cursor"},
		{"GET", "/webhooks?limit=0", 422, "validation_failed"},
		{"DELETE", "/webhooks/wh_none", 404, "not_found"},
	} {
		code, body := k.do(tc.method, tc.path, "")
		if code != tc.code || body["code"] != tc.errCode {
			t.Errorf("%s %s: %d %v, want %d %s", tc.method, tc.path, code, body, tc.code, tc.errCode)
		}
	}
	code, list := k.do("GET", "/webhooks", "")
	if code != 200 || len(list["items"].([]any)) != 1 {
		t.Errorf("list: %d %v", code, list)
	}
	if code, _ := k.do("DELETE", "/webhooks/"+id, ""); code != 204 {
		t.Errorf("delete: %d", code)
	}
	if code, _ := k.do("GET", "/webhooks/"+id, ""); code != 404 {
		t.Errorf("after delete: %d", code)
	}
	var audited []string
	_ = k.pool.QueryRow(context.Background(), `SELECT array_agg(event ORDER BY id) FROM audit_log WHERE entity = 'webhook'`).Scan(&audited)
	if !slices.Equal(audited, []string{"webhook.created", "webhook.delivery_replayed", "webhook.deleted"}) {
		t.Errorf("audit %v", audited)
	}
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	k := newKit(t, nil)
	tests := []struct {
		body  string
		code  int
		field string
	}{
		{``, 400, ""},
		{`[]`, 400, ""},
		{`{"url":`, 400, ""},
		{`{}`, 422, "url"},
		{`{"url":"ftp://x.example/"}`, 422, "url"},
		{`{"url":"/relative"}`, 422, "url"},
		{`{"url":"https://user:pw@x.example/"}`, 422, "url"},
		{`{"url":"https://x.example/#frag"}`, 422, "url"},
		{`{"url":"https://x.example:99999/"}`, 422, "url"},
		{`{"url":"https://x.example/\u0000"}`, 422, "url"},
		{`{"url":"https://x.example/","event_types":["license.expiring"]}`, 422, "event_types"},
		{`{"url":"https://x.example/","event_types":["webhook.test.v1"]}`, 422, "event_types"},
		{`{"url":"https://x.example/","event_types":"license.expiring.v1"}`, 422, "event_types"},
		{`{"url":"https://x.example/","description":"` + strings.Repeat("x", 501) + `"}`, 422, "description"},
		{`{"url":"https://x.example/","secret":"whsec_mine"}`, 422, "secret"},
		{`{"url":"https://x.example/","ssn":"1"}`, 422, "ssn"},
	}
	for _, tc := range tests {
		code, body := k.do("POST", "/webhooks", tc.body)
		if code != tc.code || (tc.field != "" && body["field"] != tc.field) {
			t.Errorf("%.60s: %d %v, want %d on %s", tc.body, code, body, tc.code, tc.field)
		}
	}
	var n int
	_ = k.pool.QueryRow(context.Background(), `SELECT count(*) FROM webhooks`).Scan(&n)
	if n != 0 {
		t.Errorf("%d webhooks stored from bad requests", n)
	}
}
