// Package semaphore is a counting semaphore that reports its capacity, use,
// waiters and rejections to Prometheus, and bounds how long a caller waits.
// It replaces the original service's per-process asyncio semaphores; its
// numbers feed /health/concurrency and the autoscalers.
package semaphore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/provcred/platform/metrics"
)

// ErrBusy is returned when no permit came free within the wait bound.
var ErrBusy = errors.New("semaphore: no permit available in time")

// Semaphore limits how many callers run a section at once.
type Semaphore struct {
	name    string
	slots   chan struct{}
	waiting atomic.Int64
	maxWait time.Duration

	inUse, waitingG prometheus.Gauge
	rejected        prometheus.Counter
}

// New makes a semaphore of capacity permits. maxWait bounds Acquire's wait
// (0 means: fail at once when none is free).
func New(name string, capacity int, maxWait time.Duration, m *metrics.Registry) *Semaphore {
	if capacity < 1 {
		panic(fmt.Sprintf("semaphore %s: capacity must be >= 1", name))
	}
	s := &Semaphore{
		name: name, slots: make(chan struct{}, capacity), maxWait: maxWait,
		inUse:    m.SemaphoreInUse.WithLabelValues(name),
		waitingG: m.SemaphoreWaiting.WithLabelValues(name),
		rejected: m.SemaphoreRejected.WithLabelValues(name),
	}
	m.SemaphoreCapacity.WithLabelValues(name).Set(float64(capacity))
	s.inUse.Set(0)
	s.waitingG.Set(0)
	return s
}

// Acquire takes a permit, waiting at most the semaphore's bound or until ctx
// ends. Every successful Acquire must be paired with Release.
func (s *Semaphore) Acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		s.inUse.Inc()
		return nil
	default:
	}
	if s.maxWait <= 0 {
		s.rejected.Inc()
		return ErrBusy
	}
	s.waitingG.Set(float64(s.waiting.Add(1)))
	defer func() { s.waitingG.Set(float64(s.waiting.Add(-1))) }()
	t := time.NewTimer(s.maxWait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		s.inUse.Inc()
		return nil
	case <-t.C:
		s.rejected.Inc()
		return ErrBusy
	case <-ctx.Done():
		s.rejected.Inc()
		return fmt.Errorf("semaphore %s: %w", s.name, ctx.Err())
	}
}

// Release returns a permit.
func (s *Semaphore) Release() {
	<-s.slots
	s.inUse.Dec()
}

// Do runs fn holding a permit.
func (s *Semaphore) Do(ctx context.Context, fn func() error) error {
	if err := s.Acquire(ctx); err != nil {
		return err
	}
	defer s.Release()
	return fn()
}

// Stats is the semaphore's view in /health/concurrency.
type Stats struct {
	Available   int    `json:"available"`
	Total       int    `json:"total"`
	InUse       int    `json:"in_use"`
	Waiting     int64  `json:"waiting"`
	Utilization string `json:"utilization"`
}

// Name is the semaphore's metric label.
func (s *Semaphore) Name() string { return s.name }

// Stats reports the semaphore's current use.
func (s *Semaphore) Stats() Stats {
	used, total := len(s.slots), cap(s.slots)
	return Stats{
		Available: total - used, Total: total, InUse: used, Waiting: s.waiting.Load(),
		Utilization: fmt.Sprintf("%.1f%%", float64(used)*100/float64(total)),
	}
}
