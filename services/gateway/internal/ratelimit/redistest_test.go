package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provcred/platform/metrics"
)

// The shared Redis of the machine (scripts/ensure-services.sh starts it);
// tests on it use a unique key prefix and never flush it. Tests that stop,
// pause or fail over Redis start their own redis-server.
func sharedRedisAddr() string {
	if a := os.Getenv("TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

func uniquePrefix(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "test:rl:" + strings.NewReplacer("/", ":", " ", "_").Replace(t.Name()) + ":" + hex.EncodeToString(b[:]) + ":"
}

// redisServer is a redis-server started by a test on a free port.
type redisServer struct {
	t    testing.TB
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// startRedis runs redis-server on a free port (whose cluster bus port,
// +10000, is free too) until the test ends.
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not on the PATH (Debian package redis-server)")
	}
	s := &redisServer{t: t, port: freeClusterPort(t), dir: t.TempDir(), args: extra}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *redisServer) start() {
	s.t.Helper()
	args := append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log")}, s.args...)
	s.cmd = exec.Command("redis-server", args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if out, err := s.cliErr("PING"); err == nil && out == "PONG" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	s.t.Fatalf("redis-server on %d did not answer:\n%s", s.port, log)
}

// kill stops the server as a crash would (SIGKILL).
func (s *redisServer) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *redisServer) cliErr(args ...string) (string, error) {
	out, err := exec.Command("redis-cli", append([]string{"-p", strconv.Itoa(s.port)}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (s *redisServer) cli(args ...string) string {
	s.t.Helper()
	out, err := s.cliErr(args...)
	if err != nil {
		s.t.Fatalf("redis-cli %v: %v %s", args, err, out)
	}
	return out
}

func freeClusterPort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	t.Fatal("no free port pair")
	return 0
}

type limiterEnv struct {
	*Redis
	reg *metrics.Registry
}

func (e limiterEnv) value(name string) float64 {
	v, _ := e.reg.Value(name)
	return v
}

// newRedisLimiter connects a limiter to addrs and waits until it is
// connected (unless the test wants it to start without Redis).
func newRedisLimiter(t testing.TB, o RedisOptions, addrs ...string) limiterEnv {
	t.Helper()
	opt, err := ClientOption("", addrs, "", "", "", 25*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if o.Prefix == "" {
		o.Prefix = uniquePrefix(t)
	}
	if o.Timeout == 0 {
		// Generous unless the test is about timing: -race on two shared
		// cores can stall a healthy call past tens of milliseconds.
		o.Timeout = 500 * time.Millisecond
	}
	o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	if o.Breaker.OpenTimeout == 0 {
		o.Breaker.OpenTimeout = 200 * time.Millisecond
	}
	o.Client = opt
	reg := metrics.New("gateway")
	o.Registry = reg
	r := NewRedis(o)
	t.Cleanup(r.Close)
	waitFor(t, 10*time.Second, "limiter connected", func() bool { return r.client.Load() != nil })
	return limiterEnv{r, reg}
}

func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// forwarder is a TCP proxy with a target the test moves, standing in for a
// Kubernetes Service or a virtual IP that follows the primary.
type forwarder struct {
	ln     net.Listener
	mu     sync.Mutex
	target string
}

func newForwarder(t testing.TB, target string) *forwarder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{ln: ln, target: target}
	var conns sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			target := f.target
			f.mu.Unlock()
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			open = append(open, c, up)
			mu.Unlock()
			conns.Add(2)
			go func() { defer conns.Done(); _, _ = io.Copy(up, c); up.Close() }()
			go func() { defer conns.Done(); _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	return f
}

func (f *forwarder) addr() string { return f.ln.Addr().String() }
func (f *forwarder) point(target string) {
	f.mu.Lock()
	f.target = target
	f.mu.Unlock()
}

func redisAllow(t testing.TB, l Limiter, p Policy, key string) Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), p, key)
	if err != nil {
		t.Fatalf("Allow: %v", err)
	}
	return d
}

func countAllowed(t testing.TB, l Limiter, p Policy, key string, n int) int {
	t.Helper()
	ok := 0
	for i := 0; i < n; i++ {
		if redisAllow(t, l, p, key).Allowed {
			ok++
		}
	}
	return ok
}

func commandCalls(s *redisServer, cmd string) int {
	for _, line := range strings.Split(s.cli("INFO", "commandstats"), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); ok {
			n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
			return n
		}
	}
	return 0
}

func fmtKey(prefix string, p Policy, key string) string {
	return fmt.Sprintf("%s{%s:%s}", prefix, p.Name, key)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
