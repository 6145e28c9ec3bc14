// Package server builds the Fiber app every service runs: recover, request
// id, tracing, RED metrics, body limit, JSON errors, the health endpoints
// (/livez, /readyz, /health, /health/concurrency), /metrics, and a graceful
// shutdown that stops accepting, drains in-flight requests, then closes
// what the service opened.
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	fiberrecover "github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/logging"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/semaphore"
	"github.com/provcred/platform/tracing"
)

// Header names shared by the gateway and the services.
const (
	HeaderRequestID = internalauth.HeaderRequestID
	// HeaderActor carries the id of the API key the gateway authenticated.
	// Services believe it only when the call is signed (Options.Internal).
	HeaderActor = internalauth.HeaderActor
	HeaderRole  = internalauth.HeaderRole
)

// OpenPaths answer without a signed internal call: the kubelet's probes
// and the Prometheus scrape, none of which carries an identity.
var OpenPaths = []string{"/livez", "/readyz", "/metrics"}

// Check is a named readiness probe of one dependency.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Options configure New.
type Options struct {
	Service string
	// OwnRequestIDs (the gateway, the edge) makes every request's
	// X-Request-Id here, at random; an id the client sent is kept apart as
	// X-Client-Request-Id, so nobody outside chooses the id the logs and
	// the audit log are keyed by. Services take the gateway's.
	OwnRequestIDs bool
	Logger        *slog.Logger
	Metrics       *metrics.Registry
	Tracer        trace.TracerProvider
	BodyLimit     int
	// ShutdownTimeout bounds the drain of in-flight requests (SHUTDOWN_TIMEOUT;
	// 0 stops at once).
	ShutdownTimeout time.Duration
	// RequestTimeout bounds a handler's context (REQUEST_TIMEOUT; 0: none).
	RequestTimeout time.Duration
	// StreamPaths are path prefixes whose handlers read large uploads as a
	// stream (c.Request().BodyStream()); every other route still gets
	// BodyLimit, enforced here.
	StreamPaths []string
	// ReadTimeout bounds reading one request, body included (READ_TIMEOUT;
	// 0: none).
	ReadTimeout time.Duration
	// StreamReadTimeout replaces ReadTimeout on StreamPaths, whose uploads
	// may stream for long: the service's IMPORT_TIMEOUT, the one the
	// gateway gives the same routes (0: ReadTimeout applies).
	StreamReadTimeout time.Duration
	// MaxConnsPerIP caps the connections one client address (an IPv6
	// client: its /64) holds open at once; past it a new connection gets a
	// 429 too_many_connections and is closed (0: no cap). ConnExempt
	// exempts addresses (the gateway's trusted proxies, whose connections
	// carry many clients).
	MaxConnsPerIP int
	ConnExempt    func(netip.Addr) bool
	// Semaphores appear in /health/concurrency as "<name>_semaphore".
	Semaphores []*semaphore.Semaphore
	// Checks run for /readyz and /health.
	Checks []Check
	// Config is the effective configuration shown in /health/concurrency
	// (never put secrets here).
	Config any
	// Info adds fields to /health (e.g. whether an LLM is configured).
	Info func(ctx context.Context) map[string]any
	// Concurrency, when set, replaces the default /health/concurrency body
	// (the gateway aggregates every service).
	Concurrency func(c *fiber.Ctx) error
	// ActiveTasks adds background work (e.g. batch jobs running) to the
	// active_tasks count, next to in-flight requests.
	ActiveTasks func() int64
	// Internal verifies that every request but OpenPaths was signed by the
	// gateway (or chat) and is where the actor, role and request id come
	// from. Nil trusts those headers from anyone: only tests and
	// INTERNAL_AUTH_INSECURE_DEV (service.Deps.Internal is nil then).
	// The gateway, which checks API keys itself, leaves it nil.
	Internal *internalauth.Keyring
}

// Server is a service's HTTP server.
type Server struct {
	App      *fiber.App
	opts     Options
	inflight atomic.Int64
	draining atomic.Bool

	// unavailable counts every 503 by code; unavailableLog samples their
	// log lines (a 30 s outage behind the gateway once wrote 317k lines).
	unavailable    *prometheus.CounterVec
	unavailableLog *sampler
	connsRefused   prometheus.Counter
}

