// Package proxy forwards requests to the services: one fasthttp client, one
// circuit breaker and one timeout per upstream. A dead upstream or an open
// breaker fails fast with 503 upstream_unavailable, a slow one with 504
// upstream_timeout; whatever the upstream answers (status, headers, body,
// Retry-After included) goes back to the client unchanged.
package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/server"
	"github.com/provcred/platform/tracing"
)

// Upstream is one service behind the gateway.
type Upstream struct {
	Name    string
	BaseURL string
	Timeout time.Duration

	host   string
	prefix string
	client *fasthttp.HostClient
	// fresh never reuses a connection (every request it sends says
	// Connection: close): streamed uploads, which cannot be sent twice,
	// half-open probes and readiness probes go through it.
	fresh   *fasthttp.HostClient
	probes  *fasthttp.HostClient // health probes: own pool, never starved by traffic
	breaker *breaker.Breaker
	openFor time.Duration
	signer  *internalauth.Keyring

	// unreachable is true while the last failure counted against the
	// breaker was a connection failure (nothing listening, reset), not an
	// answer or a timeout: then an open breaker closes as soon as the
	// upstream's /readyz answers (watchRecovery).
	unreachable atomic.Bool
	watching    atomic.Bool
	done        chan struct{}
	closeOnce   sync.Once
}

// recoveryProbeInterval is how often /readyz is asked while the breaker is
// open after the upstream became unreachable.
const recoveryProbeInterval = 200 * time.Millisecond

// Options configure an Upstream.
type Options struct {
	Name    string
	BaseURL string
	// Timeout bounds one request (connect, send, answer headers and a
	// buffered body).
	Timeout time.Duration
	// MaxConns caps open connections to the upstream.
	MaxConns int
	Breaker  breaker.Settings
	Metrics  *metrics.Registry
	// Signer signs every call for the upstream to verify (nil: unsigned,
	// INTERNAL_AUTH_INSECURE_DEV).
	Signer *internalauth.Keyring
}

// New builds the client and the breaker (named upstream_<name>) for one service.
func New(o Options) (*Upstream, error) {
	u, err := url.Parse(o.BaseURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("upstream %s: bad URL %q", o.Name, o.BaseURL)
	}
	if o.MaxConns < 1 {
		return nil, fmt.Errorf("upstream %s: MaxConns must be at least 1, got %d", o.Name, o.MaxConns)
	}
	// Streamed responses hold their connection a little past the handler,
	// so leave headroom over the in-flight cap.
	o.MaxConns += 64
	addr := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	retries, err := retriesMetric(o.Metrics)
	if err != nil {
		return nil, err
	}
	if err := o.Breaker.Validate(); err != nil {
		return nil, fmt.Errorf("upstream %s: %w", o.Name, err)
	}
	up := &Upstream{
		Name: o.Name, BaseURL: o.BaseURL, Timeout: o.Timeout,
		host: u.Host, prefix: strings.TrimRight(u.Path, "/"), openFor: o.Breaker.OpenTimeout,
		breaker: breaker.New("upstream_"+o.Name, o.Breaker, o.Metrics),
		done:    make(chan struct{}), signer: o.Signer,
	}
	up.client = &fasthttp.HostClient{
		Addr:  addr,
		IsTLS: u.Scheme == "https",
		Name:  "provcred-gateway",
		// The connect must fail fast on a dead host so the client gets
		// its 503 well within a second, whatever the request timeout.
		Dial:               dialer(2 * time.Second),
		MaxConns:           o.MaxConns,
		MaxConnWaitTimeout: time.Second,
		// Below the services' idle timeout (90s), so the pool lets a
		// connection go before the upstream does.
		MaxIdleConnDuration:           30 * time.Second,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		// Responses are streamed so server-sent events and large
		// exports pass through without being held whole in memory.
		StreamResponseBody: true,
		// A request is sent a second time only when it failed on a
		// reused connection before any byte of the answer (the upstream
		// closed the connection while it was idle: drained or
		// restarted), whatever its method; never after a timeout or an
		// answer, which the upstream may have acted on.
		Transport:                 staleTransport{},
		RetryIfErr:                retryStale(retries.WithLabelValues(o.Name)),
		MaxIdemponentCallAttempts: 2,
	}
	up.fresh = &fasthttp.HostClient{
		Addr: addr, IsTLS: up.client.IsTLS, Name: up.client.Name,
		Dial: dialer(2 * time.Second), MaxConns: o.MaxConns, MaxConnWaitTimeout: time.Second,
		NoDefaultUserAgentHeader: true, DisableHeaderNamesNormalizing: true, DisablePathNormalizing: true,
		StreamResponseBody: true, MaxIdemponentCallAttempts: 1,
	}
	up.probes = &fasthttp.HostClient{Addr: addr, IsTLS: up.client.IsTLS, Name: "provcred-gateway-health",
		Dial: dialer(time.Second), MaxConns: 8, MaxConnWaitTimeout: 2 * time.Second, MaxIdleConnDuration: 30 * time.Second,
		Transport: staleTransport{}, RetryIfErr: retryStale(nil), MaxIdemponentCallAttempts: 2}
	return up, nil
}

