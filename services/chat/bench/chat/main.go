// Command chat measures what the chat service adds to a model call. A
// scripted OpenAI-compatible model (internal/llmtest) answers every call
// after a fixed delay; the same question is asked, in the same run:
//
//  1. of the model directly, through the same SDK client (the baseline),
//  2. of the chat service (POST /chat: parse, conversation, semaphore,
//     prompt, the streamed call, citation check, the turn stored),
//  3. of the chat service through the gateway binary (key check, rate
//     limit, proxy),
//
// as JSON (whole answer) and as an event stream (time to the first token
// event). The table shows p50/p99 and what chat and the gateway add.
//
//	go run ./bench/chat [-requests 100] [-delay 100ms]
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/provcred/chat/internal/chat"
	chatcfg "github.com/provcred/chat/internal/config"
	"github.com/provcred/chat/internal/history"
	"github.com/provcred/chat/internal/llm"
	"github.com/provcred/chat/internal/llmtest"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/config"
	"github.com/provcred/platform/database"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/pgtest"
	"github.com/provcred/platform/server"
)

func main() {
	requests := flag.Int("requests", 100, "questions per target")
	delay := flag.Duration("delay", 100*time.Millisecond, "the model's delay before its first token")
	tokens := flag.Int("tokens", 20, "tokens per answer")
	tokenDelay := flag.Duration("token-delay", 2*time.Millisecond, "between tokens")
	adminURL := flag.String("db", cmp.Or(os.Getenv("TEST_DATABASE_URL"), pgtest.DefaultURL), "PostgreSQL server for a scratch database")
	flag.Parse()
	if err := run(*requests, *delay, *tokens, *tokenDelay, *adminURL); err != nil {
		log.Fatal(err)
	}
}

func run(n int, delay time.Duration, nTokens int, tokenDelay time.Duration, adminURL string) error {
	ctx := context.Background()
	words := make([]string, nTokens)
	for i := range words {
		words[i] = fmt.Sprintf("word%d ", i)
	}
	model := llmtest.Start(func(*llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Delay: delay, Tokens: words, TokenDelay: tokenDelay, PromptTokens: 300, CompletionTokens: nTokens}
	})
	defer model.Close()

	// The chat service, wired as cmd/chat wires it, on a scratch database.
	dbURL, drop, err := pgtest.Scratch(ctx, adminURL, "bench_chat")
	if err != nil {
		return err
	}
	defer drop()
	pool, err := database.Connect(ctx, database.Options{URL: dbURL, SearchPath: history.Schema, MaxConns: 10})
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := database.Migrate(ctx, pool, history.Schema, history.Migrations()); err != nil {
		return err
	}
	cfg, err := config.Parse[chatcfg.Config](map[string]string{"LLM_BASE_URL": model.URL, "LLM_MODEL": "scripted"})
	if err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := metrics.New("chat")
	// Chat verifies the gateway's signature, as in production.
	if internalKeys, err = internalauth.Generate("bench"); err != nil {
		return err
	}
	keys, err := internalauth.ParseKeys(internalKeys)
	if err != nil {
		return err
	}
	if internalRing, err = internalauth.NewKeyring(keys, 30*time.Second); err != nil {
		return err
	}
	h, err := chat.New(cfg, pool, m, quiet, internalRing)
	if err != nil {
		return err
	}
	srv := server.New(server.Options{Service: "chat", Logger: quiet, Metrics: m, BodyLimit: cfg.BodyLimitBytes,
		RequestTimeout: cfg.LLMQueueWait + cfg.TurnTimeout + cfg.RequestTimeout, Internal: internalRing})
	h.Routes(srv.App)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = srv.App.Listener(ln) }()
	defer srv.App.Shutdown()
	chatURL := "http://" + ln.Addr().String()

	gatewayURL, key, stop, err := startGateway(chatURL)
	if err != nil {
		return err
	}
	defer stop()

	direct := llm.New(llm.Options{BaseURL: model.URL, Model: "scripted", Timeout: time.Minute,
		Breaker: breaker.New("bench", breaker.Settings{ConsecutiveFailures: 5, OpenTimeout: 10 * time.Second, HalfOpenRequests: 1}, metrics.New("bench"))})
	req := llm.Request{Messages: []llm.Message{{Role: llm.RoleSystem, Content: "You are a bench."}, {Role: llm.RoleUser, Content: "What is the LEIE?"}}}

	type target struct {
		name string
		call func() (total, first time.Duration, err error)
	}
	modelCall := func() (time.Duration, time.Duration, error) {
		start := time.Now()
		var first time.Duration
		_, err := direct.Stream(ctx, req, func(string) {
			if first == 0 {
				first = time.Since(start)
			}
		})
		return time.Since(start), first, err
	}
	targets := []target{
		{"model directly (SDK)", modelCall},
		{"POST /chat, JSON", func() (time.Duration, time.Duration, error) { return ask(chatURL, "", false) }},
		{"POST /chat via gateway, JSON", func() (time.Duration, time.Duration, error) { return ask(gatewayURL, key, false) }},
		{"POST /chat, SSE", func() (time.Duration, time.Duration, error) { return ask(chatURL, "", true) }},
		{"POST /chat via gateway, SSE", func() (time.Duration, time.Duration, error) { return ask(gatewayURL, key, true) }},
	}
	fmt.Printf("chat overhead: scripted model answering after %s with %d tokens %s apart; %d sequential questions per target, interleaved; GOMAXPROCS=%d\n\n",
		delay, nTokens, tokenDelay, n, runtime.GOMAXPROCS(0))
	totals := make([][]time.Duration, len(targets))
	firsts := make([][]time.Duration, len(targets))
	for _, tg := range targets { // warm connections, prepared statements
		for i := 0; i < 5; i++ {
			if _, _, err := tg.call(); err != nil {
				return fmt.Errorf("%s: %w", tg.name, err)
			}
		}
	}
	for i := 0; i < n; i++ {
		for j, tg := range targets {
			total, first, err := tg.call()
			if err != nil {
				return fmt.Errorf("%s: %w", tg.name, err)
			}
			totals[j] = append(totals[j], total)
			firsts[j] = append(firsts[j], first)
		}
	}
	fmt.Printf("%-30s %10s %10s %12s %12s %14s %14s\n", "target", "total p50", "total p99", "added p50", "added p99", "1st token p50", "1st token p99")
	b50, b99 := pct(totals[0], 50), pct(totals[0], 99)
	f50, f99 := pct(firsts[0], 50), pct(firsts[0], 99)
	for j, tg := range targets {
		t50, t99 := pct(totals[j], 50), pct(totals[j], 99)
		first50, first99 := "-", "-"
		if len(firsts[j]) > 0 && firsts[j][0] > 0 {
			first50 = fmt.Sprintf("%s (+%s)", ms(pct(firsts[j], 50)), ms(pct(firsts[j], 50)-f50))
			first99 = fmt.Sprintf("%s (+%s)", ms(pct(firsts[j], 99)), ms(pct(firsts[j], 99)-f99))
		}
		fmt.Printf("%-30s %10s %10s %12s %12s %14s %14s\n", tg.name, ms(t50), ms(t99), ms(t50-b50), ms(t99-b99), first50, first99)
	}
	fmt.Printf("\nratio chat JSON p50 / model p50: %.3fx; via gateway: %.3fx\n",
		float64(pct(totals[1], 50))/float64(b50), float64(pct(totals[2], 50))/float64(b50))
	return nil
}