// New builds the app with the platform middleware and endpoints installed.
// Register the service's routes on s.App afterwards.
func New(o Options) *Server {
	s := &Server{opts: o, unavailableLog: &sampler{interval: unavailableLogInterval, m: map[string]*sampleState{}}}
	s.connsRefused = o.Metrics.CounterVec("http_server_connections_refused_total",
		"Connections closed at once because their address held MAX_CONNS_PER_IP open already.").WithLabelValues()
	s.unavailable = o.Metrics.CounterVec("http_server_unavailable_total",
		"Requests answered 503 (shed, breaker open, service down, busy), by error code; their log lines are sampled.", "code")
	if o.Tracer == nil {
		o.Tracer = trace.NewNoopTracerProvider()
		s.opts.Tracer = o.Tracer
	}
	app := fiber.New(fiber.Config{
		AppName:               o.Service,
		DisableStartupMessage: true,
		BodyLimit:             o.BodyLimit,
		StreamRequestBody:     len(o.StreamPaths) > 0,
		ErrorHandler:          s.errorHandler,
		ReadTimeout:           o.ReadTimeout,
		IdleTimeout:           90 * time.Second,
	})
	s.App = app
	// Fiber answers a method it does not know (BREW, or garbage) with a
	// plain-text 400 before any middleware runs; every error is JSON.
	known := map[string]bool{}
	for _, m := range app.Config().RequestMethods {
		known[m] = true
	}
	route := app.Server().Handler
	app.Server().Handler = func(ctx *fasthttp.RequestCtx) {
		if !known[string(ctx.Method())] {
			s.unknownMethod(ctx)
			return
		}
		route(ctx)
	}
	// Responses written once the drain has begun say Connection: close
	// (fasthttp's own flag covers those finished inside Shutdown; the
	// middleware below, those of requests that began before it).
	app.Server().CloseOnShutdown = true
	if len(o.StreamPaths) > 0 {
		// fasthttp's read deadline covers the body a handler streams, so a
		// long upload would be cut at ReadTimeout.
		app.Server().HeaderReceived = func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			uri := h.RequestURI()
			if i := bytes.IndexByte(uri, '?'); i >= 0 {
				uri = uri[:i]
			}
			if s.isStreamPath(string(uri)) {
				return fasthttp.RequestConfig{ReadTimeout: o.StreamReadTimeout}
			}
			return fasthttp.RequestConfig{}
		}
	}
	app.Use(fiberrecover.New(fiberrecover.Config{EnableStackTrace: true, StackTraceHandler: func(c *fiber.Ctx, e any) {
		o.Logger.ErrorContext(c.UserContext(), "panic in handler", "panic", fmt.Sprint(e), "path", c.Route().Path)
	}}))
	app.Use(s.clientRequestID)
	// Random ids (fiber's default generator is a counter on a random seed:
	// consecutive requests get consecutive ids, which tell anyone the
	// platform's request rate and let them guess others' ids).
	app.Use(requestid.New(requestid.Config{Header: HeaderRequestID, ContextKey: "requestid", Generator: utils.UUIDv4}))
	app.Use(tracing.Middleware(o.Tracer))
	app.Use(func(c *fiber.Ctx) error {
		ctx := logging.WithRequestID(c.UserContext(), RequestID(c))
		if id := c.Request().Header.Peek(HeaderClientRequestID); len(id) > 0 {
			ctx = logging.WithClientRequestID(ctx, string(id))
		}
		if o.RequestTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, o.RequestTimeout)
			defer cancel()
		}
		c.SetUserContext(ctx)
		return c.Next()
	})
	app.Use(o.Metrics.Middleware())
	// Errors are rendered here, inside the metrics and tracing middleware,
	// so they record the status the client gets (a 404 or 422 returned as
	// an error would otherwise count as a 500).
	app.Use(s.renderErrors)
	// Before anything reads the body or any route's handler runs.
	app.Use(s.identify)
	if len(o.StreamPaths) > 0 {
		app.Use(s.limitUnstreamedBodies)
	}
	app.Use(func(c *fiber.Ctx) error {
		s.inflight.Add(1)
		defer s.inflight.Add(-1)
		err := c.Next()
		if s.draining.Load() {
			// A keep-alive client (the gateway's pool) must not send its
			// next request here: this process is going away.
			c.Context().SetConnectionClose()
		}
		return err
	})

	app.Get("/livez", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "alive"}) })
	app.Get("/readyz", s.readyz)
	app.Get("/health", s.health)
	if o.Concurrency != nil {
		app.Get("/health/concurrency", o.Concurrency)
	} else {
		app.Get("/health/concurrency", func(c *fiber.Ctx) error { return c.JSON(s.ConcurrencyReport(c.UserContext())) })
	}
	app.Get("/metrics", adaptor.HTTPHandler(o.Metrics.Handler()))
	return s
}

