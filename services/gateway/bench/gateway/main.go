// Command bench measures what the gateway costs next to what an operator
// would run instead. In one run, in interleaved rounds, the same fixed
// upstream (a bare fasthttp server answering a ~200-byte provider JSON) is
// load-tested
//
//	(a) directly,
//	(b) through nginx (Debian's package; reverse proxy with upstream keepalive),
//	(c) through a bare Fiber reverse proxy (fiber's proxy middleware), and
//	(d) through the gateway: API key, the Redis rate limiter (GCRA script,
//	    breaker, over-limit cache), metrics and tracing (every span
//	    exported over OTLP/HTTP to a local sink) on,
//	(e) diagnostic: the same gateway with the in-process limiter,
//
// and the table shows req/s, p50/p99, the p99 added to direct, the ratios
// d/c and d/b, and each process's RSS. Every server is its own process (this
// program re-executed with -role), so RSS and CPU are each one's own.
//
//	go run ./bench/gateway [-duration 3s] [-rounds 5] [-concurrency 32] [-cpuprofile gw.pprof]
//
// nginx is installed by scripts/ensure-nginx.sh when it is missing.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/proxy"
	"github.com/valyala/fasthttp"

	platformcfg "github.com/provcred/platform/config"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/service"

	"github.com/provcred/gateway/internal/app"
	"github.com/provcred/gateway/internal/auth"
	gwconfig "github.com/provcred/gateway/internal/config"
)

func main() {
	role := flag.String("role", "", "internal: run as upstream, fiber or gateway")
	addr := flag.String("addr", "", "internal: listen address of a role")
	target := flag.String("target", "", "internal: upstream of the fiber proxy")
	duration := flag.Duration("duration", 3*time.Second, "measuring time per target and round")
	rounds := flag.Int("rounds", 5, "interleaved rounds (the median is shown: the machine is shared)")
	warmup := flag.Duration("warmup", time.Second, "warm-up time per target")
	conc := flag.Int("concurrency", 32, "concurrent client connections")
	cpuprofile := flag.String("cpuprofile", "", "write the gateway process's CPU profile (all rounds) here")
	flag.Parse()
	switch *role {
	case "upstream":
		serveUpstream(*addr)
		return
	case "fiber":
		serveFiber(*addr, *target)
		return
	case "gateway":
		serveGateway(*cpuprofile)
		return
	}
	drive(*duration, *rounds, *warmup, *conc, *cpuprofile)
}

type target struct {
	name, addr, key string
	proc            *os.Process
}

