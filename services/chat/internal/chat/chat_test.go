package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/chat/internal/history"
	"github.com/provcred/chat/internal/llm"
	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/database"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/pgtest"
	"github.com/provcred/platform/semaphore"
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

type fixture struct {
	app  *fiber.App
	m    *metrics.Registry
	sem  *semaphore.Semaphore
	logs *syncBuffer
}

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

// historyDB is the chat schema's template database.
func historyDB(t *testing.T) pgtest.Template {
	t.Helper()
	key, err := pgtest.Fingerprint([]fs.FS{history.Migrations()})
	if err != nil {
		t.Fatal(err)
	}
	return pgtest.Template{Name: "chat", Key: key, SearchPath: history.Schema,
		Migrate: func(ctx context.Context, url string) error {
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				return err
			}
			defer pool.Close()
			_, err = database.Migrate(ctx, pool, history.Schema, history.Migrations())
			return err
		}}
}

func newApp(t *testing.T, llmURL string, timeout time.Duration) fixture {
	t.Helper()
	m := metrics.New("chat")
	sem := semaphore.New("llm", 1, 20*time.Millisecond, m)
	var client *llm.Client
	if llmURL != "" {
		client = &llm.Client{BaseURL: llmURL, APIKey: "k", Model: "m", Timeout: timeout, HTTP: &http.Client{},
			Breaker: breaker.New("llm", breaker.Settings{ConsecutiveFailures: 2, OpenTimeout: 200 * time.Millisecond}, m)}
	}
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		ae, ok := apierr.As(err)
		if !ok {
			ae = apierr.Internal()
		}
		return c.Status(ae.Status).JSON(ae)
	}})
	pool, _ := historyDB(t).NewPool(t)
	logs := &syncBuffer{}
	NewHandler(client, &history.Store{Pool: pool}, sem, 4000, m, slog.New(slog.NewJSONHandler(logs, nil))).Routes(app)
	return fixture{app, m, sem, logs}
}

func post(t *testing.T, app *fiber.App, body string) (int, map[string]any) {
	return postAs(t, app, "key_ops", body)
}

func postAs(t *testing.T, app *fiber.App, actor, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest("POST", "/chat", strings.NewReader(body))
	req.Header.Set(server.HeaderActor, actor)
	resp, err := app.Test(req, 10000)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func TestNotConfigured(t *testing.T) {
	t.Parallel()
	f := newApp(t, "", 0)
	if st, body := post(t, f.app, `{"message":"hi"}`); st != 503 || body["code"] != "llm_not_configured" {
		t.Fatalf("%d %v", st, body)
	}
	// Validation still comes first.
	if st, body := post(t, f.app, `{"message":""}`); st != 422 || body["field"] != "message" {
		t.Fatalf("%d %v", st, body)
	}
}

// fakeLLM is a real HTTP server speaking the OpenAI chat completions format.
func fakeLLM(t *testing.T, mode *atomic.Value) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, `{"error":{"message":"bad path or key"}}`, 401)
			return
		}
		var req struct {
			Model    string        `json:"model"`
			Messages []llm.Message `json:"messages"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		switch mode.Load().(string) {
		case "fail":
			http.Error(w, `{"error":{"message":"overloaded"}}`, 500)
		case "slow":
			time.Sleep(300 * time.Millisecond)
			fallthrough
		case "count":
			// Answers with the conversation it was given: the turns, newest last.
			var turns []string
			for _, m := range req.Messages[1:] {
				turns = append(turns, m.Role+":"+m.Content)
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"model": req.Model, "choices": []any{
				map[string]any{"message": map[string]string{"role": "assistant", "content": strings.Join(turns, "|")}}}})
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{"model": req.Model, "choices": []any{
				map[string]any{"message": map[string]string{"role": "assistant", "content": "echo: " + req.Messages[len(req.Messages)-1].Content}}}})
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLLMFailureModes(t *testing.T) {
	t.Parallel()
	var mode atomic.Value
	mode.Store("ok")
	srv := fakeLLM(t, &mode)
	f := newApp(t, srv.URL+"/v1", 100*time.Millisecond)

	st, body := post(t, f.app, `{"message":"What is SAM?"}`)
	if st != 200 || body["answer"] != "echo: What is SAM?" || body["conversation_id"] == "" {
		t.Fatalf("ok: %d %v", st, body)
	}
	mode.Store("slow")
	if st, body := post(t, f.app, `{"message":"x"}`); st != 504 || body["code"] != "llm_timeout" {
		t.Fatalf("slow: %d %v", st, body)
	}
	mode.Store("fail")
	if st, body := post(t, f.app, `{"message":"secret question"}`); st != 502 || body["code"] != "llm_error" {
		t.Fatalf("fail: %d %v", st, body)
	}
	// The operator sees why; the prompt stays out of the log.
	if l := f.logs.String(); !strings.Contains(l, "remote answered HTTP 500") || strings.Contains(l, "secret question") {
		t.Fatalf("log: %s", l)
	}
	// Two consecutive failures (timeout, 500) opened the breaker: no call is made.
	if st, body := post(t, f.app, `{"message":"x"}`); st != 503 || body["code"] != "llm_unavailable" {
		t.Fatalf("open: %d %v", st, body)
	}
	mode.Store("ok")
	time.Sleep(250 * time.Millisecond)
	if st, _ := post(t, f.app, `{"message":"x"}`); st != 200 {
		t.Fatalf("healed: %d", st)
	}
	for outcome, want := range map[string]float64{"ok": 2, "timeout": 1, "error": 1, "breaker_open": 1} {
		if v, _ := f.m.Value("chat_llm_requests_total", "outcome="+outcome); v != want {
			t.Errorf("outcome %s = %v, want %v", outcome, v, want)
		}
	}
}

func TestSemaphoreBusy(t *testing.T) {
	t.Parallel()
	var mode atomic.Value
	mode.Store("ok")
	srv := fakeLLM(t, &mode)
	f := newApp(t, srv.URL+"/v1", time.Second)
	if err := f.sem.Acquire(t.Context()); err != nil { // take the only slot
		t.Fatal(err)
	}
	defer f.sem.Release()
	st, body := post(t, f.app, `{"message":"x"}`)
	if st != 503 || body["code"] != "llm_busy" {
		t.Fatalf("%d %v", st, body)
	}
}

func TestConversationHistory(t *testing.T) {
	t.Parallel()
	var mode atomic.Value
	mode.Store("count")
	srv := fakeLLM(t, &mode)
	f := newApp(t, srv.URL+"/v1", time.Second)

	st, first := postAs(t, f.app, "key_a", `{"message":"What is LEIE?"}`)
	if st != 200 || first["answer"] != "user:What is LEIE?" {
		t.Fatalf("first: %d %v", st, first)
	}
	conv := first["conversation_id"].(string)
	st, second := postAs(t, f.app, "key_a", `{"message":"And SAM?","conversation_id":"`+conv+`"}`)
	want := "user:What is LEIE?|assistant:user:What is LEIE?|user:And SAM?"
	if st != 200 || second["answer"] != want || second["conversation_id"] != conv {
		t.Fatalf("follow-up: %d %v\nwant answer %q", st, second, want)
	}
	// Another key using the same conversation id sees none of it.
	st, other := postAs(t, f.app, "key_b", `{"message":"Hi","conversation_id":"`+conv+`"}`)
	if st != 200 || other["answer"] != "user:Hi" {
		t.Fatalf("other actor: %d %v", st, other)
	}
}
