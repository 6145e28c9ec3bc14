package proxy

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkPooledRequest is what the stale-connection check costs per
// request on a warm pool: the same GET to a local fasthttp server through a
// HostClient dialling plain connections, and through one dialling
// trackedConns (a non-blocking peek before each reuse) with staleTransport
// and retryStale, as the proxy's client does.
//
//	go test -run XXX -bench PooledRequest -count 5 ./internal/proxy
func BenchmarkPooledRequest(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"id":"provider_001","npi":"1234567893","decision":"approved"}`)
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) { c.SetContentType("application/json"); c.SetBody(body) }}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Shutdown()
	addr := ln.Addr().String()
	plainDial := func(a string) (net.Conn, error) { return net.DialTimeout("tcp", a, 2*time.Second) }
	for _, bc := range []struct {
		name   string
		client *fasthttp.HostClient
	}{
		{"plain", &fasthttp.HostClient{Addr: addr, Dial: plainDial, MaxIdemponentCallAttempts: 1}},
		{"tracked", &fasthttp.HostClient{Addr: addr, Dial: dialer(2 * time.Second), Transport: staleTransport{},
			RetryIfErr: retryStale(nil), MaxIdemponentCallAttempts: 2}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + addr + "/providers/provider_001")
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			for i := 0; i < b.N; i++ {
				if err := bc.client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					b.Fatal(err, resp.StatusCode())
				}
			}
			reportCPU(b, cpu)
		})
		bc.client.CloseIdleConnections()
	}
}

// BenchmarkPeek is the check alone, on an open, quiet connection.
func BenchmarkPeek(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			_, _ = c.Read(make([]byte, 1)) // until the client closes
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p := newPeeker(c)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		if p.peerClosed() {
			b.Fatal("open connection seen as closed")
		}
	}
	reportCPU(b, cpu)
}

// cpuTime is the process's user and system CPU so far: on a shared, loaded
// machine wall time per operation mostly measures waiting for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64(cpuTime()-since)/float64(b.N), "cpu-ns/op")
}
