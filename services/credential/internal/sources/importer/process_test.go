package importer

// The real credential binary, SIGKILLed while an import streams in: the
// attempt stays 'loading' (nothing marks it), and the next start-up marks
// it failed as interrupted. Skipped with -short.

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/pgtest"
	"github.com/provcred/platform/poll"
	"github.com/provcred/platform/proctest"
)

const credentialPkg = "github.com/provcred/credential/cmd/credential"

// admin calls the binary directly, signed as the gateway would.
var admin = proctest.SignedClient(internalauth.Identity{Actor: "key_admin", Role: "admin"})

func TestCrashedImportIsReconciledAtStartUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts credential processes; skipped with -short")
	}
	t.Parallel()
	url := pgtest.NewDatabase(t)
	bin := proctest.Binary(proctest.Build(t, credentialPkg), credentialPkg)
	env := map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "warn", "SHUTDOWN_TIMEOUT": "3s"}
	first := proctest.Start(t, bin, "credential-1", env)
	first.WaitReady(t, 90*time.Second)

	pool := testdb.Connect(t, url)
	status := func() (st, msg string, finished bool) {
		t.Helper()
		var fin *time.Time
		if err := pool.QueryRow(context.Background(), `SELECT status, error, finished_at FROM source_imports
			WHERE source = 'leie' ORDER BY id LIMIT 1`).Scan(&st, &msg, &fin); err != nil {
			return "", err.Error(), false
		}
		return st, msg, fin != nil
	}

	// An upload that sends its header and some rows, then stalls.
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, leieFile(500, "CRASH"))
		// The rest never comes: the process dies first.
	}()
	req, _ := http.NewRequest("POST", first.URL+"/admin/imports/leie?file_name=UPDATED.csv", pr)
	req.Header.Set("Content-Type", "text/csv")
	go func() {
		if resp, err := admin.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	poll.Until(t, 60*time.Second, "the import loading", func() bool { st, _, _ := status(); return st == "loading" })
	if err := first.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	// Nothing ran after the crash: the record still says loading.
	if st, msg, _ := status(); st != "loading" {
		t.Fatalf("after SIGKILL: %s %q", st, msg)
	}

	second := proctest.Start(t, bin, "credential-2", env)
	second.WaitReady(t, 90*time.Second)
	if st, msg, finished := status(); st != "failed" || msg != "interrupted" || !finished {
		t.Fatalf("after the restart: %s %q finished %v", st, msg, finished)
	}
	// The lock died with the process: the file loads now.
	resp, err := admin.Post(second.URL+"/admin/imports/leie?file_name=UPDATED.csv", "text/csv", strings.NewReader(leieFile(3, "AGAIN")))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"status":"active"`) {
		t.Fatalf("import after the restart: %d %s", resp.StatusCode, b)
	}
}