func drive(duration time.Duration, rounds int, warmup time.Duration, conc int, cpuprofile string) {
	work, err := os.MkdirTemp("", "gateway-bench-")
	must(err)
	defer os.RemoveAll(work)
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
	}()
	start := func(name string, cmd *exec.Cmd, addr string) *os.Process {
		cmd.Stdout, cmd.Stderr = logFile(work, name), logFile(work, name)
		must(cmd.Start())
		procs = append(procs, cmd)
		waitListening(addr, name, filepath.Join(work, name+".log"))
		return cmd.Process
	}
	self, err := os.Executable()
	must(err)

	upAddr := freeAddr()
	upProc := start("upstream", exec.Command(self, "-role", "upstream", "-addr", upAddr), upAddr)

	nginxAddr := freeAddr()
	nginxProc := start("nginx", nginxCommand(work, nginxAddr, upAddr), nginxAddr)

	fiberAddr := freeAddr()
	fiberProc := start("fiber", exec.Command(self, "-role", "fiber", "-addr", fiberAddr, "-target", upAddr), fiberAddr)

	sink, spans := traceSink()
	defer sink.Close()
	secret, entry, err := auth.Generate("bench", auth.RoleReader)
	must(err)
	redisURL := os.Getenv("REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	// The gateway signs every call it passes on, as in production (the
	// stand-in upstream does not check).
	internalKeys, err := internalauth.Generate("bench")
	must(err)
	gwAddr := freeAddr()
	gw := exec.Command(self, "-role", "gateway", "-cpuprofile", cpuprofile)
	gw.Env = append(os.Environ(),
		"HTTP_ADDR="+gwAddr, "CREDENTIAL_URL=http://"+upAddr, "STATS_URL=http://"+upAddr, "CHAT_URL=http://"+upAddr,
		"API_KEYS="+entry, "LOG_LEVEL=warn", "INTERNAL_AUTH_KEYS="+internalKeys,
		"REDIS_URL="+redisURL, fmt.Sprintf("RATE_LIMIT_KEY_PREFIX=bench:%d:", os.Getpid()),
		// A limit no client reaches: every request is a Redis decision.
		"RATE_LIMIT_REQUESTS_PER_MINUTE=60000000", "MAX_CONCURRENT_CONNECTIONS=10000", "MAX_CONNS_PER_IP=0", // every client is on loopback
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+sink.Addr().String())
	gwProc := start("gateway", gw, gwAddr)
	waitRedis(gwAddr)
	// Diagnostic: the same gateway with the in-process limiter, to show
	// what the Redis decision costs.
	localAddr := freeAddr()
	local := exec.Command(self, "-role", "gateway")
	local.Env = append(os.Environ(),
		"HTTP_ADDR="+localAddr, "CREDENTIAL_URL=http://"+upAddr, "STATS_URL=http://"+upAddr, "CHAT_URL=http://"+upAddr,
		"API_KEYS="+entry, "LOG_LEVEL=warn", "REDIS_URL=", "REDIS_ADDRS=", "INTERNAL_AUTH_KEYS="+internalKeys,
		"RATE_LIMIT_REQUESTS_PER_MINUTE=60000000", "MAX_CONCURRENT_CONNECTIONS=10000", "MAX_CONNS_PER_IP=0", // every client is on loopback
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+sink.Addr().String())
	localProc := start("gateway-local", local, localAddr)

	targets := []target{
		{name: "(a) direct", addr: upAddr, proc: upProc},
		{name: "(b) nginx", addr: nginxAddr, proc: nginxProc},
		{name: "(c) bare Fiber proxy", addr: fiberAddr, proc: fiberProc},
		{name: "(d) gateway", addr: gwAddr, key: secret, proc: gwProc},
		{name: "(e) gateway, local RL", addr: localAddr, key: secret, proc: localProc},
	}
	fmt.Printf("gateway cost: GET /providers/p1 (~200 B JSON), %d connections, %d interleaved rounds of %s per target, %d CPUs, nginx %s\n\n",
		conc, rounds, duration, runtime.NumCPU(), nginxVersion())
	for _, tg := range targets {
		load(tg, conc, warmup) // warm connections and caches
	}
	runs := make([][]result, len(targets))
	for r := 0; r < rounds; r++ {
		for i, tg := range targets {
			runs[i] = append(runs[i], load(tg, conc, duration))
		}
	}
	meds := make([]result, len(targets))
	fmt.Printf("%-22s %10s %-34s %9s %9s %10s %7s %9s %10s\n", "target", "req/s med", "req/s rounds", "p50", "p99", "added p99", "errors", "CPU/req", "RSS (peak)")
	cpuPerReq := make([]float64, len(targets))
	for i, tg := range targets {
		sort.Slice(runs[i], func(a, b int) bool { return runs[i][a].rps < runs[i][b].rps })
		meds[i] = runs[i][len(runs[i])/2]
		var all []string
		var errs, reqs int64
		var cpu time.Duration
		for _, r := range runs[i] {
			all = append(all, fmt.Sprintf("%.0f", r.rps))
			errs += r.errors
			reqs += r.requests
			cpu += r.cpu
		}
		cpuPerReq[i] = float64(cpu.Microseconds()) / float64(max(reqs, 1))
		added := "-"
		if i > 0 {
			added = (meds[i].p99 - meds[0].p99).Round(time.Microsecond).String()
		}
		fmt.Printf("%-22s %10.0f %-34s %9s %9s %10s %7d %7.1fµs %10s\n", tg.name, meds[i].rps, strings.Join(all, " / "),
			meds[i].p50.Round(time.Microsecond), meds[i].p99.Round(time.Microsecond), added, errs, cpuPerReq[i], rss(tg.proc.Pid))
	}
	fmt.Printf("\nratio d/c (gateway / bare Fiber proxy): %.2f   (aim ≥ 0.85)\n", meds[3].rps/meds[2].rps)
	fmt.Printf("ratio d/b (gateway / nginx):            %.2f\n", meds[3].rps/meds[1].rps)
	fmt.Printf("ratio c/a, b/a (proxies / direct):      %.2f, %.2f\n", meds[2].rps/meds[0].rps, meds[1].rps/meds[0].rps)
	fmt.Printf("gateway added p99 over bare Fiber:      %s   (aim < 2ms)\n", (meds[3].p99 - meds[2].p99).Round(time.Microsecond))
	fmt.Printf("ratio d/e (Redis limiter / in-process): %.2f\n", meds[3].rps/meds[4].rps)
	fmt.Printf("CPU per request, d/c:                   %.2f   (the proxy process's own CPU; Redis's is not counted)\n", cpuPerReq[3]/cpuPerReq[2])
	fmt.Printf("spans exported by the gateway:          %d\n", spans.Load())
	if cpuprofile != "" {
		fmt.Printf("gateway CPU profile: %s (go tool pprof -top %s)\n", cpuprofile, cpuprofile)
	}
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64
	requests int64
	cpu      time.Duration // the target process's CPU time during the round
}

