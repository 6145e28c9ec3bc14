// Command bench measures what the gateway costs: the same load is sent to a
// bare upstream directly and through the gateway (API key check, GCRA rate
// limit, breaker, proxy) in the same run, and the table shows req/s,
// latency percentiles and the ratio gateway/direct.
//
//	go run ./bench/gateway [-duration 5s] [-concurrency 32]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/provcred/platform/config"

	"github.com/provcred/gateway/internal/app"
	"github.com/provcred/gateway/internal/auth"
	gwconfig "github.com/provcred/gateway/internal/config"
)

func main() {
	duration := flag.Duration("duration", 3*time.Second, "measuring time per target and round")
	rounds := flag.Int("rounds", 3, "interleaved rounds (the median is shown: the machine is shared)")
	warmup := flag.Duration("warmup", time.Second, "warm-up time per target")
	conc := flag.Int("concurrency", 32, "concurrent client connections")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		must(err)
		must(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}

	upstream, stopUp := serveUpstream()
	defer stopUp()

	secret, entry, err := auth.Generate("bench", auth.RoleReader)
	must(err)
	cfg, err := config.Parse[gwconfig.Config](map[string]string{
		"CREDENTIAL_URL": "http://" + upstream, "STATS_URL": "http://" + upstream, "CHAT_URL": "http://" + upstream,
		"API_KEYS": entry, "RATE_LIMIT_REQUESTS_PER_MINUTE": "1000000000", "MAX_CONCURRENT_CONNECTIONS": "10000",
	})
	must(err)
	g, err := app.New(&cfg, app.Deps{})
	must(err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()

	targets := []struct {
		name, addr string
		auth       bool
	}{
		{"direct (bare upstream)", upstream, false},
		{"through the gateway", ln.Addr().String(), true},
	}
	fmt.Printf("gateway overhead: GET /providers/p1 (~200 B JSON), %d connections, %d interleaved rounds of %s per target, GOMAXPROCS=%d\n\n",
		*conc, *rounds, *duration, runtime.GOMAXPROCS(0))
	runs := make([][]result, len(targets))
	for _, tg := range targets {
		load(tg.addr, keyFor(tg.auth, secret), *conc, *warmup) // warm connections and caches
	}
	for r := 0; r < *rounds; r++ {
		for i, tg := range targets {
			runs[i] = append(runs[i], load(tg.addr, keyFor(tg.auth, secret), *conc, *duration))
		}
	}
	fmt.Printf("%-24s %10s %10s %9s %9s %7s %8s\n", "target", "req/s med", "req/s all", "p50", "p99", "errors", "ratio")
	var base float64
	for i, tg := range targets {
		sort.Slice(runs[i], func(a, b int) bool { return runs[i][a].rps < runs[i][b].rps })
		med := runs[i][len(runs[i])/2]
		if base == 0 {
			base = med.rps
		}
		var all []string
		var errs int64
		for _, r := range runs[i] {
			all = append(all, fmt.Sprintf("%.0f", r.rps))
			errs += r.errors
		}
		fmt.Printf("%-24s %10.0f %10s %9s %9s %7d %7.2fx\n", tg.name, med.rps, strings.Join(all, "/"),
			med.p50.Round(time.Microsecond), med.p99.Round(time.Microsecond), errs, med.rps/base)
	}
}

func keyFor(auth bool, secret string) string {
	if auth {
		return secret
	}
	return ""
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64
}

// load runs conc closed-loop clients against addr for d.
func load(addr, key string, conc int, d time.Duration) result {
	client := &fasthttp.HostClient{Addr: addr, MaxConns: conc}
	var n, errs atomic.Int64
	lat := make([][]time.Duration, conc)
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for time.Now().Before(stop) {
				req.SetRequestURI("http://" + addr + "/providers/p1")
				if key != "" {
					req.Header.Set("Authorization", "Bearer "+key)
				}
				t0 := time.Now()
				err := client.DoTimeout(req, resp, 5*time.Second)
				if err != nil || resp.StatusCode() != 200 {
					errs.Add(1)
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
				n.Add(1)
			}
		}(i)
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	r := result{rps: float64(n.Load()) / d.Seconds(), errors: errs.Load()}
	if len(all) > 0 {
		r.p50, r.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	return r
}

// serveUpstream is a bare fasthttp server answering a fixed provider, the
// cheapest possible service, so the difference is the gateway's cost.
func serveUpstream() (string, func()) {
	body := []byte(`{"id":"p1","npi":"1234567893","first_name":"Ada","last_name":"Lovelace","specialty":"Cardiology",` +
		`"licenses":[{"state":"CA","number":"A123","type":"MD","expires_on":"2027-01-01"}],"decision":"approved"}`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	s := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		c.SetContentType("application/json")
		c.SetBody(body)
	}}
	go func() { _ = s.Serve(ln) }()
	return ln.Addr().String(), func() { _ = s.Shutdown() }
}

func must(err error) {
	if err != nil {
		log.Print(err)
		os.Exit(1)
	}
}
