package statstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGBin holds the PostgreSQL server binaries (PG_BIN overrides).
func PGBin() string {
	if d := os.Getenv("PG_BIN"); d != "" {
		return d
	}
	return "/usr/lib/postgresql/15/bin"
}

// Server is a private PostgreSQL server on a free port, stopped when the
// test ends.
type Server struct {
	Port int
	dir  string
	opts string
}

// URL is the server's connection string for database db.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// as runs a server binary; as root, as the postgres user (the server
// refuses to run as root).
func as(name string, args ...string) *exec.Cmd {
	bin := filepath.Join(PGBin(), name)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

func run(cmd *exec.Cmd) error {
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", cmd.String(), err, out)
	}
	return nil
}

// privateDir makes a directory the server's user owns.
func privateDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root without a postgres user to run a private server: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// StartPrimary initialises and starts a server that can stream to standbys.
func StartPrimary(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(filepath.Join(PGBin(), "initdb")); err != nil {
		t.Skipf("no PostgreSQL server binaries in %s (set PG_BIN)", PGBin())
	}
	s := &Server{dir: filepath.Join(privateDir(t, "statstest-primary-"), "data")}
	if err := run(as("initdb", "-D", s.dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")); err != nil {
		t.Fatal(err)
	}
	s.start(t, "-c wal_level=replica -c max_wal_senders=4 -c fsync=off -c full_page_writes=off")
	return s
}

// Standby copies the primary with pg_basebackup and starts it as a hot
// standby streaming from it.
func (s *Server) Standby(t testing.TB) *Server {
	t.Helper()
	st := &Server{dir: filepath.Join(privateDir(t, "statstest-standby-"), "data")}
	if err := run(as("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "postgres",
		"-D", st.dir, "-R", "-X", "stream", "--no-sync",
		// A spread checkpoint (the default) waits out most of
		// checkpoint_timeout on an idle primary: about two minutes.
		"--checkpoint=fast")); err != nil {
		t.Fatal(err)
	}
	st.start(t, "-c hot_standby=on -c fsync=off")
	return st
}

func (s *Server) start(t testing.TB, opts string) {
	t.Helper()
	if s.Port == 0 {
		s.Port = freePort(t)
	}
	o := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s %s", s.Port, filepath.Dir(s.dir), opts)
	if err := run(as("pg_ctl", "-D", s.dir, "-o", o, "-l", filepath.Join(filepath.Dir(s.dir), "log"), "-w", "-t", "60", "start")); err != nil {
		log, _ := os.ReadFile(filepath.Join(filepath.Dir(s.dir), "log"))
		t.Fatalf("%v\n%s", err, log)
	}
	s.opts = o
	t.Cleanup(func() { _ = run(as("pg_ctl", "-D", s.dir, "-m", "immediate", "stop")) })
}

// Stop stops the server at once (a crash, as far as clients can tell).
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := run(as("pg_ctl", "-D", s.dir, "-m", "immediate", "-w", "stop")); err != nil {
		t.Fatal(err)
	}
}

// Restart starts a stopped server again on the same port.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := run(as("pg_ctl", "-D", s.dir, "-o", s.opts, "-l", filepath.Join(filepath.Dir(s.dir), "log"), "-w", "-t", "60", "start")); err != nil {
		t.Fatal(err)
	}
}

// WaitReplayed waits until standby has replayed everything the primary
// had written when it was called.
func WaitReplayed(t testing.TB, primary, standby *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := pgx.Connect(ctx, primary.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	var lsn string
	if err := p.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	s, err := pgx.Connect(ctx, standby.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	for {
		var done bool
		if err := s.QueryRow(ctx, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn).Scan(&done); err != nil {
			t.Fatal(err)
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the standby did not replay up to %s in time", lsn)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
