// Package breaker wraps sony/gobreaker v2 for one remote dependency and
// exports its state and transitions. What counts as a failure is decided
// here once for every service: 5xx answers and timeouts trip the breaker,
// 4xx answers (the caller's fault) and the caller's own cancellation do not.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/provcred/platform/metrics"
)

// ErrOpen is returned without calling the dependency while the breaker is
// open or its half-open probe quota is used.
var ErrOpen = errors.New("circuit breaker open")

// StatusError carries an HTTP status from a remote answer, so the breaker can
// tell a client error from a server error.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string { return fmt.Sprintf("remote answered HTTP %d", e.Code) }

// Settings tune one breaker. Every field must be set: the values come from
// a service's configuration, where their defaults live.
type Settings struct {
	// ConsecutiveFailures trips the breaker (at least 1).
	ConsecutiveFailures uint32
	// OpenTimeout is how long it stays open before a half-open probe (positive).
	OpenTimeout time.Duration
	// HalfOpenRequests are let through while half-open (at least 1).
	HalfOpenRequests uint32
}

// Validate reports a setting a breaker cannot work with.
func (s Settings) Validate() error {
	switch {
	case s.ConsecutiveFailures < 1:
		return fmt.Errorf("breaker: ConsecutiveFailures must be at least 1, got %d", s.ConsecutiveFailures)
	case s.OpenTimeout <= 0:
		return fmt.Errorf("breaker: OpenTimeout must be positive, got %s", s.OpenTimeout)
	case s.HalfOpenRequests < 1:
		return fmt.Errorf("breaker: HalfOpenRequests must be at least 1, got %d", s.HalfOpenRequests)
	}
	return nil
}

// Breaker guards one remote dependency.
type Breaker struct {
	// cb is replaced whole by Reset (gobreaker has no way to close an open
	// breaker from outside).
	cb       atomic.Pointer[gobreaker.CircuitBreaker[struct{}]]
	settings func() gobreaker.Settings
	state    prometheus.Gauge
	closed   prometheus.Counter
}

// New makes the breaker called name and registers its series. It panics
// on Settings that fail Validate, as time.NewTicker does on a bad period:
// they come from validated configuration, so one is a programming error
// (gobreaker would otherwise quietly put its own defaults in).
func New(name string, s Settings, m *metrics.Registry) *Breaker {
	if err := s.Validate(); err != nil {
		panic(fmt.Sprintf("breaker %s: %v", name, err))
	}
	b := &Breaker{state: m.BreakerState.WithLabelValues(name), closed: m.BreakerTransitions.WithLabelValues(name, "closed")}
	b.state.Set(0)
	for _, to := range []string{"closed", "half-open", "open"} {
		m.BreakerTransitions.WithLabelValues(name, to) // make the series exist at 0
	}
	b.settings = func() gobreaker.Settings {
		return gobreaker.Settings{
			Name:        name,
			MaxRequests: s.HalfOpenRequests,
			Timeout:     s.OpenTimeout,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= s.ConsecutiveFailures },
			OnStateChange: func(_ string, _, to gobreaker.State) {
				b.state.Set(stateValue(to))
				m.BreakerTransitions.WithLabelValues(name, to.String()).Inc()
			},
			IsSuccessful: IsSuccessful,
			IsExcluded:   isExcluded,
		}
	}
	b.cb.Store(b.fresh())
	return b
}

// fresh builds a closed gobreaker whose state changes are reported while it
// is the current one.
func (b *Breaker) fresh() *gobreaker.CircuitBreaker[struct{}] {
	st := b.settings()
	var cb *gobreaker.CircuitBreaker[struct{}]
	report := st.OnStateChange
	st.OnStateChange = func(n string, from, to gobreaker.State) {
		// A breaker that Reset replaced may still move (a call that loaded
		// it just before); its state is no longer the dependency's.
		if b.cb.Load() == cb {
			report(n, from, to)
		}
	}
	cb = gobreaker.NewCircuitBreaker[struct{}](st)
	return cb
}

// Reset closes an open breaker now instead of after OpenTimeout, for a caller
// that has proof the dependency is back (the gateway's readiness probe of a
// restarted service). It reports whether it closed it; a half-open or closed
// breaker is left to its own probe.
func (b *Breaker) Reset() bool {
	old := b.cb.Load()
	if old.State() != gobreaker.StateOpen {
		return false
	}
	if !b.cb.CompareAndSwap(old, b.fresh()) {
		return false
	}
	b.state.Set(0)
	b.closed.Inc()
	return true
}

// Do calls fn through the breaker. ctx is the caller's: its cancellation is
// not held against the dependency.
func (b *Breaker) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	_, err := b.cb.Load().Execute(func() (struct{}, error) {
		if err := ctx.Err(); err != nil {
			return struct{}{}, callerCanceled{err}
		}
		err := fn(ctx)
		if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return struct{}{}, callerCanceled{err}
		}
		return struct{}{}, err
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return fmt.Errorf("%s: %w", b.Name(), ErrOpen)
	}
	var cc callerCanceled
	if errors.As(err, &cc) {
		return cc.err
	}
	var ex excluded
	if errors.As(err, &ex) {
		return ex.err
	}
	return err
}

// State is "closed", "half-open" or "open".
func (b *Breaker) State() string { return b.cb.Load().State().String() }

// Name is the breaker's metric label.
func (b *Breaker) Name() string { return b.cb.Load().Name() }

// Counts exposes the current window's counts for health reports.
func (b *Breaker) Counts() gobreaker.Counts { return b.cb.Load().Counts() }

type callerCanceled struct{ err error }

func (c callerCanceled) Error() string { return c.err.Error() }
func (c callerCanceled) Unwrap() error { return c.err }

// Exclude marks err, returned from a Do callback, as neither a success nor
// a failure of the dependency: the call never reached it (a pooled
// connection it had closed while idle). Do returns err itself.
func Exclude(err error) error { return excluded{err} }

type excluded struct{ err error }

func (e excluded) Error() string { return e.err.Error() }
func (e excluded) Unwrap() error { return e.err }

func isExcluded(err error) bool {
	var cc callerCanceled
	var ex excluded
	return errors.As(err, &cc) || errors.As(err, &ex)
}

// IsSuccessful says whether err counts as the dependency working: nil, or a
// 4xx answer. Timeouts, connection errors and 5xx are failures.
func IsSuccessful(err error) bool {
	if err == nil {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code < 500
	}
	return false
}

// IsTimeout reports whether err is a deadline or network timeout.
func IsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func stateValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	default:
		return 0
	}
}
