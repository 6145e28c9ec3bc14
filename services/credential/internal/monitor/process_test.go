package monitor

// The real credential binary, SIGKILLed while the re-screen job of an LEIE
// import it committed is running: the job survives the process (it was
// inserted in the import's transaction), a second process's River rescues
// and finishes it, and the possible match gets exactly one review item.
// Skipped with -short.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/provcred/credential/internal/seed"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/pgtest"
	"github.com/provcred/platform/poll"
	"github.com/provcred/platform/proctest"
)

const credentialPkg = "github.com/provcred/credential/cmd/credential"

func TestRescreenJobSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts credential processes; skipped with -short")
	}
	t.Parallel()
	admin := proctest.SignedClient(internalauth.Identity{Actor: "key_admin", Role: "admin"})
	url := pgtest.NewDatabase(t)
	bin := proctest.Binary(proctest.Build(t, credentialPkg), credentialPkg)
	// A stuck job is rescued 3 s after its attempt started (River's rescuer).
	env := map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "warn", "SHUTDOWN_TIMEOUT": "3s",
		"BATCH_JOB_TIMEOUT": "2s", "BATCH_RESCUE_STUCK_AFTER": "3s", "WEBHOOK_TIMEOUT": "1s", "RESCREEN_JOB_TIMEOUT": "2s"}
	first := proctest.Start(t, bin, "credential-1", env)
	first.WaitReady(t, 90*time.Second)

	pool := testdb.Connect(t, url)
	ctx := context.Background()
	post := func(base, path, ctype, body string) string {
		t.Helper()
		resp, err := admin.Post(base+path, ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s = %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	npi := seed.NPI("155555555")
	post(first.URL, "/providers", "application/json",
		fmt.Sprintf(`{"id":"p_kill","npi":%q,"first_name":"Maria","last_name":"Lopez","date_of_birth":"1970-01-02"}`, npi))

	// Hold the re-screen's lock: the job starts, marks itself running and waits for it.
	lock, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_lock(hashtext('exclusion_rescreen'), hashtext('leie'))`); err != nil {
		t.Fatal(err)
	}
	file := seed.LEIE(seed.LEIERow{Last: "LOPEZ", First: "MARIA", DOB: "19700102"},
		seed.LEIERow{Last: "UNRELATED", First: "PAT", NPI: seed.NPI("199999999")})
	if rec := post(first.URL, "/admin/imports/leie?file_name=UPDATED.csv", "text/csv", file); !strings.Contains(rec, `"status":"active"`) {
		t.Fatalf("import: %s", rec)
	}
	state := func() (status string, attempts, opened, items int) {
		t.Helper()
		var st *string
		var a, o *int
		if err := pool.QueryRow(ctx, `SELECT rescreen_status, rescreen_attempts, rescreen_reviews_opened,
				(SELECT count(*) FROM review_items WHERE provider_id = 'p_kill')
			FROM source_imports WHERE source = 'leie' AND status = 'active'`).Scan(&st, &a, &o, &items); err != nil {
			t.Fatal(err)
		}
		if st != nil {
			status = *st
		}
		if a != nil {
			attempts = *a
		}
		if o != nil {
			opened = *o
		}
		return status, attempts, opened, items
	}
	poll.Until(t, 60*time.Second, "the re-screen running", func() bool { s, _, _, _ := state(); return s == "running" })
	if err := first.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('exclusion_rescreen'), hashtext('leie'))`); err != nil {
		t.Fatal(err)
	}
	lock.Release()
	if s, _, _, items := state(); s != "running" || items != 0 {
		t.Fatalf("after SIGKILL: %s, %d items", s, items)
	}

	second := proctest.Start(t, bin, "credential-2", env)
	second.WaitReady(t, 90*time.Second)
	poll.Until(t, 120*time.Second, "the re-screen done by the second process", func() bool { s, _, _, _ := state(); return s == "done" })
	if s, attempts, opened, items := state(); attempts < 2 || opened != 1 || items != 1 {
		t.Fatalf("after the restart: %s, attempt %d, %d opened, %d items", s, attempts, opened, items)
	}
}