// retriesMetric is one family for every upstream, registered by the first.
func retriesMetric(reg *metrics.Registry) (*prometheus.CounterVec, error) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_upstream_retries_total",
		Help: "Requests sent a second time, on a new connection, after failing unanswered on a reused one (an upstream restart or drain)."},
		[]string{"upstream"})
	if err := reg.Registerer.Register(v); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("register gateway_upstream_retries_total: %w", err)
		}
		v = are.ExistingCollector.(*prometheus.CounterVec)
	}
	return v, nil
}

// retryStale makes the HostClient's RetryIfErr: one more attempt after a
// failure on a reused connection before any answer byte. The pooled
// connections are as old as the one that failed (after a restart every one
// of them is closed), so they are dropped and the retry dials. Retries of
// traffic are counted (nil for health probes, which are not traffic).
func retryStale(retries prometheus.Counter) fasthttp.RetryIfErrFunc {
	return func(_ *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
		var s *staleConnError
		if attempts > 1 || !errors.As(err, &s) {
			return false, false
		}
		if s.client != nil {
			s.client.CloseIdleConnections()
		}
		if retries != nil {
			retries.Inc()
		}
		return false, true
	}
}

// Breaker exposes the upstream's breaker for health reports.
func (u *Upstream) Breaker() *breaker.Breaker { return u.breaker }

// Close stops the recovery probe and drops idle connections.
func (u *Upstream) Close() {
	u.closeOnce.Do(func() { close(u.done) })
	u.client.CloseIdleConnections()
	u.probes.CloseIdleConnections()
}

// Forward options for one route.
type Forward struct {
	// Timeout overrides the upstream's (import routes).
	Timeout time.Duration
	// Stream sends the request body as it arrives instead of buffering it.
	Stream bool
	// BodyLimit caps the body (0: no cap). Bodies over it get 413.
	BodyLimit int64
	// Actor and Role are the authenticated key's; they replace whatever
	// the client sent in X-Actor-Id / X-Actor-Role.
	Actor, Role string
}

// hopHeaders are connection-scoped (RFC 9110 7.6.1) and never forwarded.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization",
	"Proxy-Authenticate", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// Errors the gateway answers with.
var (
	errBodyTooLarge = apierr.New(fiber.StatusRequestEntityTooLarge, "body_too_large", "The request body is larger than the limit.")
)

// Unavailable is the 503 for a dead upstream or an open breaker.
func Unavailable(name string) *apierr.Error {
	return apierr.Unavailable("upstream_unavailable", fmt.Sprintf("The %s service is unavailable. Please retry shortly.", name))
}

// Timeout is the 504 for an upstream that did not answer in time.
func Timeout(name string) *apierr.Error {
	return apierr.New(fiber.StatusGatewayTimeout, "upstream_timeout", fmt.Sprintf("The %s service did not answer in time.", name))
}

