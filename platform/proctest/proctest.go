// Package proctest runs the project's real binaries in tests: it builds
// them from the workspace, starts each on a free port with a minimal
// environment, waits for /readyz, and stops them (SIGTERM, then SIGKILL)
// when the test ends, printing their output if the test failed.
package proctest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreeAddr returns a loopback address with a port that was free just now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WorkspaceRoot finds the directory holding go.work above the test's.
func WorkspaceRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.work not found above the test directory")
		}
		dir = parent
	}
}

// Build compiles the command packages into one directory in a single go
// invocation and returns it; each binary is named after the last element of
// its package path.
//
// The directory is kept per workspace and package list (under the system
// temp directory) and shared by the tests of a process: go build leaves an
// up-to-date binary alone, so only the first test of a run pays for
// linking, and only when the code changed. A file lock keeps two test
// processes of one workspace from writing the same binaries at once.
func Build(t testing.TB, pkgs ...string) string {
	t.Helper()
	root := WorkspaceRoot(t)
	sum := sha256.Sum256([]byte(root + "\n" + strings.Join(pkgs, "\n")))
	dir := filepath.Join(os.TempDir(), "proctest-"+hex.EncodeToString(sum[:8]))
	v, _ := builds.LoadOrStore(dir, &buildOnce{})
	b := v.(*buildOnce)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return dir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close() // releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", append([]string{"build", "-o", dir + string(os.PathSeparator)}, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", pkgs, err, out)
	}
	b.done = true
	return dir
}

// builds are this process's Build directories.
var builds sync.Map // dir → *buildOnce

type buildOnce struct {
	mu   sync.Mutex
	done bool
}

// Binary is the path Build gave pkg's binary in dir.
func Binary(dir, pkg string) string { return filepath.Join(dir, path.Base(pkg)) }

// Proc is one running binary.
type Proc struct {
	Name string
	// URL is http://<its HTTP_ADDR>.
	URL  string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// Start runs the binary at bin with HTTP_ADDR set to a free port, PATH,
// HOME, INTERNAL_AUTH_KEYS (InternalKeys, unless env configures internal
// auth) and env on top. It is stopped when t ends. An HTTP_ADDR in env is
// kept (a restart on the address of the process it replaces).
func Start(t testing.TB, bin, name string, env map[string]string) *Proc {
	t.Helper()
	addr := env["HTTP_ADDR"]
	if addr == "" {
		addr = FreeAddr(t)
	}
	p := &Proc{Name: name, URL: "http://" + addr, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "HTTP_ADDR=" + addr}
	p.cmd.Env = append(p.cmd.Env, withInternalKeys(env)...)
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("---- %s output (tail) ----\n%s", name, tail(p.Output(), 8000))
		}
	})
	return p
}

// WaitReady polls /readyz until it answers 200; it fails the test if the
// process exits first or timeout passes.
func (p *Proc) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !p.Running() {
			t.Fatalf("%s exited before it was ready:\n%s", p.Name, tail(p.Output(), 8000))
		}
		resp, err := http.Get(p.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %s:\n%s", p.Name, timeout, tail(p.Output(), 8000))
}

// WaitOutput waits until the process has written s (a log line's text);
// it fails the test if the process exits first or timeout passes. A
// process that shares its address with another (SO_REUSEPORT) cannot be
// told apart by /readyz: its own "listening" line can.
func (p *Proc) WaitOutput(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Output(), s) {
			return
		}
		if !p.Running() {
			t.Fatalf("%s exited before writing %q:\n%s", p.Name, s, tail(p.Output(), 8000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not write %q within %s:\n%s", p.Name, s, timeout, tail(p.Output(), 8000))
}

// Stop sends SIGTERM (a graceful drain), then SIGKILL after grace.
func (p *Proc) Stop(grace time.Duration) {
	if !p.Running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill sends SIGKILL (no drain, as a crashed node) and waits for the exit.
func (p *Proc) Kill() error {
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Output is what the process wrote to stdout and stderr so far.
func (p *Proc) Output() string { return p.out.String() }

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(b)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
