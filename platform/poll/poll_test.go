package poll

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestUntilWaitsForTheCondition(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	Until(t, 5*time.Second, "the third ask", func() bool { return n.Add(1) >= 3 })
	if got := n.Load(); got != 3 {
		t.Fatalf("asked %d times, want 3", got)
	}
}

// fake records whether Until gave up, without ending the real test.
type fake struct {
	testing.TB
	failed string
}

func (f *fake) Helper() {}
func (f *fake) Fatalf(format string, args ...any) {
	f.failed = format
	panic(f)
}

func TestUntilFailsAfterWithin(t *testing.T) {
	t.Parallel()
	f := &fake{TB: t}
	start := time.Now()
	func() {
		defer func() { _ = recover() }()
		Until(f, 100*time.Millisecond, "never", func() bool { return false })
	}()
	if f.failed == "" {
		t.Fatal("Until returned without the condition holding")
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Fatalf("gave up after %s, want about 100ms", d)
	}
}
