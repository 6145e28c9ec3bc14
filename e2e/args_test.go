package e2e

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provcred/platform/proctest"
)

// TestBinariesRefuseUnknownArguments: every binary parses its command line
// before anything starts. They ignored it: `gateway --help` started a
// gateway with no keys on :8000, and `credential --help` would have
// migrated the default database. --help prints the usage and exits 0; an
// unknown flag or argument exits 2 at once, listening on nothing and
// touching no database (DATABASE_URL points at a port nobody answers, so a
// binary that tried would hang on its connect retries, not exit 2 at once).
func TestBinariesRefuseUnknownArguments(t *testing.T) {
	t.Parallel()
	dir := proctest.Build(t, append(commands, "github.com/provcred/credential/cmd/credctl",
		"github.com/provcred/platform/cmd/pgensure")...)
	deadDB := "postgres://postgres@" + proctest.FreeAddr(t) + "/nowhere?sslmode=disable&connect_timeout=30"
	type run struct {
		args     []string
		code     int
		stdout   string // a substring of stdout ("" : anything)
		stderr   string // a substring of stderr
		noListen bool
	}
	cases := map[string][]run{}
	for _, svc := range []string{"gateway", "credential", "chat", "stats"} {
		cases[svc] = []run{
			{args: []string{"--help"}, code: 0, stdout: "usage: " + svc},
			{args: []string{"-h"}, code: 0, stdout: "usage: " + svc},
			{args: []string{"--bogus"}, code: 2, stderr: `unknown flag "--bogus"`, noListen: true},
			{args: []string{"serve", "now"}, code: 2, stderr: "unknown argument", noListen: true},
		}
	}
	cases["gateway"] = append(cases["gateway"],
		run{args: []string{"migrate"}, code: 2, stderr: "unknown argument", noListen: true},
		run{args: []string{"keygen", "--help"}, code: 0, stderr: "-role"},
		run{args: []string{"keygen", "--id", "a", "--role", "admin", "extra"}, code: 2, stderr: "unknown argument"})
	cases["credctl"] = []run{
		{args: []string{"--help"}, code: 0, stderr: "usage: credctl"},
		{args: []string{"bogus"}, code: 2, stderr: "unknown command"},
		{args: []string{"import", "--help"}, code: 0, stderr: "-source"},
		{args: []string{"import", "--bogus"}, code: 2, stderr: "-bogus"},
	}
	cases["credgen"] = []run{
		{args: []string{"-h"}, code: 0, stderr: "-providers"},
		{args: []string{"--bogus"}, code: 2, stderr: "-bogus"},
		{args: []string{"-out", t.TempDir(), "stray"}, code: 2, stderr: "unknown argument"},
	}
	cases["pgensure"] = []run{
		{args: []string{}, code: 2, stderr: "usage: pgensure"},
		{args: []string{"a", "b"}, code: 2, stderr: "usage: pgensure"},
	}
	for bin, runs := range cases {
		for _, r := range runs {
			t.Run(bin+" "+strings.Join(r.args, " "), func(t *testing.T) {
				addr := proctest.FreeAddr(t)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, filepath.Join(dir, bin), r.args...)
				cmd.Env = []string{"HTTP_ADDR=" + addr, "DATABASE_URL=" + deadDB, "INTERNAL_AUTH_INSECURE_DEV=true",
					"API_KEYS=", "CREDCTL_URL=http://" + addr}
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				start := time.Now()
				err := cmd.Run()
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if code != r.code || !strings.Contains(stdout.String(), r.stdout) || !strings.Contains(stderr.String(), r.stderr) {
					t.Fatalf("exit %d (want %d) after %s\nstdout: %s\nstderr: %s", code, r.code, time.Since(start), stdout.String(), stderr.String())
				}
				if r.noListen {
					if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
						c.Close()
						t.Fatalf("something listens on %s", addr)
					}
				}
			})
		}
	}
}

// TestGatewayRefusesToStartWithoutKeys: a gateway with no API key would
// answer every request 401 while looking healthy.
func TestGatewayRefusesToStartWithoutKeys(t *testing.T) {
	t.Parallel()
	dir := build(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "gateway"))
	cmd.Env = []string{"HTTP_ADDR=" + proctest.FreeAddr(t), "INTERNAL_AUTH_INSECURE_DEV=true"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "no API keys") {
		t.Fatalf("gateway without keys: %v\n%s", err, out)
	}
}
