package semaphore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/provcred/platform/metrics"
)

func TestAcquireRelease(t *testing.T) {
	m := metrics.New("test")
	s := New("llm", 2, 50*time.Millisecond, m)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := s.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Available != 0 || st.Utilization != "100.0%" {
		t.Fatalf("stats = %+v", st)
	}
	start := time.Now()
	if err := s.Acquire(ctx); !errors.Is(err, ErrBusy) {
		t.Fatalf("third acquire: %v, want ErrBusy", err)
	}
	if time.Since(start) < 40*time.Millisecond {
		t.Fatal("acquire did not wait for its bound")
	}
	if v, _ := m.Value("semaphore_rejected_total", "name=llm"); v != 1 {
		t.Fatalf("rejected = %v", v)
	}
	s.Release()
	if v, _ := m.Value("semaphore_in_use", "name=llm"); v != 1 {
		t.Fatalf("in_use = %v", v)
	}
	if v, _ := m.Value("semaphore_capacity", "name=llm", "service=test"); v != 2 {
		t.Fatalf("capacity = %v", v)
	}
}

func TestWaiterGetsReleasedPermit(t *testing.T) {
	m := metrics.New("test")
	s := New("batch", 1, time.Second, m)
	ctx := context.Background()
	_ = s.Acquire(ctx)
	done := make(chan error)
	go func() { done <- s.Acquire(ctx) }()
	// Wait until the waiter is counted, then hand it the permit.
	for s.Stats().Waiting == 0 {
		time.Sleep(time.Millisecond)
	}
	if v, _ := m.Value("semaphore_waiting", "name=batch"); v != 1 {
		t.Fatalf("waiting gauge = %v", v)
	}
	s.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestZeroWaitAndCancel(t *testing.T) {
	m := metrics.New("test")
	s := New("file", 1, 0, m)
	_ = s.Acquire(context.Background())
	if err := s.Acquire(context.Background()); !errors.Is(err, ErrBusy) {
		t.Fatalf("zero wait: %v", err)
	}
	s2 := New("file2", 1, time.Minute, m)
	_ = s2.Acquire(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s2.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancel: %v", err)
	}
}

func TestNeverExceedsCapacity(t *testing.T) {
	m := metrics.New("test")
	s := New("cap", 3, time.Second, m)
	var mu sync.Mutex
	cur, peak := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Do(context.Background(), func() error {
				mu.Lock()
				cur++
				peak = max(peak, cur)
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
				mu.Lock()
				cur--
				mu.Unlock()
				return nil
			})
		}()
	}
	wg.Wait()
	if peak != 3 {
		t.Fatalf("peak concurrency %d, want 3", peak)
	}
}