// errUnknownMethod is the answer to a method no route can have.
var errUnknownMethod = apierr.BadRequest("bad_request",
	"Unknown HTTP method: use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS.")

// unknownMethod answers a request whose method Fiber does not know, outside
// the middleware (Fiber refuses such a request before running any).
func (s *Server) unknownMethod(ctx *fasthttp.RequestCtx) {
	body, _ := json.Marshal(errUnknownMethod)
	ctx.Response.Reset()
	ctx.SetStatusCode(errUnknownMethod.Status)
	ctx.SetContentType(fiber.MIMEApplicationJSON)
	ctx.SetBody(body)
	// A body the method may carry is not one anything here can frame.
	ctx.SetConnectionClose()
	m := ctx.Method()
	if len(m) > 16 {
		m = m[:16]
	}
	s.opts.Logger.Info("request rejected", "route", "unmatched", "method", fmt.Sprintf("%q", m),
		"status", errUnknownMethod.Status, "code", errUnknownMethod.Code)
}

// limitUnstreamedBodies buffers, up to BodyLimit, the body of any request
// not on a streaming path: with streaming on, fasthttp hands over bodies past
// the limit as streams instead of refusing them.
func (s *Server) limitUnstreamedBodies(c *fiber.Ctx) error {
	if s.isStreamPath(c.Path()) {
		defer finishStream(c)
		return c.Next()
	}
	req := c.Request()
	if req.Header.ContentLength() > s.opts.BodyLimit {
		// The unread body must not be parsed as the next request: a small
		// one is drained (the client, still sending, gets the 413 instead
		// of a reset), a large one closes the connection.
		finishStream(c)
		return fiber.ErrRequestEntityTooLarge
	}
	if req.IsBodyStream() {
		body, err := io.ReadAll(io.LimitReader(BodyStream(c), int64(s.opts.BodyLimit)+1))
		if err != nil {
			c.Context().SetConnectionClose()
			return apierr.BadRequest("bad_request", "could not read the request body")
		}
		if len(body) > s.opts.BodyLimit {
			finishStream(c)
			return fiber.ErrRequestEntityTooLarge
		}
		req.SetBody(body)
		c.Locals(latchKey, nil) // BodyStream now serves the buffered body
	}
	return c.Next()
}

// maxRequestIDLen bounds a caller's X-Request-Id (a UUID is 36).
const maxRequestIDLen = 128

// HeaderClientRequestID carries, from the gateway on, the X-Request-Id a
// client chose; the audit log keeps it next to the platform's own id.
const HeaderClientRequestID = "X-Client-Request-Id"

// validRequestID: up to maxRequestIDLen visible ASCII characters (the id
// goes into every log line, the audit log and onward to the services).
func validRequestID(id []byte) bool {
	if len(id) > maxRequestIDLen {
		return false
	}
	for _, b := range id {
		if b <= ' ' || b > '~' {
			return false
		}
	}
	return true
}

// clientRequestID sorts out the ids a request arrives with. At the edge
// (OwnRequestIDs) the client's X-Request-Id, when valid, moves to
// X-Client-Request-Id and requestid makes ours; a service keeps the
// gateway's X-Request-Id and X-Client-Request-Id. Invalid ones are dropped.
func (s *Server) clientRequestID(c *fiber.Ctx) error {
	h := &c.Request().Header
	if s.opts.OwnRequestIDs {
		h.Del(HeaderClientRequestID)
		if id := h.Peek(HeaderRequestID); len(id) > 0 && validRequestID(id) {
			h.SetBytesV(HeaderClientRequestID, id)
		}
		h.Del(HeaderRequestID)
		return c.Next()
	}
	if !validRequestID(h.Peek(HeaderRequestID)) {
		h.Del(HeaderRequestID)
	}
	if !validRequestID(h.Peek(HeaderClientRequestID)) {
		h.Del(HeaderClientRequestID)
	}
	return c.Next()
}

// isStreamPath compares case-insensitively, as Fiber routes: /ADMIN/IMPORTS/x
// reaches the same handler as /admin/imports/x and must stream too.
func (s *Server) isStreamPath(path string) bool {
	for _, p := range s.opts.StreamPaths {
		if len(path) >= len(p) && strings.EqualFold(path[:len(p)], p) {
			return true
		}
	}
	return false
}

