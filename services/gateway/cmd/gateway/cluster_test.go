//go:build !race

// The race detector slows this test's load client until it cannot keep to
// its sending schedule (300 ms behind on two loaded cores), and the test is
// about time; `make test` runs it without -race (the gateways it starts
// are never race builds anyway).

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provcred/platform/poll"
	"github.com/provcred/platform/proctest"

	"github.com/provcred/gateway/internal/auth"
	"github.com/provcred/gateway/internal/ratelimit"
	"github.com/provcred/gateway/internal/redistest"
)

// stream is one client sending at twice its limit, round robin across the
// gateways, and what it got.
type stream struct {
	name, method, path, key string
	burst, rate             int // rate per second
	spoofXFF                bool

	mu                                       sync.Mutex
	admitted, limited                        int
	firstSend, lastSend, firstRecv, lastRecv time.Time
	arrivals                                 []time.Time   // send/answer midpoints
	maxLag                                   time.Duration // behind the sending schedule
	failures                                 []string
}

// replay is what one limiter alone (ratelimit.Local, with a clock that
// jumps to each request's time) admits of the requests this client made:
// the answer the three gateways must give if they are one limiter.
func (s *stream) replay() int {
	sort.Slice(s.arrivals, func(i, j int) bool { return s.arrivals[i].Before(s.arrivals[j]) })
	var now time.Time
	l := ratelimit.NewLocal(ratelimit.Options{MaxKeys: 100_000, Now: func() time.Time { return now }})
	p := ratelimit.Policy{Name: "replay", Rate: s.rate, Period: time.Second, Burst: s.burst}
	n := 0
	for _, a := range s.arrivals {
		now = a
		if d, _ := l.Allow(context.Background(), p, "k"); d.Allowed {
			n++
		}
	}
	return n
}

func (s *stream) run(t *testing.T, gateways []*proctest.Proc, d time.Duration) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	interval := time.Second / time.Duration(2*s.rate)
	n := int(d / interval)
	sem := make(chan struct{}, 128)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		// A schedule, not a ticker: after a stall the client catches up,
		// so demand stays above the limit.
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			req, _ := http.NewRequest(s.method, gateways[i%len(gateways)].URL+s.path, strings.NewReader(`{"message":"hi"}`))
			if s.key != "" {
				req.Header.Set("Authorization", "Bearer "+s.key)
			}
			if s.spoofXFF {
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d, 198.51.100.%d", i%250, i%199))
			}
			sent := time.Now()
			resp, err := client.Do(req)
			recv := time.Now()
			s.mu.Lock()
			defer s.mu.Unlock()
			s.maxLag = max(s.maxLag, sent.Sub(start.Add(time.Duration(i)*interval)))
			if s.firstSend.IsZero() || sent.Before(s.firstSend) {
				s.firstSend = sent
			}
			if sent.After(s.lastSend) {
				s.lastSend = sent
			}
			if s.firstRecv.IsZero() || recv.Before(s.firstRecv) {
				s.firstRecv = recv
			}
			if recv.After(s.lastRecv) {
				s.lastRecv = recv
			}
			s.arrivals = append(s.arrivals, sent.Add(recv.Sub(sent)/2))
			if err != nil {
				s.failures = append(s.failures, err.Error())
				return
			}
			resp.Body.Close()
			switch {
			case resp.StatusCode == 429:
				s.limited++
			case resp.StatusCode >= 500:
				s.failures = append(s.failures, resp.Status)
			default:
				// 200 for a key; 401 for the anonymous client, which the
				// limiter let through to authentication.
				s.admitted++
			}
		}(i)
	}
	wg.Wait()
}

