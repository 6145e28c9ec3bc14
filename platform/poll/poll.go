// Package poll is the one way a test waits for something another
// goroutine or process brings about: ask until it holds, or fail.
package poll

import (
	"testing"
	"time"
)

// Interval is how often Until asks.
const Interval = 20 * time.Millisecond

// Until asks ok every Interval until it holds, or fails t after within,
// saying what it waited for.
func Until(t testing.TB, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(Interval)
	}
}