// RequestID returns the request's id (set by the gateway or made here).
func RequestID(c *fiber.Ctx) string {
	if id, ok := c.Locals("requestid").(string); ok {
		return id
	}
	return c.Get(HeaderRequestID)
}

// identityKey holds the request's internalauth.Identity, set by identify.
const identityKey = "platform.server.identity"

// identify refuses, with 401 unauthenticated_internal, any request but
// OpenPaths whose internal signature is missing, forged, stale or made for
// another method, path or identity, and keeps the identity of those that
// pass for Actor and Role. Without Options.Internal the identity headers
// are believed as they come.
func (s *Server) identify(c *fiber.Ctx) error {
	h := &c.Request().Header
	id := internalauth.Identity{Actor: string(h.Peek(HeaderActor)), Role: string(h.Peek(HeaderRole)),
		RequestID: string(h.Peek(HeaderRequestID))}
	if k := s.opts.Internal; k != nil && !isOpenPath(c.Path()) {
		err := k.Verify(string(h.Method()), string(h.RequestURI()), id,
			string(h.Peek(internalauth.HeaderTimestamp)), string(h.Peek(internalauth.HeaderSignature)))
		if err != nil {
			// Whatever body follows is not read: it must not be taken
			// for the next request on this connection.
			c.Context().SetConnectionClose()
			c.Set(internalauth.HeaderRefused, "refused")
			return apierr.New(fiber.StatusUnauthorized, internalauth.Code,
				"This service accepts only calls signed by the gateway: "+err.Error()+".")
		}
	}
	c.Locals(identityKey, id)
	return c.Next()
}

func isOpenPath(p string) bool {
	for _, o := range OpenPaths {
		if p == o {
			return true
		}
	}
	return false
}

// WithIdentity is a middleware that gives every request id as its
// verified identity: for handlers mounted on an app not built by New (a
// test's bare Fiber app), never from anything the request carries.
func WithIdentity(id internalauth.Identity) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Locals(identityKey, id)
		return c.Next()
	}
}

// Identity returns the request's verified identity (see Options.Internal).
func Identity(c *fiber.Ctx) internalauth.Identity {
	id, _ := c.Locals(identityKey).(internalauth.Identity)
	return id
}

// Actor returns the API key id the gateway authenticated, or "anonymous".
func Actor(c *fiber.Ctx) string {
	if a := Identity(c).Actor; a != "" {
		return a
	}
	return "anonymous"
}

// Role returns the role of the API key the gateway authenticated ("" for
// an open route).
func Role(c *fiber.Ctx) string { return Identity(c).Role }

// renderErrors turns a handler's error, or panic, into the JSON answer
// before the outer middleware look at the response.
func (s *Server) renderErrors(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.opts.Logger.ErrorContext(c.UserContext(), "panic in handler", "panic", fmt.Sprint(r), "path", c.Route().Path)
			err = s.errorHandler(c, fmt.Errorf("panic: %v", r))
		}
	}()
	if err := c.Next(); err != nil {
		return s.errorHandler(c, err)
	}
	return nil
}

func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	out, known := apierr.From(err)
	var fe *fiber.Error
	switch {
	case known:
	case errors.As(err, &fe):
		out = fromFiber(fe)
	case errors.Is(err, semaphore.ErrBusy):
		out = apierr.Unavailable("busy", "The service is at its concurrency limit. Please retry shortly.")
		c.Set(fiber.HeaderRetryAfter, "1")
	case errors.Is(err, context.DeadlineExceeded):
		out = apierr.New(fiber.StatusGatewayTimeout, "timeout", "The request took too long and was stopped.")
	default:
		out = apierr.Internal()
	}
	ctx, attrs := c.UserContext(), []any{"route", c.Route().Path, "method", c.Method(), "status", out.Status, "code", out.Code}
	switch {
	case out.Status < 500:
		s.opts.Logger.InfoContext(ctx, "request rejected", attrs...)
	case out.Status == fiber.StatusServiceUnavailable:
		s.unavailable.WithLabelValues(out.Code).Inc()
		if ok, suppressed := s.unavailableLog.take(out.Code, time.Now()); ok {
			s.opts.Logger.ErrorContext(ctx, "request failed", append(attrs, "err", err.Error(),
				"suppressed_since_last", suppressed, "sample_interval", s.unavailableLog.interval.String())...)
		}
	default:
		s.opts.Logger.ErrorContext(ctx, "request failed", append(attrs, "err", err.Error())...)
	}
	return c.Status(out.Status).JSON(out)
}