// Handle forwards the request in c to the upstream and writes its answer to c.
func (u *Upstream) Handle(c *fiber.Ctx, f Forward) error {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	body, err := u.buildRequest(c, req, f)
	if err != nil {
		return err
	}
	timeout := u.Timeout
	if f.Timeout > 0 {
		timeout = f.Timeout
	}
	resp := fasthttp.AcquireResponse()
	released := false
	defer func() {
		if !released {
			fasthttp.ReleaseResponse(resp)
		}
	}()

	clientFault := false
	err = u.breaker.Do(c.UserContext(), func(context.Context) error {
		client := u.client
		if f.Stream || u.breaker.State() == "half-open" {
			// An upload cannot be sent twice, and a half-open probe must
			// not be lost to a connection the upstream closed while it was
			// down: both go on a connection of their own.
			client = u.fresh
			req.SetConnectionClose()
		}
		err := client.DoTimeout(req, resp, timeout)
		switch {
		case err == nil:
		case body != nil && body.err != nil:
			// The client's upload broke, not the upstream: not a
			// breaker failure.
			clientFault = true
			return nil
		case isStale(err):
			// Failed on a reused connection twice (the retry found
			// another): the upstream never saw it, so it is not its failure.
			return breaker.Exclude(err)
		default:
			u.unreachable.Store(!isTimeout(err) && !errors.Is(err, fasthttp.ErrBodyTooLarge))
			return err
		}
		if resp.StatusCode() >= 500 {
			// Counted against the breaker, still passed through below.
			u.unreachable.Store(false)
			return &breaker.StatusError{Code: resp.StatusCode()}
		}
		return nil
	})
	if clientFault {
		// The unread rest of the upload is dealt with by the platform
		// server (server.finishStream): drained when small, else the
		// connection is closed.
		if errors.Is(body.err, errUploadTooLarge) {
			return errBodyTooLarge
		}
		c.Context().SetConnectionClose()
		return apierr.BadRequest("bad_request", "The request body could not be read completely.")
	}
	var se *breaker.StatusError
	switch {
	case err == nil, errors.As(err, &se):
	case errors.Is(err, breaker.ErrOpen):
		u.watchRecovery()
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int((u.openFor+time.Second-1)/time.Second)))
		return Unavailable(u.Name)
	case errors.Is(err, fasthttp.ErrTimeout) || breaker.IsTimeout(err):
		return Timeout(u.Name)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return errBodyTooLarge
	default:
		c.Set(fiber.HeaderRetryAfter, "1")
		return fmt.Errorf("%w: %w", Unavailable(u.Name), err)
	}
	if resp.StatusCode() == fiber.StatusUnauthorized && len(resp.Header.Peek(internalauth.HeaderRefused)) > 0 {
		// The service refused the gateway's own signature: the keys differ
		// (a rotation step skipped) or a clock is off. The client's key is
		// not at fault, so it must not see a 401; the error is logged.
		c.Set(fiber.HeaderRetryAfter, "1")
		return fmt.Errorf("%w: the %s service refused the gateway's signature (INTERNAL_AUTH_KEYS differ, or a clock is off by more than INTERNAL_AUTH_MAX_SKEW)",
			Unavailable(u.Name), u.Name)
	}
	released = u.writeResponse(c, resp)
	return nil
}

// watchRecovery runs, at most once at a time, while the breaker is open
// because the upstream could not be reached (stopped, crashed, restarting):
// it asks the upstream's /readyz on a new connection every
// recoveryProbeInterval and closes the breaker as soon as it answers 200,
// so traffic returns within that interval of the upstream's readiness
// instead of up to BREAKER_OPEN_TIMEOUT later. An upstream that answered
// with errors or timed out waits out the open time as before: its
// readiness says nothing about whether it would answer better now.
func (u *Upstream) watchRecovery() {
	if !u.unreachable.Load() || !u.watching.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer u.watching.Store(false)
		t := time.NewTicker(recoveryProbeInterval)
		defer t.Stop()
		for {
			select {
			case <-u.done:
				return
			case <-t.C:
			}
			if u.breaker.State() != "open" {
				return
			}
			if u.ready() {
				if u.breaker.Reset() {
					// Connections pooled before the outage are dead.
					u.client.CloseIdleConnections()
				}
				return
			}
		}
	}()
}