// Three gateway processes on one Redis; each client sends twice its limit,
// spread across them. The admitted count is burst + rate × elapsed within
// ±1% for a policy with burst < rate and with burst = rate, and never more
// for burst 1 (which loses the turns the client's jitter misses). The
// anonymous client's spoofed X-Forwarded-For (from a peer that is not a
// trusted proxy) does not change its key: it is limited as one client.
func TestThreeGatewaysShareOneLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three gateway processes")
	}
	const pkg = "github.com/provcred/gateway/cmd/gateway"
	bin := proctest.Binary(proctest.Build(t, pkg), pkg)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"healthy"}`))
	}))
	t.Cleanup(up.Close)
	readerKey, readerEntry, _ := auth.Generate("reader-1", auth.RoleReader)
	operatorKey, operatorEntry, _ := auth.Generate("operator-1", auth.RoleOperator)
	env := map[string]string{
		"CREDENTIAL_URL": up.URL, "STATS_URL": up.URL, "CHAT_URL": up.URL,
		"API_KEYS":  readerEntry + "," + operatorEntry,
		"REDIS_URL": "redis://" + redistest.SharedAddr() + "/0", "RATE_LIMIT_KEY_PREFIX": redistest.UniquePrefix(t),
		// Generous: this test is about sharing, not outages (see
		// internal/ratelimit), and the machine's two cores are loaded.
		"RATE_LIMIT_REDIS_TIMEOUT":       "250ms",
		"RATE_LIMIT_REQUESTS_PER_MINUTE": "3000", "RATE_LIMIT_BURST": "20",
		"RATE_LIMIT_CREDENTIAL": "50/1s,burst=1",
		"RATE_LIMIT_CHAT":       "50/1s,burst=50",
		"LOG_LEVEL":             "warn",
	}
	var gws []*proctest.Proc
	for i := 0; i < 3; i++ {
		gws = append(gws, proctest.Start(t, bin, fmt.Sprintf("gateway-%d", i), env))
	}
	for _, g := range gws {
		g.WaitReady(t, 30*time.Second)
		poll.Until(t, 15*time.Second, g.Name+" deciding in Redis", func() bool {
			resp, err := http.Get(g.URL + "/health")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var h struct {
				RateLimiter map[string]any `json:"rate_limiter"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&h)
			return h.RateLimiter["backend"] == "redis" && h.RateLimiter["status"] == "ok"
		})
	}
	streams := []*stream{
		{name: "default 3000/min burst 20", method: "GET", path: "/providers/p1", key: readerKey, burst: 20, rate: 50},
		{name: "credential 50/s burst 1", method: "POST", path: "/credential/p1", key: operatorKey, burst: 1, rate: 50},
		{name: "chat 50/s burst 50, anonymous, spoofed XFF", method: "POST", path: "/chat", burst: 50, rate: 50, spoofXFF: true},
	}
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(t, gws, 4*time.Second) }()
	}
	wg.Wait()
	for _, s := range streams {
		if len(s.failures) > 0 {
			t.Errorf("%s: %d failed requests, e.g. %s", s.name, len(s.failures), s.failures[0])
		}
		// Redis saw the first request between its send and its answer, and
		// the last likewise: take the middle of each.
		first := s.firstSend.Add(s.firstRecv.Sub(s.firstSend) / 2)
		last := s.lastSend.Add(s.lastRecv.Sub(s.lastSend) / 2)
		elapsed := last.Sub(first).Seconds()
		want := float64(s.burst) + float64(s.rate)*elapsed
		replay := s.replay()
		t.Logf("%s: admitted %d, limited %d, elapsed %.3fs, burst + rate × elapsed = %.1f, one limiter on the same requests: %d, client up to %s behind its schedule",
			s.name, s.admitted, s.limited, elapsed, want, replay, s.maxLag.Round(time.Millisecond))
		// Never more: three replicas with a limit each would admit 3×.
		if float64(s.admitted) > 1.01*want+1 {
			t.Errorf("%s: admitted %d, more than burst + rate × elapsed = %.1f", s.name, s.admitted, want)
		}
		if s.burst == 1 {
			// Burst 1 cannot make up a turn the client's own jitter missed
			// (a request may come T/2 early, and at twice the rate they
			// are T/2 apart; see ratelimit.Policy): a few percent below.
			// Checked when the client kept its schedule to within T/2.
			if s.maxLag >= time.Second/time.Duration(2*s.rate) {
				t.Logf("%s: the client fell behind its schedule; only \"never more\" checked", s.name)
			} else if float64(s.admitted) < 0.95*want {
				t.Errorf("%s: admitted %d, want at least 95%% of %.1f", s.name, s.admitted, want)
			}
			continue
		}
		// The gateways together admit what one limiter admits of the same
		// requests, and that is burst + rate × elapsed, within 1%, when the
		// client kept to its schedule. (On a loaded machine, or under -race,
		// the client itself falls behind; then only the first holds.)
		if math.Abs(float64(s.admitted-replay)) > math.Max(0.01*float64(replay), 1) {
			t.Errorf("%s: admitted %d, one limiter admits %d of the same requests (± 1%%)", s.name, s.admitted, replay)
		}
		// A lag costs nothing while the client's banked allowance covers
		// it ((burst-1)×T); past half of that, the schedule was not kept.
		if kept := s.maxLag < time.Duration(s.burst-1)*time.Second/time.Duration(2*s.rate); !kept {
			t.Logf("%s: the client fell behind its schedule; burst + rate × elapsed not checked", s.name)
		} else if math.Abs(float64(s.admitted)-want) > 0.01*want {
			t.Errorf("%s: admitted %d, want %.1f ± 1%%", s.name, s.admitted, want)
		}
		if s.limited == 0 {
			t.Errorf("%s: nothing limited at twice the rate", s.name)
		}
	}
}