// load runs conc closed-loop clients against tg for d.
func load(tg target, conc int, d time.Duration) result {
	cpu0 := cpuTime(tg.proc.Pid)
	client := &fasthttp.HostClient{Addr: tg.addr, MaxConns: conc}
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
				req.SetRequestURI("http://" + tg.addr + "/providers/p1")
				if tg.key != "" {
					req.Header.Set("Authorization", "Bearer "+tg.key)
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
	r := result{rps: float64(n.Load()) / d.Seconds(), errors: errs.Load(), requests: n.Load(), cpu: cpuTime(tg.proc.Pid) - cpu0}
	if len(all) > 0 {
		r.p50, r.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	return r
}

// serveUpstream is a bare fasthttp server answering a fixed provider, the
// cheapest possible service, so the differences are the proxies' cost.
func serveUpstream(addr string) {
	body := []byte(`{"id":"p1","npi":"1234567893","first_name":"Ada","last_name":"Lovelace","specialty":"Cardiology",` +
		`"licenses":[{"state":"CA","number":"A123","type":"MD","expires_on":"2027-01-01"}],"decision":"approved"}`)
	s := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		c.SetContentType("application/json")
		c.SetBody(body)
	}}
	ln, err := net.Listen("tcp", addr)
	must(err)
	go stopOnSignal(func() { _ = s.Shutdown() })
	_ = s.Serve(ln)
}

// serveFiber is the bare Fiber reverse proxy: no middleware, one pooled
// fasthttp client.
func serveFiber(addr, upstream string) {
	a := fiber.New(fiber.Config{DisableStartupMessage: true})
	client := &fasthttp.Client{MaxConnsPerHost: 4096, NoDefaultUserAgentHeader: true, DisablePathNormalizing: true}
	a.All("/*", func(c *fiber.Ctx) error {
		return proxy.Do(c, "http://"+upstream+c.OriginalURL(), client)
	})
	go stopOnSignal(func() { _ = a.Shutdown() })
	must(a.Listen(addr))
}

// serveGateway is cmd/gateway's run, with an optional CPU profile of the
// whole run (written when the driver stops it).
func serveGateway(cpuprofile string) {
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		must(err)
		must(pprof.StartCPUProfile(f))
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := platformcfg.Parse[gwconfig.Config](nil)
	must(err)
	deps, err := service.Init(ctx, app.Service, cfg.Base, nil)
	must(err)
	g, err := app.New(&cfg, app.Deps{Logger: deps.Log, Tracer: deps.Tracer, Metrics: deps.Metrics, Signer: deps.Internal})
	must(err)
	if err := deps.Serve(ctx, g.Server, cfg.HTTPAddr, g.Close); err != nil {
		log.Print(err)
	}
}