// ready asks the upstream's /readyz on a new connection.
func (u *Upstream) ready() bool {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(u.scheme() + "://" + u.host + u.prefix + "/readyz")
	req.Header.SetMethod(fasthttp.MethodGet)
	req.SetConnectionClose()
	if err := u.fresh.DoTimeout(req, resp, time.Second); err != nil {
		return false
	}
	ok := resp.StatusCode() == fasthttp.StatusOK
	_ = resp.CloseBodyStream()
	return ok
}

func (u *Upstream) scheme() string {
	if u.client.IsTLS {
		return "https"
	}
	return "http"
}

// buildRequest fills req from c. For a streamed body it returns the reader
// watching the client's upload.
func (u *Upstream) buildRequest(c *fiber.Ctx, req *fasthttp.Request, f Forward) (*clientBody, error) {
	in := c.Request()
	in.Header.CopyTo(&req.Header)
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	// The key stays at the edge: upstreams trust X-Actor-Id instead, and
	// never see (or log) a secret.
	req.Header.Del(fiber.HeaderAuthorization)
	req.Header.Del(server.HeaderActor)
	req.Header.Del(server.HeaderRole)
	req.Header.Del(internalauth.HeaderTimestamp)
	req.Header.Del(internalauth.HeaderSignature)
	if f.Actor != "" {
		req.Header.Set(server.HeaderActor, f.Actor)
		req.Header.Set(server.HeaderRole, f.Role)
	}
	req.Header.Set(server.HeaderRequestID, server.RequestID(c))
	// Carry the trace on. The platform middleware already rewrote the
	// incoming traceparent when it records a span; injecting from the
	// request context covers spans started after it.
	if sc := trace.SpanContextFromContext(c.UserContext()); sc.IsValid() {
		tracing.Propagator.Inject(c.UserContext(), reqCarrier{&req.Header})
	}
	if ip := c.Context().RemoteIP(); ip != nil {
		prior := string(in.Header.Peek(fiber.HeaderXForwardedFor))
		if prior != "" {
			prior += ", "
		}
		req.Header.Set(fiber.HeaderXForwardedFor, prior+ip.String())
	}
	req.Header.SetHost(u.host)
	uri := c.Request().URI().RequestURI()
	// The request target goes out as written here (DisablePathNormalizing),
	// which is what the upstream checks the signature against.
	target := u.prefix + string(uri)
	req.SetRequestURI(target)
	if err := u.sign(req, target, internalauth.Identity{Actor: f.Actor, Role: f.Role, RequestID: server.RequestID(c)}); err != nil {
		return nil, err
	}
	req.URI().SetScheme("http")
	if u.client.IsTLS {
		req.URI().SetScheme("https")
	}
	req.URI().SetHost(u.host)

	cl := in.Header.ContentLength()
	if f.BodyLimit > 0 && int64(cl) > f.BodyLimit {
		return nil, errBodyTooLarge
	}
	if f.Stream && in.IsBodyStream() {
		r := server.BodyStream(c)
		if f.BodyLimit > 0 && cl < 0 {
			r = &limitReader{r: r, left: f.BodyLimit}
		}
		body := &clientBody{r: r}
		req.SetBodyStream(body, cl)
		return body, nil
	}
	if in.IsBodyStream() && cl < 0 {
		// Chunked body on a buffered route: read at most the limit.
		limit := f.BodyLimit
		if limit <= 0 {
			limit = 1 << 30
		}
		b, err := io.ReadAll(io.LimitReader(server.BodyStream(c), limit+1))
		if err != nil {
			return nil, apierr.BadRequest("bad_request", "The request body could not be read.")
		}
		if int64(len(b)) > limit {
			return nil, errBodyTooLarge
		}
		req.SetBody(b)
		return nil, nil
	}
	req.SetBody(c.Body())
	return nil, nil
}

