package chat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	chatcfg "github.com/provcred/chat/internal/config"
	"github.com/provcred/chat/internal/history"
	"github.com/provcred/chat/internal/history/historytest"
	"github.com/provcred/chat/internal/llmtest"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/config"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/proctest"
	"github.com/provcred/platform/server"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, wantCode, wantField string
	}{
		{"ok", `{"message":"What is LEIE?"}`, "", ""},
		{"with conversation", `{"message":"hi","conversation_id":"c1"}`, "", ""},
		{"empty", `{"message":"   "}`, "validation_failed", "message"},
		{"missing", `{}`, "validation_failed", "message"},
		{"too long", `{"message":"` + strings.Repeat("a", 101) + `"}`, "validation_failed", "message"},
		{"long conversation id", `{"message":"x","conversation_id":"` + strings.Repeat("c", 101) + `"}`, "validation_failed", "conversation_id"},
		{"unknown field", `{"message":"x","ssn":"1"}`, "invalid_json", ""},
		{"not json", `hello`, "invalid_json", ""},
		{"wrong type", `{"message":5}`, "invalid_json", ""},
		{"trailing text", `{"message":"x"} {"message":"y"}`, "invalid_json", ""},
		{"duplicate key", `{"message":"x","conversation_id":"mine","conversation_id":"theirs"}`, "invalid_json", ""},
		{"duplicate key in other case", `{"message":"x","Message":"y"}`, "invalid_json", ""},
		{"NUL in message", `{"message":"a\u0000b"}`, "validation_failed", "message"},
		{"NUL in conversation id", `{"message":"x","conversation_id":"c\u0000"}`, "validation_failed", "conversation_id"},
		{"newline in conversation id", `{"message":"x","conversation_id":"c\n1"}`, "validation_failed", "conversation_id"},
		{"newline in message", `{"message":"line 1\nline 2"}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body), 100)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			ae, ok := apierr.As(err)
			if !ok || ae.Code != tt.wantCode || ae.Field != tt.wantField {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"message":"hi"}`))
	f.Add([]byte(`{"message":"","conversation_id":5}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := Parse(b, 4000)
		if err == nil && (req.Message == "" || len(req.ConversationID) > 100 || strings.ContainsRune(req.Message, 0) ||
			strings.IndexFunc(req.ConversationID, unicode.IsControl) >= 0) {
			t.Fatalf("accepted invalid %q", b)
		}
		if err != nil {
			if _, ok := apierr.As(err); !ok {
				t.Fatalf("non-API error %v", err)
			}
		}
	})
}

// syncBuffer collects the service's log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// env is a chat service on a real listener, wired as cmd/chat wires it
// (New, the platform server), with a scripted model.
type env struct {
	URL   string
	h     *Handler
	m     *metrics.Registry
	model *llmtest.Server
	logs  *syncBuffer
}

// newEnv starts the service with settings on top of test defaults; a
// model nil means no LLM configured.
func newEnv(t *testing.T, model *llmtest.Server, settings map[string]string) *env {
	t.Helper()
	vars := map[string]string{
		"LLM_MODEL": "scripted", "LLM_API_KEY": "sk-test", "LLM_TIMEOUT": "2s", "LLM_QUEUE_WAIT": "200ms",
		"MAX_CONCURRENT_LLM_REQUESTS": "2", "LLM_BREAKER_FAILURES": "3", "LLM_BREAKER_OPEN_TIMEOUT": "300ms",
		"CHAT_SSE_KEEPALIVE": "100ms", "CHAT_TURN_TIMEOUT": "10s",
		// Tools point nowhere unless a test gives them services.
		"CREDENTIAL_URL": "http://127.0.0.1:9", "STATS_URL": "http://127.0.0.1:9",
	}
	if model != nil {
		vars["LLM_BASE_URL"] = model.URL
	}
	for k, v := range settings {
		vars[k] = v
	}
	cfg, err := config.Parse[chatcfg.Config](vars)
	if err != nil {
		t.Fatal(err)
	}
	pool := historytest.NewPool(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	m := metrics.New("chat")
	// Tool calls are signed with the keys proctest gives the services it starts.
	h, err := New(cfg, pool, m, log, proctest.Keyring())
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{Service: "chat", Logger: log, Metrics: m, BodyLimit: cfg.BodyLimitBytes,
		RequestTimeout: cfg.LLMQueueWait + cfg.TurnTimeout + cfg.RequestTimeout})
	h.Routes(srv.App)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.App.Listener(ln) }()
	t.Cleanup(func() { _ = srv.App.ShutdownWithTimeout(5 * time.Second) })
	return &env{URL: "http://" + ln.Addr().String(), h: h, m: m, model: model, logs: logs}
}

func startModel(t *testing.T, script func(*llmtest.Request) llmtest.Reply) *llmtest.Server {
	t.Helper()
	s := llmtest.Start(script)
	t.Cleanup(s.Close)
	return s
}

// answer is a scripted model that says text.
func answer(text ...string) func(*llmtest.Request) llmtest.Reply {
	return func(*llmtest.Request) llmtest.Reply { return llmtest.Reply{Tokens: text} }
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// post sends POST /chat as actor with role reader.
func (e *env) post(t *testing.T, actor, body string) reply {
	t.Helper()
	req, _ := http.NewRequest("POST", e.URL+"/chat", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(server.HeaderActor, actor)
	req.Header.Set(server.HeaderRole, "reader")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// sseEvent is one server-sent event with the moment it arrived.
type sseEvent struct {
	name string
	data map[string]any
	at   time.Time
}

// openStream sends POST /chat with Accept: text/event-stream and returns
// the response, whose body the caller reads with readEvents.
func (e *env) openStream(t *testing.T, ctx context.Context, actor, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", e.URL+"/chat", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(server.HeaderActor, actor)
	req.Header.Set(server.HeaderRole, "reader")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// readEvents parses an event stream, calling each for every event until it
// returns false or the stream ends. Comment lines are skipped.
func readEvents(r io.Reader, each func(sseEvent) bool) error {
	sc := bufio.NewScanner(r)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" {
				ev.at = time.Now()
				if !each(ev) {
					return nil
				}
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}

func collectEvents(t *testing.T, resp *http.Response) []sseEvent {
	t.Helper()
	defer resp.Body.Close()
	var out []sseEvent
	if err := readEvents(resp.Body, func(ev sseEvent) bool { out = append(out, ev); return true }); err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, _ := e.m.Value(name, labels...)
	return v
}

func TestNotConfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	if r := e.post(t, "key_a", `{"message":"hi"}`); r.status != 503 || r.body["code"] != "llm_not_configured" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	// Validation still comes first.
	if r := e.post(t, "key_a", `{"message":""}`); r.status != 422 || r.body["field"] != "message" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

func TestJSONAnswer(t *testing.T) {
	t.Parallel()
	model := startModel(t, answer("The OIG LEIE ", "lists excluded ", "individuals."))
	e := newEnv(t, model, nil)
	r := e.post(t, "key_a", `{"message":"What is the LEIE?"}`)
	if r.status != 200 || r.body["answer"] != "The OIG LEIE lists excluded individuals." || r.body["model"] != "scripted" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if cites, _ := r.body["citations"].([]any); cites == nil || len(cites) != 0 {
		t.Fatalf("citations %v", r.body["citations"])
	}
	// The SDK spoke the real wire format: bearer key, stream with usage,
	// the system prompt first, the tools offered to a reader.
	req := model.Requests()[0]
	if req.Header.Get("Authorization") != "Bearer sk-test" || !req.Stream || req.StreamOptions == nil ||
		!req.StreamOptions.IncludeUsage || req.Model != "scripted" || req.MaxTokens != 1024 {
		t.Fatalf("request %+v", req)
	}
	if req.Messages[0].Role != "system" || req.Last().Text() != "What is the LEIE?" || len(req.ToolNames()) != 7 {
		t.Fatalf("messages %+v tools %v", req.Messages, req.ToolNames())
	}
}

func TestLLMFailureModes(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	mode := "ok"
	set := func(m string) { mu.Lock(); mode = m; mu.Unlock() }
	model := startModel(t, func(*llmtest.Request) llmtest.Reply {
		mu.Lock()
		defer mu.Unlock()
		switch mode {
		case "stall":
			return llmtest.Reply{Tokens: []string{"Half an ans"}, Stall: true}
		case "500":
			return llmtest.Reply{Status: 500}
		case "429":
			return llmtest.Reply{Status: 429, RetryAfter: "7"}
		case "400":
			return llmtest.Reply{Status: 400}
		}
		return llmtest.Reply{Tokens: []string{"fine"}, PromptTokens: 12, CompletionTokens: 1}
	})
	// 1s: well past a scripted answer even on a loaded machine (300ms
	// timed the first answer out at a load average of 28).
	e := newEnv(t, model, map[string]string{"LLM_TIMEOUT": "1s", "LLM_BREAKER_FAILURES": "3"})

	r := e.post(t, "key_a", `{"message":"What is SAM?"}`)
	if r.status != 200 || r.body["answer"] != "fine" {
		t.Fatalf("ok: %d %s", r.status, r.raw)
	}
	if u, _ := r.body["usage"].(map[string]any); u["prompt_tokens"] != float64(12) || u["completion_tokens"] != float64(1) {
		t.Fatalf("usage %v", r.body["usage"])
	}
	set("400") // the request's fault: not held against the model
	if r := e.post(t, "key_a", `{"message":"x"}`); r.status != 502 || r.body["code"] != "llm_error" {
		t.Fatalf("400: %d %s", r.status, r.raw)
	}
	// A model that stops mid-answer is cut at LLM_TIMEOUT.
	set("stall")
	start := time.Now()
	if r := e.post(t, "key_a", `{"message":"x"}`); r.status != 504 || r.body["code"] != "llm_timeout" {
		t.Fatalf("stall: %d %s", r.status, r.raw)
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Fatalf("stall took %s, want about LLM_TIMEOUT (1s), far below CHAT_TURN_TIMEOUT (10s)", el)
	}
	set("429")
	r = e.post(t, "key_a", `{"message":"secret question about Dr. Okafor"}`)
	if r.status != 503 || r.body["code"] != "llm_unavailable" || r.header.Get("Retry-After") != "7" {
		t.Fatalf("429: %d %v %s", r.status, r.header, r.raw)
	}
	set("500") // third failure in a row (stall, 429, 500) opens the breaker
	if r := e.post(t, "key_a", `{"message":"x"}`); r.status != 502 || r.body["code"] != "llm_error" {
		t.Fatalf("500: %d %s", r.status, r.raw)
	}
	calls := len(model.Requests())
	if r := e.post(t, "key_a", `{"message":"x"}`); r.status != 503 || r.body["code"] != "llm_unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("open: %d %s", r.status, r.raw)
	}
	if len(model.Requests()) != calls {
		t.Fatal("an open breaker still called the model")
	}
	if v := e.metric(t, "circuit_breaker_state", "name=llm"); v != 2 {
		t.Fatalf("breaker state %v", v)
	}
	// Healed: after the open timeout the probe succeeds and the breaker closes.
	set("ok")
	time.Sleep(400 * time.Millisecond)
	if r := e.post(t, "key_a", `{"message":"x"}`); r.status != 200 {
		t.Fatalf("healed: %d %s", r.status, r.raw)
	}
	if v := e.metric(t, "circuit_breaker_state", "name=llm"); v != 0 {
		t.Fatalf("breaker state after healing %v", v)
	}
	for outcome, want := range map[string]float64{"ok": 2, "timeout": 1, "error": 2, "rate_limited": 1, "breaker_open": 1} {
		if v := e.metric(t, "chat_llm_requests_total", "outcome="+outcome); v != want {
			t.Errorf("outcome %s = %v, want %v", outcome, v, want)
		}
	}
	// The operator sees why; prompts and answers stay out of the log.
	l := e.logs.String()
	if !strings.Contains(l, "model answered HTTP 500") || !strings.Contains(l, "timeout") {
		t.Fatalf("log lacks the causes: %s", l)
	}
	for _, secret := range []string{"secret question", "Okafor", "What is SAM", "fine", "Half an ans"} {
		if strings.Contains(l, secret) {
			t.Fatalf("log holds %q: %s", secret, l)
		}
	}
}

func TestBreakerOpensOnRepeated500sAndCloses(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	failing := true
	model := startModel(t, func(*llmtest.Request) llmtest.Reply {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return llmtest.Reply{Status: 500}
		}
		return llmtest.Reply{Tokens: []string{"back"}}
	})
	e := newEnv(t, model, nil)
	for i := 0; i < 3; i++ {
		if r := e.post(t, "key_a", `{"message":"x"}`); r.status != 502 {
			t.Fatalf("call %d: %d %s", i, r.status, r.raw)
		}
	}
	// Open: answered at once, the model is not called, for stream requests too.
	calls := len(model.Requests())
	if r := e.post(t, "key_a", `{"message":"x"}`); r.status != 503 || r.body["code"] != "llm_unavailable" {
		t.Fatalf("open: %d %s", r.status, r.raw)
	}
	resp := e.openStream(t, t.Context(), "key_a", `{"message":"x"}`)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(raw), "llm_unavailable") {
		t.Fatalf("open stream: %d %s", resp.StatusCode, raw)
	}
	if len(model.Requests()) != calls {
		t.Fatal("the model was called while the breaker was open")
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	time.Sleep(400 * time.Millisecond)
	if r := e.post(t, "key_a", `{"message":"x"}`); r.status != 200 || r.body["answer"] != "back" {
		t.Fatalf("healed: %d %s", r.status, r.raw)
	}
	if v := e.metric(t, "circuit_breaker_transitions_total", "name=llm", "to=closed"); v != 1 {
		t.Fatalf("closed transitions %v", v)
	}
}

// 20 concurrent chats with a cap of 5: never more than 5 model calls at
// once, and the ones that waited past the bound get llm_busy.
func TestConcurrencyCap(t *testing.T) {
	t.Parallel()
	model := startModel(t, func(*llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Delay: time.Second, Tokens: []string{"ok"}}
	})
	// The five admitted calls hold their slots for 1s, five times the
	// queue wait; LLM_TIMEOUT leaves room for a loaded machine.
	e := newEnv(t, model, map[string]string{"MAX_CONCURRENT_LLM_REQUESTS": "5", "LLM_QUEUE_WAIT": "200ms", "LLM_TIMEOUT": "5s"})
	var wg sync.WaitGroup
	results := make(chan reply, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- e.post(t, "key_a", `{"message":"x"}`)
		}()
	}
	wg.Wait()
	close(results)
	ok, busy := 0, 0
	for r := range results {
		switch {
		case r.status == 200:
			ok++
		case r.status == 503 && r.body["code"] == "llm_busy" && r.header.Get("Retry-After") != "":
			busy++
		default:
			t.Errorf("%d %s", r.status, r.raw)
		}
	}
	if model.MaxInFlight() > 5 {
		t.Fatalf("%d model calls in flight, cap 5", model.MaxInFlight())
	}
	if ok != 5 || busy != 15 {
		t.Fatalf("ok %d busy %d; want 5 and 15", ok, busy)
	}
	if v := e.metric(t, "semaphore_rejected_total", "name=llm"); v != 15 {
		t.Fatalf("rejected %v", v)
	}
}

func TestStreamEventByEvent(t *testing.T) {
	t.Parallel()
	model := startModel(t, func(*llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Tokens: []string{"One", " two", " three", " four"}, TokenDelay: 150 * time.Millisecond}
	})
	e := newEnv(t, model, nil)
	resp := e.openStream(t, t.Context(), "key_a", `{"message":"count"}`)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	events := collectEvents(t, resp)
	var text strings.Builder
	var tokens []sseEvent
	for _, ev := range events {
		if ev.name == EventToken {
			tokens = append(tokens, ev)
			text.WriteString(ev.data["text"].(string))
		}
	}
	if len(tokens) != 4 || text.String() != "One two three four" {
		t.Fatalf("events %+v", events)
	}
	// They arrived as written, not in one piece at the end.
	if spread := tokens[3].at.Sub(tokens[0].at); spread < 300*time.Millisecond {
		t.Fatalf("tokens arrived within %s: buffered", spread)
	}
	done := events[len(events)-1]
	if done.name != EventDone || done.data["conversation_id"] == "" || done.data["unverified"] == nil {
		t.Fatalf("last event %+v", done)
	}
	// The turn was stored: a follow-up in the same conversation carries it.
	conv := done.data["conversation_id"].(string)
	r := e.post(t, "key_a", `{"message":"again","conversation_id":"`+conv+`"}`)
	if r.status != 200 {
		t.Fatalf("follow-up %d %s", r.status, r.raw)
	}
	msgs := model.Requests()[1].Messages
	if len(msgs) != 4 || msgs[1].Text() != "count" || msgs[2].Text() != "One two three four" {
		t.Fatalf("follow-up messages %+v", msgs)
	}
}

// A client that goes away mid-stream cancels the model call and frees its
// slot within a second; the breaker does not count it.
func TestStreamDisconnectFreesSlot(t *testing.T) {
	t.Parallel()
	model := startModel(t, func(*llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Tokens: []string{"Let me think"}, Stall: true}
	})
	e := newEnv(t, model, map[string]string{"LLM_TIMEOUT": "30s", "MAX_CONCURRENT_LLM_REQUESTS": "1", "LLM_BREAKER_FAILURES": "1"})
	for i := 0; i < 2; i++ { // twice: a cancel must not open the breaker (1 failure would)
		ctx, cancel := context.WithCancel(t.Context())
		resp := e.openStream(t, ctx, "key_a", `{"message":"x"}`)
		if resp.StatusCode != 200 {
			t.Fatalf("%d", resp.StatusCode)
		}
		_ = readEvents(resp.Body, func(ev sseEvent) bool { return ev.name != EventToken })
		if v := e.metric(t, "semaphore_in_use", "name=llm"); v != 1 {
			t.Fatalf("in use while streaming: %v", v)
		}
		gone := time.Now()
		cancel()
		resp.Body.Close()
		deadline := gone.Add(time.Second)
		for e.metric(t, "semaphore_in_use", "name=llm") != 0 {
			if time.Now().After(deadline) {
				t.Fatal("the slot was not freed within a second of the disconnect")
			}
			time.Sleep(10 * time.Millisecond)
		}
		select {
		case at := <-model.CancelTimes():
			if at.Sub(gone) > time.Second {
				t.Fatalf("model call cancelled %s after the disconnect", at.Sub(gone))
			}
		case <-time.After(time.Second):
			t.Fatal("the model call was not cancelled")
		}
	}
	if v := e.metric(t, "circuit_breaker_state", "name=llm"); v != 0 {
		t.Fatalf("a client's cancel opened the breaker (state %v)", v)
	}
	if v := e.metric(t, "chat_llm_requests_total", "outcome=canceled"); v != 2 {
		t.Fatalf("canceled %v", v)
	}
}

func TestStreamErrorEvent(t *testing.T) {
	t.Parallel()
	model := startModel(t, func(*llmtest.Request) llmtest.Reply { return llmtest.Reply{Status: 500} })
	e := newEnv(t, model, nil)
	events := collectEvents(t, e.openStream(t, t.Context(), "key_a", `{"message":"x"}`))
	if len(events) != 1 || events[0].name != EventError || events[0].data["code"] != "llm_error" {
		t.Fatalf("%+v", events)
	}
}

func TestConversationBelongsToItsKey(t *testing.T) {
	t.Parallel()
	model := startModel(t, func(req *llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Tokens: []string{"answer to " + req.Last().Text()}}
	})
	e := newEnv(t, model, nil)
	first := e.post(t, "key_a", `{"message":"What is LEIE?"}`)
	conv, _ := first.body["conversation_id"].(string)
	if first.status != 200 || conv == "" {
		t.Fatalf("%d %s", first.status, first.raw)
	}
	if r := e.post(t, "key_a", `{"message":"And SAM?","conversation_id":"`+conv+`"}`); r.status != 200 || r.body["conversation_id"] != conv {
		t.Fatalf("follow-up %d %s", r.status, r.raw)
	}
	msgs := model.Requests()[1].Messages
	if len(msgs) != 4 || msgs[2].Text() != "answer to What is LEIE?" {
		t.Fatalf("follow-up saw %+v", msgs)
	}
	for _, tc := range []struct{ actor, conv string }{{"key_b", conv}, {"key_a", "no-such-conversation"}} {
		r := e.post(t, tc.actor, `{"message":"Hi","conversation_id":"`+tc.conv+`"}`)
		if r.status != 404 || r.body["code"] != "not_found" {
			t.Fatalf("%s on %s: %d %s", tc.actor, tc.conv, r.status, r.raw)
		}
	}
	if n := len(model.Requests()); n != 2 {
		t.Fatalf("the model was called %d times", n)
	}
}

func TestHistoryTokenBudget(t *testing.T) {
	t.Parallel()
	model := startModel(t, func(req *llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Tokens: []string{strings.Repeat("a", 400)}} // ~104 tokens each
	})
	e := newEnv(t, model, map[string]string{"CHAT_HISTORY_TOKENS": "500"})
	conv := ""
	for i := 0; i < 6; i++ {
		body := `{"message":"` + strings.Repeat("q", 400) + `"`
		if conv != "" {
			body += `,"conversation_id":"` + conv + `"`
		}
		r := e.post(t, "key_a", body+"}")
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		conv = r.body["conversation_id"].(string)
	}
	last := model.Requests()[5].Messages
	earlier := last[1 : len(last)-1]
	used := 0
	for _, m := range earlier {
		used += history.Tokens(m.Text())
	}
	// 10 earlier turns of ~104 tokens: 4 fit in 500, as whole question/answer pairs.
	if len(earlier) != 4 || used > 500 || earlier[0].Role != "user" {
		t.Fatalf("%d earlier messages (%d tokens), first %s", len(earlier), used, earlier[0].Role)
	}
}

func TestToolRoundsAreBounded(t *testing.T) {
	t.Parallel()
	model := startModel(t, func(*llmtest.Request) llmtest.Reply {
		return llmtest.Reply{ToolCalls: []llmtest.ToolCall{llmtest.Call("c", "get_stats_summary", `{}`)}}
	})
	e := newEnv(t, model, map[string]string{"CHAT_MAX_TOOL_ROUNDS": "2"})
	r := e.post(t, "key_a", `{"message":"loop"}`)
	if r.status != 502 || r.body["code"] != "llm_error" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	reqs := model.Requests()
	if len(reqs) != 3 || reqs[0].ToolChoice != nil || reqs[2].ToolChoice != "none" {
		t.Fatalf("%d requests; last tool_choice %v", len(reqs), reqs[len(reqs)-1].ToolChoice)
	}
}

// A call without a role (not through the gateway) gets no tools at all.
func TestNoRoleNoTools(t *testing.T) {
	t.Parallel()
	model := startModel(t, answer("I cannot see records."))
	e := newEnv(t, model, nil)
	req, _ := http.NewRequest("POST", e.URL+"/chat", strings.NewReader(`{"message":"Why was provider_001 denied?"}`))
	req.Header.Set(server.HeaderActor, "key_a")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := model.Requests()[0]
	if resp.StatusCode != 200 || len(got.Tools) != 0 || !strings.Contains(got.Messages[0].Text(), "cannot see") {
		t.Fatalf("%d; tools %v; system %q", resp.StatusCode, got.ToolNames(), got.Messages[0].Text())
	}
}