// nginxCommand writes a reverse-proxy configuration (upstream keepalive,
// HTTP/1.1 to the upstream, no access log) and returns the command that
// runs nginx in the foreground with it, installing nginx if needed.
func nginxCommand(work, addr, upstream string) *exec.Cmd {
	bin := findNginx()
	if bin == "" {
		root := workspaceRoot()
		cmd := exec.Command("bash", filepath.Join(root, "scripts", "ensure-nginx.sh"))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		must(cmd.Run())
		if bin = findNginx(); bin == "" {
			must(fmt.Errorf("nginx not found after scripts/ensure-nginx.sh"))
		}
	}
	dir := filepath.Join(work, "nginx")
	must(os.MkdirAll(filepath.Join(dir, "tmp"), 0o777))
	conf := fmt.Sprintf(`daemon off;
worker_processes %d;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[2]s/tmp/body; proxy_temp_path %[2]s/tmp/proxy;
  fastcgi_temp_path %[2]s/tmp/fastcgi; uwsgi_temp_path %[2]s/tmp/uwsgi; scgi_temp_path %[2]s/tmp/scgi;
  upstream app { server %[3]s; keepalive 64; }
  server {
    listen %[4]s;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`, runtime.NumCPU(), dir, upstream, addr)
	must(os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644))
	return exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
}

func findNginx() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	return ""
}

func nginxVersion() string {
	out, _ := exec.Command(findNginx(), "-v").CombinedOutput()
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: "))
}

func workspaceRoot() string {
	dir, err := os.Getwd()
	must(err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			must(fmt.Errorf("go.work not found above %s", dir))
		}
		dir = parent
	}
}

// traceSink accepts OTLP/HTTP exports and counts the spans' requests.
func traceSink() (net.Listener, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	var n atomic.Int64
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if len(b) > 0 {
				n.Add(1)
			}
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.WriteHeader(200)
		}))
	}()
	return ln, &n
}

// waitRedis waits until the gateway's limiter decides in Redis.
func waitRedis(addr string) {
	for i := 0; i < 100; i++ {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"rate_limiter":{"backend":"redis","status":"ok"}`) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	must(fmt.Errorf("the gateway's limiter is not on Redis (is Redis running? REDIS_URL)"))
}

// cpuTime is the user+system CPU time of a process and its children
// (nginx's workers), from /proc/<pid>/stat (clock ticks of 10ms).
func cpuTime(pid int) time.Duration {
	total := time.Duration(0)
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces) start at ")".
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		var self, ppid, ut, st int
		_, _ = fmt.Sscan(filepath.Base(filepath.Dir(path)), &self)
		_, _ = fmt.Sscan(f[1], &ppid)
		if self != pid && ppid != pid {
			continue
		}
		_, _ = fmt.Sscan(f[11], &ut)
		_, _ = fmt.Sscan(f[12], &st)
		total += time.Duration(ut+st) * 10 * time.Millisecond
	}
	return total
}

// rss is a process's resident set now and at its peak (VmRSS, VmHWM).
func rss(pid int) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	defer f.Close()
	var cur, peak string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		var kb int
		_, _ = fmt.Sscan(v, &kb)
		switch k {
		case "VmRSS":
			cur = fmt.Sprintf("%.0f", float64(kb)/1024)
		case "VmHWM":
			peak = fmt.Sprintf("%.0f", float64(kb)/1024)
		}
	}
	return cur + " (" + peak + ") MiB"
}

func waitListening(addr, name, logPath string) {
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(logPath)
	must(fmt.Errorf("%s did not listen on %s:\n%s", name, addr, b))
}

func logFile(dir, name string) *os.File {
	f, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(err)
	return f
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer ln.Close()
	return ln.Addr().String()
}

func stopOnSignal(stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	<-ch
	stop()
}

func must(err error) {
	if err != nil {
		log.Print(err)
		os.Exit(1)
	}
}