// internalKeys signs the calls to chat (the gateway's and the bench's own
// direct ones) and internalRing verifies them.
var (
	internalKeys string
	internalRing *internalauth.Keyring
)

// ask posts one question and returns the time to the whole answer and, for
// a stream, to the first token event.
func ask(base, key string, stream bool) (time.Duration, time.Duration, error) {
	req, _ := http.NewRequest("POST", base+"/chat", strings.NewReader(`{"message":"What is the LEIE?"}`))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	} else if err := internalRing.SignRequest(req, internalauth.Identity{Actor: "bench", Role: "reader"}); err != nil {
		return 0, 0, err
	}
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return 0, 0, fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	if !stream {
		var out struct{ Answer string }
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Answer == "" {
			return 0, 0, fmt.Errorf("answer: %v", err)
		}
		return time.Since(start), 0, nil
	}
	var first time.Duration
	sc := bufio.NewScanner(resp.Body)
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "event: token" && first == 0 {
			first = time.Since(start)
		}
		if line == "event: done" {
			done = true
		}
		if line == "event: error" {
			return 0, 0, fmt.Errorf("error event")
		}
	}
	if !done || first == 0 {
		return 0, 0, fmt.Errorf("stream ended without tokens and done")
	}
	return time.Since(start), first, nil
}

// startGateway builds the gateway binary and runs it in front of chatURL
// with one reader key.
func startGateway(chatURL string) (string, string, func(), error) {
	dir, err := os.MkdirTemp("", "bench-chat-")
	if err != nil {
		return "", "", nil, err
	}
	bin := filepath.Join(dir, "gateway")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/provcred/gateway/cmd/gateway").CombinedOutput(); err != nil {
		return "", "", nil, fmt.Errorf("build gateway: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "keygen", "--id", "bench", "--role", "reader").Output()
	if err != nil {
		return "", "", nil, fmt.Errorf("keygen: %w", err)
	}
	vals := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		vals[k] = v
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HTTP_ADDR=" + addr, "CHAT_URL=" + chatURL, "API_KEYS=" + vals["API_KEYS_ENTRY"],
		"INTERNAL_AUTH_KEYS=" + internalKeys, "RATE_LIMIT_REQUESTS_PER_MINUTE=100000000", "RATE_LIMIT_CHAT=1000000/1s", "LOG_LEVEL=error"}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return "", "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); os.RemoveAll(dir) }
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return "http://" + addr, vals["API_KEY"], stop, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return "", "", nil, fmt.Errorf("gateway not ready:\n%s", logs.String())
}

func pct(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