// clientBody remembers a failure reading the client's upload (a dropped
// connection, a body over the cap), so it is answered as the client's
// fault and not held against the upstream's breaker.
type clientBody struct {
	r   io.Reader
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// writeResponse copies the upstream's answer to c. Small bodies are copied
// and resp can be released; large or unknown-length bodies (event streams,
// exports) are streamed, and resp is released when the stream is done:
// the return value says whether resp was handed over.
func (u *Upstream) writeResponse(c *fiber.Ctx, resp *fasthttp.Response) bool {
	out := c.Response()
	out.SetStatusCode(resp.StatusCode())
	seen := map[string]bool{}
	resp.Header.VisitAll(func(k, v []byte) {
		key := string(k)
		switch strings.ToLower(key) {
		case "content-length", "connection", "keep-alive", "transfer-encoding", "trailer":
			return
		}
		if !seen[key] {
			seen[key] = true
			out.Header.Del(key)
		}
		out.Header.AddBytesKV(k, v)
	})
	cl := resp.Header.ContentLength()
	stream := resp.IsBodyStream() && (cl < 0 || cl > smallBody ||
		bytes.HasPrefix(resp.Header.ContentType(), []byte("text/event-stream")))
	if !stream {
		out.SetBody(resp.Body())
		return false
	}
	out.SetBodyStream(&releasingReader{resp: resp, r: resp.BodyStream()}, cl)
	return true
}

// smallBody is the largest response copied instead of streamed.
const smallBody = 256 << 10

// releasingReader gives the upstream response (and its connection) back to
// the pool once fasthttp has written the body to the client.
type releasingReader struct {
	resp *fasthttp.Response
	r    io.Reader
	eof  bool
}

func (r *releasingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err == io.EOF {
		r.eof = true
	}
	return n, err
}

// Close is called by fasthttp after the body was sent (or the send failed).
func (r *releasingReader) Close() error {
	if !r.eof {
		// The client left mid-stream: the upstream connection still carries
		// the rest of the body, so it is closed, never pooled. Closing it is
		// also how the upstream learns the client is gone (chat then cancels
		// its LLM call and frees the slot).
		r.resp.SetConnectionClose()
	}
	err := r.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(r.resp)
	return err
}

// limitReader fails (instead of truncating) a body that runs over the cap,
// so the upstream sees a broken upload, never a silently shortened file.
type limitReader struct {
	r    io.Reader
	left int64
}

var errUploadTooLarge = errors.New("upload exceeds the body limit")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One more byte tells a body exactly at the limit from a longer one.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, errUploadTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

type reqCarrier struct{ h *fasthttp.RequestHeader }

func (r reqCarrier) Get(k string) string { return string(r.h.Peek(k)) }
func (r reqCarrier) Set(k, v string)     { r.h.Set(k, v) }
func (r reqCarrier) Keys() []string {
	var keys []string
	r.h.VisitAll(func(k, _ []byte) { keys = append(keys, string(k)) })
	return keys
}

// Get fetches path from the upstream without the breaker (health probes
// must see the upstream as it is, and must not trip or be blocked by it).
// It returns the status and body.
func (u *Upstream) Get(ctx context.Context, path string, timeout time.Duration) (int, []byte, error) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(u.scheme() + "://" + u.host + u.prefix + path)
	req.Header.SetMethod(fasthttp.MethodGet)
	rid, _ := ctx.Value(requestIDKey{}).(string)
	if rid != "" {
		req.Header.Set(server.HeaderRequestID, rid)
	}
	if err := u.sign(req, u.prefix+path, internalauth.Identity{RequestID: rid}); err != nil {
		return 0, nil, err
	}
	if err := u.probes.DoTimeout(req, resp, timeout); err != nil {
		return 0, nil, fmt.Errorf("GET %s%s: %w", u.Name, path, err)
	}
	body := append([]byte(nil), resp.Body()...)
	return resp.StatusCode(), body, nil
}

// sign adds the internal signature over req's method, target and id (the
// identity headers are already set).
func (u *Upstream) sign(req *fasthttp.Request, target string, id internalauth.Identity) error {
	if u.signer == nil {
		return nil
	}
	ts, sig, err := u.signer.Sign(string(req.Header.Method()), target, id)
	if err != nil {
		return apierr.BadRequest("bad_request", "The request cannot be forwarded.")
	}
	req.Header.Set(internalauth.HeaderTimestamp, ts)
	req.Header.Set(internalauth.HeaderSignature, sig)
	return nil
}

type requestIDKey struct{}

// WithRequestID lets Get forward the caller's request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}