// unavailableLogInterval: a 503 (shedding, an open breaker, a busy
// semaphore) is logged the first time, then at most one summary line per
// interval per code with the count since; http_server_unavailable_total
// counts every one. (A 30 s outage behind the gateway once wrote 317k lines.)
const unavailableLogInterval = 10 * time.Second

// sampler lets one log line per code through per interval and counts the
// rest, so an outage costs a few lines, not one per refused request.
type sampler struct {
	interval time.Duration
	mu       sync.Mutex
	m        map[string]*sampleState // by error code: a small fixed set
}

type sampleState struct {
	last       time.Time
	suppressed int64
}

// take says whether to log this one, and how many went unlogged since the
// last line.
func (s *sampler) take(code string, now time.Time) (bool, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[code]
	if st == nil {
		st = &sampleState{}
		s.m[code] = st
	}
	if !st.last.IsZero() && now.Sub(st.last) < s.interval {
		st.suppressed++
		return false, 0
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	return true, n
}

func fromFiber(fe *fiber.Error) *apierr.Error {
	switch fe.Code {
	case fiber.StatusNotFound:
		return apierr.New(fe.Code, "not_found", "No such endpoint.")
	case fiber.StatusMethodNotAllowed:
		return apierr.New(fe.Code, "method_not_allowed", "This endpoint does not accept that method.")
	case fiber.StatusRequestEntityTooLarge:
		return apierr.New(fe.Code, "body_too_large", "The request body is larger than the limit.")
	case fiber.StatusUnsupportedMediaType:
		return apierr.New(fe.Code, "unsupported_media_type", fe.Message)
	case fiber.StatusBadRequest, fiber.StatusUnprocessableEntity:
		return apierr.New(fe.Code, "bad_request", fe.Message)
	default:
		return apierr.New(fe.Code, strings.ReplaceAll(strings.ToLower(utils.StatusMessage(fe.Code)), " ", "_"), fe.Message)
	}
}

// checks runs every readiness check with a short deadline.
func (s *Server) checks(ctx context.Context) (map[string]string, bool) {
	out := map[string]string{}
	ok := true
	for _, ch := range s.opts.Checks {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := ch.Fn(cctx)
		cancel()
		if err != nil {
			// The open answer is a status word: a driver's error names the
			// database user, host and port. The cause goes to the log.
			out[ch.Name] = "down"
			ok = false
			s.opts.Logger.WarnContext(ctx, "readiness check failed", "check", ch.Name, "err", err.Error())
		} else {
			out[ch.Name] = "up"
		}
	}
	return out, ok
}

func (s *Server) readyz(c *fiber.Ctx) error {
	if s.draining.Load() {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "draining"})
	}
	checks, ok := s.checks(c.UserContext())
	if !ok {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unready", "checks": checks})
	}
	return c.JSON(fiber.Map{"status": "ready", "checks": checks})
}

func (s *Server) health(c *fiber.Ctx) error {
	checks, ok := s.checks(c.UserContext())
	body := fiber.Map{"status": "healthy", "service": s.opts.Service, "checks": checks}
	if s.opts.Info != nil {
		for k, v := range s.opts.Info(c.UserContext()) {
			body[k] = v
		}
	}
	status := fiber.StatusOK
	if !ok || s.draining.Load() {
		body["status"] = "unhealthy"
		status = fiber.StatusServiceUnavailable
	}
	return c.Status(status).JSON(body)
}

// ConcurrencyReport is the body of /health/concurrency, in the original
// service's shape: status, concurrency (active tasks and every semaphore),
// system, config.
func (s *Server) ConcurrencyReport(ctx context.Context) map[string]any {
	conc := map[string]any{"active_tasks": s.ActiveTasks()}
	for _, sem := range s.opts.Semaphores {
		conc[sem.Name()+"_semaphore"] = sem.Stats()
	}
	status := "healthy"
	if s.draining.Load() {
		status = "draining"
	}
	return map[string]any{
		"status":      status,
		"service":     s.opts.Service,
		"concurrency": conc,
		"system":      SystemStats(ctx),
		"config":      s.opts.Config,
	}
}

