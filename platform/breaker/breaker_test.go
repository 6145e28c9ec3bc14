package breaker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/provcred/platform/metrics"
)

func TestClassification(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantOpen bool // after 3 such errors with a threshold of 3
	}{
		{"server error trips", &StatusError{Code: 503}, true},
		{"timeout trips", context.DeadlineExceeded, true},
		{"connection error trips", errors.New("dial tcp: connection refused"), true},
		{"client error does not trip", &StatusError{Code: 404}, false},
		{"wrapped client error does not trip", errors.Join(errors.New("x"), &StatusError{Code: 422}), false},
		{"success does not trip", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New("test")
			b := New("dep", Settings{ConsecutiveFailures: 3, OpenTimeout: time.Hour, HalfOpenRequests: 1}, m)
			for i := 0; i < 3; i++ {
				_ = b.Do(context.Background(), func(context.Context) error { return tt.err })
			}
			if got := b.State() == "open"; got != tt.wantOpen {
				t.Fatalf("open = %v, want %v", got, tt.wantOpen)
			}
		})
	}
}

func TestCallerCancelDoesNotTrip(t *testing.T) {
	m := metrics.New("test")
	b := New("dep", Settings{ConsecutiveFailures: 1, OpenTimeout: time.Hour, HalfOpenRequests: 1}, m)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	// Canceled mid-call, too.
	ctx2, cancel2 := context.WithCancel(context.Background())
	err = b.Do(ctx2, func(ctx context.Context) error { cancel2(); return ctx.Err() })
	if !errors.Is(err, context.Canceled) || b.State() != "closed" {
		t.Fatalf("err = %v state = %s", err, b.State())
	}
}

func TestOpenHalfOpenClosedWithMetrics(t *testing.T) {
	m := metrics.New("test")
	// Open long enough that a loaded machine cannot reach half-open early.
	b := New("nppes", Settings{ConsecutiveFailures: 2, OpenTimeout: 500 * time.Millisecond, HalfOpenRequests: 1}, m)
	fail := func(context.Context) error { return &StatusError{Code: 500} }
	calls := 0
	ok := func(context.Context) error { calls++; return nil }
	_ = b.Do(context.Background(), fail)
	_ = b.Do(context.Background(), fail)
	if v, _ := m.Value("circuit_breaker_state", "name=nppes"); v != 2 {
		t.Fatalf("state gauge = %v, want 2", v)
	}
	if err := b.Do(context.Background(), ok); !errors.Is(err, ErrOpen) || calls != 0 {
		t.Fatalf("open breaker must not call: err=%v calls=%d", err, calls)
	}
	time.Sleep(600 * time.Millisecond)
	if err := b.Do(context.Background(), ok); err != nil {
		t.Fatal(err)
	}
	if b.State() != "closed" {
		t.Fatalf("state = %s", b.State())
	}
	for to, want := range map[string]float64{"open": 1, "half-open": 1, "closed": 1} {
		if v, _ := m.Value("circuit_breaker_transitions_total", "name=nppes", "to="+to); v != want {
			t.Errorf("transitions to %s = %v", to, v)
		}
	}
}

func TestExcludedErrorsDoNotCount(t *testing.T) {
	m := metrics.New("test")
	b := New("dep", Settings{ConsecutiveFailures: 2, OpenTimeout: time.Hour, HalfOpenRequests: 1}, m)
	stale := errors.New("pooled connection closed by the peer")
	fail := errors.New("connection refused")
	for i, step := range []struct {
		err      error
		wantOpen bool
	}{
		{fail, false},
		// Excluded: neither a failure (it would open) nor a success (it
		// would reset the run of failures).
		{Exclude(stale), false}, {Exclude(stale), false}, {Exclude(stale), false},
		{fail, true},
	} {
		err := b.Do(context.Background(), func(context.Context) error { return step.err })
		if step.err == fail && err != fail {
			t.Fatalf("step %d: err = %v", i, err)
		}
		if step.err != fail && err != stale {
			t.Fatalf("step %d: excluded error came back as %v, want the error itself", i, err)
		}
		if got := b.State() == "open"; got != step.wantOpen {
			t.Fatalf("step %d: open = %v, want %v", i, got, step.wantOpen)
		}
	}
}

func TestReset(t *testing.T) {
	m := metrics.New("test")
	b := New("dep", Settings{ConsecutiveFailures: 1, OpenTimeout: time.Hour, HalfOpenRequests: 1}, m)
	if b.Reset() {
		t.Fatal("Reset of a closed breaker reported a change")
	}
	_ = b.Do(context.Background(), func(context.Context) error { return &StatusError{Code: 502} })
	if b.State() != "open" {
		t.Fatal("not open")
	}
	if !b.Reset() {
		t.Fatal("Reset of an open breaker did nothing")
	}
	calls := 0
	if err := b.Do(context.Background(), func(context.Context) error { calls++; return nil }); err != nil || calls != 1 {
		t.Fatalf("after Reset: err=%v calls=%d", err, calls)
	}
	if v, _ := m.Value("circuit_breaker_state", "name=dep"); v != 0 {
		t.Fatalf("state gauge = %v", v)
	}
	if v, _ := m.Value("circuit_breaker_transitions_total", "name=dep", "to=closed"); v != 1 {
		t.Fatalf("closed transitions = %v", v)
	}
	// The new breaker trips and reports as the old one did.
	_ = b.Do(context.Background(), func(context.Context) error { return &StatusError{Code: 502} })
	if v, _ := m.Value("circuit_breaker_state", "name=dep"); v != 2 || b.State() != "open" {
		t.Fatalf("after a new failure: gauge %v state %s", v, b.State())
	}
	if v, _ := m.Value("circuit_breaker_transitions_total", "name=dep", "to=open"); v != 2 {
		t.Fatalf("open transitions = %v", v)
	}
}

// Settings are taken as given: one a breaker cannot work with is refused,
// not quietly replaced by gobreaker's own defaults.
func TestSettingsValidate(t *testing.T) {
	t.Parallel()
	good := Settings{ConsecutiveFailures: 1, OpenTimeout: time.Millisecond, HalfOpenRequests: 1}
	for _, c := range []struct {
		name string
		s    Settings
		ok   bool
	}{
		{"all set", good, true},
		{"no failures", Settings{OpenTimeout: time.Second, HalfOpenRequests: 1}, false},
		{"no open timeout", Settings{ConsecutiveFailures: 5, HalfOpenRequests: 1}, false},
		{"negative open timeout", Settings{ConsecutiveFailures: 5, OpenTimeout: -time.Second, HalfOpenRequests: 1}, false},
		{"no half-open requests", Settings{ConsecutiveFailures: 5, OpenTimeout: time.Second}, false},
		{"zero", Settings{}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if err := c.s.Validate(); (err == nil) != c.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, c.ok)
			}
			if c.ok {
				return
			}
			defer func() {
				if recover() == nil {
					t.Fatal("New accepted invalid settings")
				}
			}()
			New("dep", c.s, metrics.New("test"))
		})
	}
}
