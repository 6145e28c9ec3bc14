package filewatch_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/provcred/platform/filewatch"
)

// A change is applied once; a bad content is reported once however long
// it stays; a missing file is reported until it is back; the content read
// at start is not applied again.
func TestPoll(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	write := func(s string) {
		t.Helper()
		// As the kubelet does: a new file renamed over the old one.
		tmp := filepath.Join(dir, "tmp")
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("a")
	var mu sync.Mutex
	var applied []string
	var failures []error
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		filewatch.Poll(ctx, path, 5*time.Millisecond, []byte("a"), func(b []byte) error {
			mu.Lock()
			defer mu.Unlock()
			applied = append(applied, string(b))
			if string(b) == "bad" {
				return errors.New("bad content")
			}
			return nil
		}, func(err error) {
			mu.Lock()
			defer mu.Unlock()
			failures = append(failures, err)
		})
	}()
	state := func() ([]string, int) {
		mu.Lock()
		defer mu.Unlock()
		return append([]string{}, applied...), len(failures)
	}
	waitFor := func(what string, ok func([]string, int) bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if ok(state()) {
				return
			}
		}
		a, f := state()
		t.Fatalf("%s: applied %v, %d failures", what, a, f)
	}
	time.Sleep(30 * time.Millisecond)
	if a, f := state(); len(a) != 0 || f != 0 {
		t.Fatalf("the content read at start was applied again: %v, %d failures", a, f)
	}
	write("b")
	waitFor("a change applied", func(a []string, f int) bool { return len(a) == 1 && a[0] == "b" })
	write("bad")
	waitFor("a bad content reported", func(a []string, f int) bool { return len(a) == 2 && f == 1 })
	time.Sleep(30 * time.Millisecond)
	if a, f := state(); len(a) != 2 || f != 1 {
		t.Fatalf("a bad content was applied or reported again: %v, %d failures", a, f)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor("a missing file reported each time", func(a []string, f int) bool { return f >= 3 })
	write("c")
	waitFor("the file back", func(a []string, f int) bool { return len(a) == 3 && a[2] == "c" })
	cancel()
	<-done
}
