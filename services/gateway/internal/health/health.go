// Package health aggregates the services' health into the gateway's
// /health and /health/concurrency: every upstream is probed at once with a
// short timeout, and a dead one shows as {"status":"unreachable"} while the
// gateway itself keeps answering 200 with "status":"degraded".
package health

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/provcred/platform/breaker"
)

// Target is an upstream that can be probed.
type Target interface {
	Get(ctx context.Context, path string, timeout time.Duration) (int, []byte, error)
}

// Unreachable is what an upstream that did not answer looks like.
const Unreachable = "unreachable"

// Probe GETs path on every target concurrently and returns each one's JSON
// body (or {"status":"unreachable"}), keyed by name, and whether all are OK.
func Probe(ctx context.Context, targets map[string]Target, path string, timeout time.Duration) (map[string]any, bool) {
	type result struct {
		name string
		body map[string]any
		ok   bool
	}
	ch := make(chan result, len(targets))
	var wg sync.WaitGroup
	for name, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch <- probeOne(ctx, name, t, path, timeout)
		}()
	}
	wg.Wait()
	close(ch)
	out := make(map[string]any, len(targets))
	all := true
	for r := range ch {
		out[r.name] = r.body
		all = all && r.ok
	}
	return out, all
}

func probeOne(ctx context.Context, name string, t Target, path string, timeout time.Duration) (r struct {
	name string
	body map[string]any
	ok   bool
}) {
	r.name = name
	status, body, err := t.Get(ctx, path, timeout)
	if err != nil {
		// The endpoint is open: say what kind of failure, never the dial
		// error itself (it carries internal addresses).
		reason := "connection failed"
		if breaker.IsTimeout(err) {
			reason = "timeout"
		}
		r.body = map[string]any{"status": Unreachable, "error": reason}
		return r
	}
	var m map[string]any
	if json.Unmarshal(body, &m) != nil || m == nil {
		m = map[string]any{"status": "invalid_response"}
	}
	if status >= 500 {
		if _, has := m["status"]; !has {
			m["status"] = "unhealthy"
		}
	}
	m["http_status"] = status
	s, _ := m["status"].(string)
	r.ok = status < 400 && (s == "healthy" || s == "ready" || s == "alive")
	r.body = m
	return r
}

// Short keeps only the status of each upstream's report, for /health.
func Short(reports map[string]any) map[string]any {
	out := make(map[string]any, len(reports))
	for name, r := range reports {
		m, _ := r.(map[string]any)
		out[name] = map[string]any{"status": m["status"]}
	}
	return out
}

// Prober probes targets for one path and shares the result among callers:
// concurrent callers wait for the probe in flight, and a result is reused
// for TTL. Load balancers and kubelets poll /health often, and without this
// every poll would fan out to every service.
type Prober struct {
	Targets map[string]Target
	Path    string
	Timeout time.Duration
	TTL     time.Duration
	// Now is the clock (tests inject one); nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	at       time.Time
	reports  map[string]any
	ok       bool
	inflight chan struct{}
}

// Probe returns the targets' reports, fresh within TTL.
func (p *Prober) Probe(ctx context.Context) (map[string]any, bool) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	for {
		p.mu.Lock()
		if p.reports != nil && now().Sub(p.at) < p.TTL {
			r, ok := p.reports, p.ok
			p.mu.Unlock()
			return r, ok
		}
		if wait := p.inflight; wait != nil {
			p.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return map[string]any{}, false
			}
		}
		done := make(chan struct{})
		p.inflight = done
		p.mu.Unlock()

		// Detached from the first caller's context so its cancellation
		// does not fail the probe for everyone waiting on it.
		r, ok := Probe(context.WithoutCancel(ctx), p.Targets, p.Path, p.Timeout)
		p.mu.Lock()
		p.reports, p.ok, p.at, p.inflight = r, ok, now(), nil
		p.mu.Unlock()
		close(done)
		return r, ok
	}
}
