// Package redistest runs real Redis servers for tests: the machine's shared
// one (with a unique key prefix; never flushed) and private redis-server
// processes on free ports for tests that stop, pause or fail Redis over.
package redistest

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SharedAddr is the shared Redis of the machine (scripts/ensure-services.sh starts it);
// tests on it use a unique key prefix and never flush it. Tests that stop,
// pause or fail over Redis start their own redis-server.
func SharedAddr() string {
	if a := os.Getenv("TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// UniquePrefix is a key prefix no other test (or helper) uses.
func UniquePrefix(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "test:rl:" + strings.NewReplacer("/", ":", " ", "_").Replace(t.Name()) + ":" + hex.EncodeToString(b[:]) + ":"
}

// Server is a redis-server started by a test on a free port.
// Server is a redis-server started by a test.
type Server struct {
	t    testing.TB
	port int
	dir  string
	conf string // a config file first on the command line (Sentinel)
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Port is the server's port.
func (s *Server) Port() int { return s.port }

// Start runs redis-server on a free port (whose cluster bus port,
// +10000, is free too) until the test ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not on the PATH (Debian package redis-server)")
	}
	s := &Server{t: t, port: FreeClusterPort(t), dir: t.TempDir(), args: extra}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// StartSentinel runs a Sentinel on a free port that monitors master as
// name (quorum 1, down after 1 s), until the test ends.
func StartSentinel(t testing.TB, name string, master *Server) *Server {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	body := "sentinel monitor " + name + " 127.0.0.1 " + strconv.Itoa(master.port) + " 1\n" +
		"sentinel down-after-milliseconds " + name + " 1000\nsentinel failover-timeout " + name + " 5000\n"
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, port: FreeClusterPort(t), dir: dir, conf: conf, args: []string{"--sentinel"}}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// Start starts the server again (same port and arguments) after Kill.
func (s *Server) Start() {
	s.t.Helper()
	var args []string
	if s.conf != "" {
		args = append(args, s.conf)
	}
	args = append(args, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	args = append(args, s.args...)
	s.cmd = exec.Command("redis-server", args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if out, err := s.CliErr("PING"); err == nil && out == "PONG" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	s.t.Fatalf("redis-server on %d did not answer:\n%s", s.port, log)
}

// kill stops the server as a crash would (SIGKILL).
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// CliErr runs redis-cli against the server.
func (s *Server) CliErr(args ...string) (string, error) {
	out, err := exec.Command("redis-cli", append([]string{"-p", strconv.Itoa(s.port)}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Cli runs redis-cli against the server and fails the test on an error.
func (s *Server) Cli(args ...string) string {
	s.t.Helper()
	out, err := s.CliErr(args...)
	if err != nil {
		s.t.Fatalf("redis-cli %v: %v %s", args, err, out)
	}
	return out
}

// FreeClusterPort is a free port whose cluster bus port (+10000) is free too.
func FreeClusterPort(t testing.TB) int {
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

// Forwarder is a TCP proxy with a target the test moves, standing in for a
// Kubernetes Service or a virtual IP that follows the primary.
type Forwarder struct {
	ln     net.Listener
	mu     sync.Mutex
	target string
}

// NewForwarder listens on a free port and forwards to target.
func NewForwarder(t testing.TB, target string) *Forwarder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Forwarder{ln: ln, target: target}
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

// Addr is where clients connect.
func (f *Forwarder) Addr() string { return f.ln.Addr().String() }

// Point sends new connections to target (open ones stay where they are).
func (f *Forwarder) Point(target string) {
	f.mu.Lock()
	f.target = target
	f.mu.Unlock()
}

// CommandCalls is INFO commandstats' call count of cmd on s.
func CommandCalls(s *Server, cmd string) int {
	for _, line := range strings.Split(s.Cli("INFO", "commandstats"), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); ok {
			n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
			return n
		}
	}
	return 0
}

// Writer sends log lines to the test's log.
type Writer struct{ T testing.TB }

func (w Writer) Write(b []byte) (int, error) {
	w.T.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