// ActiveTasks counts in-flight requests (less the one asking) plus background work.
func (s *Server) ActiveTasks() int64 {
	n := s.inflight.Load() - 1
	if n < 0 {
		n = 0
	}
	if s.opts.ActiveTasks != nil {
		n += s.opts.ActiveTasks()
	}
	return n
}

// Draining reports whether shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// Serve accepts on ln until ctx ends, then drains: readiness turns 503,
// the listener closes, idle keep-alive connections are closed, in-flight
// requests get up to ShutdownTimeout and answer with Connection: close, and
// closers run in order (pools, tracer). A request that arrives on a
// keep-alive connection as it is being closed is dropped unread (fasthttp),
// never half-handled: the client may safely send it again elsewhere, which
// the gateway does.
func (s *Server) Serve(ctx context.Context, ln net.Listener, closers ...func(context.Context) error) error {
	if s.opts.MaxConnsPerIP > 0 {
		ln = &connLimiter{Listener: ln, max: s.opts.MaxConnsPerIP, exempt: s.opts.ConnExempt,
			refused: s.connsRefused, open: map[netip.Addr]int{}}
	}
	errc := make(chan error, 1)
	go func() { errc <- s.App.Listener(ln) }()
	s.opts.Logger.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("server stopped: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.opts.Logger.Info("shutting down: draining in-flight requests", "timeout", s.opts.ShutdownTimeout.String())
	err := s.App.ShutdownWithTimeout(s.opts.ShutdownTimeout)
	if err != nil {
		s.opts.Logger.Warn("drain incomplete", "err", err.Error())
	}
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range closers {
		if cerr := c(cctx); cerr != nil {
			s.opts.Logger.Warn("close failed", "err", cerr.Error())
		}
	}
	s.opts.Logger.Info("stopped")
	return err
}

// Listen opens a TCP listener on addr. With reusePort, SO_REUSEPORT lets a
// new process of the same service (and user) listen on the same address
// before the old one drains, so a restart on one host leaves no moment
// without a listener: start the new one, wait for its /readyz, then SIGTERM
// the old. Every process sharing the address must set it.
func Listen(ctx context.Context, addr string, reusePort bool) (net.Listener, error) {
	var lc net.ListenConfig
	if reusePort {
		lc.Control = reusePortControl
	}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

// SignalContext ends when the process gets SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

// BodyStream returns the request body as a reader: the stream when this
// request is streamed (StreamPaths), else the buffered body. Once it has
// reported io.EOF it keeps doing so without touching the connection again:
// fasthttp's chunked body stream blocks when read past its end, which would
// hang any reader that checks for EOF twice (bufio, csv, io.Copy after a
// short read). Read a streamed body only through it: finishStream relies on
// it to know how far the handler read.
func BodyStream(c *fiber.Ctx) io.Reader {
	if l, ok := c.Locals(latchKey).(*eofLatch); ok {
		return l
	}
	if s := c.Request().BodyStream(); s != nil {
		l := &eofLatch{r: s}
		c.Locals(latchKey, l)
		return l
	}
	return bytes.NewReader(c.Body())
}

// latchKey keeps a request's eofLatch, so finishStream knows how far the
// handler read.
const latchKey = "platform.server.bodystream"

// drainMax is how much of a streamed body a handler left unread is read and
// dropped to keep the connection; past it the connection is closed.
const drainMax = 8 << 20

// finishStream runs after a streamed request's handler. fasthttp parses
// whatever follows on the connection as the next request, so a body the
// handler stopped reading (it refused the upload, or failed on a bad line)
// must not stay there: its rest would be run as requests of their own,
// with any X-Actor-Id they carry (request smuggling through the gateway's
// pooled connections). A small rest is read and dropped, so the client gets
// the answer; a large one closes the connection.
func finishStream(c *fiber.Ctx) {
	req := c.Request()
	if !req.IsBodyStream() {
		return
	}
	if req.Header.ContentLength() == 0 {
		return
	}
	// A body nobody read gets its latch now (bodies are read only through
	// BodyStream, so the stream is untouched).
	l, ok := BodyStream(c).(*eofLatch)
	if !ok {
		c.Context().SetConnectionClose()
		return
	}
	if l.err == io.EOF {
		return
	}
	n, err := io.Copy(io.Discard, io.LimitReader(l, drainMax+1))
	if err != nil || n > drainMax {
		c.Context().SetConnectionClose()
	}
}

type eofLatch struct {
	r   io.Reader
	err error
}

func (l *eofLatch) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	if err != nil {
		l.err = err
	}
	return n, err
}
