// Package app assembles the gateway: the platform server, the open
// endpoints (health, docs), connection shedding, and for every route of the
// table: rate limit, authentication, role check, then the proxy.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/server"

	"github.com/provcred/gateway/internal/auth"
	"github.com/provcred/gateway/internal/config"
	"github.com/provcred/gateway/internal/health"
	"github.com/provcred/gateway/internal/openapi"
	"github.com/provcred/gateway/internal/proxy"
	"github.com/provcred/gateway/internal/ratelimit"
	"github.com/provcred/gateway/internal/routes"
)

// Service is the gateway's service label.
const Service = "gateway"

// Gateway is the assembled gateway.
type Gateway struct {
	Server    *server.Server
	Metrics   *metrics.Registry
	cfg       *config.Config
	log       *slog.Logger
	keys      *auth.Store
	limiter   ratelimit.Limiter
	local     *ratelimit.Local
	redis     *ratelimit.Redis
	upstreams map[string]*proxy.Upstream
	inflight  atomic.Int64

	healthProbe, concurrencyProbe *health.Prober

	rl   *ratelimit.Metrics
	shed prometheus.Counter

	// stop ends the API_KEYS_FILE watch (Close).
	stop context.CancelFunc
}

// Deps are the optional collaborators (tests inject a clock or limiter).
type Deps struct {
	Logger  *slog.Logger
	Tracer  oteltrace.TracerProvider
	Metrics *metrics.Registry
	Limiter ratelimit.Limiter
	Now     func() time.Time
	// Signer signs what is passed on to the services (service.Deps.Internal;
	// nil only under INTERNAL_AUTH_INSECURE_DEV).
	Signer *internalauth.Keyring
}

// New builds the gateway from a validated configuration.
func New(cfg *config.Config, d Deps) (*Gateway, error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = metrics.New(Service)
	}
	g := &Gateway{
		cfg: cfg, log: d.Logger, Metrics: d.Metrics,
		keys: auth.NewStore(cfg.Keys), upstreams: map[string]*proxy.Upstream{},
	}
	watchCtx, stop := context.WithCancel(context.Background())
	g.stop = stop
	if cfg.APIKeysFile != "" {
		fixed, _ := auth.ParseKeys(cfg.APIKeys, "API_KEYS") // validated with the configuration
		failed := g.Metrics.CounterVec("gateway_api_keys_reload_failures_total",
			"Reads of a changed API_KEYS_FILE that failed (unreadable, invalid, no keys); the keys in force were kept.").WithLabelValues()
		g.Metrics.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gateway_api_keys", Help: "API keys in force."}, func() float64 { return float64(g.keys.Len()) }))
		go g.keys.WatchFile(watchCtx, cfg.APIKeysFile, fixed, max(cfg.APIKeysReload, 10*time.Millisecond), d.Logger, failed.Inc)
	}
	g.shed = g.Metrics.CounterVec("gateway_shed_requests_total",
		"Requests refused with 503 overloaded because MAX_CONCURRENT_CONNECTIONS were in flight.").WithLabelValues()
	// Decisions are counted here, whatever the limiter's backend.
	g.rl = ratelimit.NewMetrics(g.Metrics)
	g.limiter = d.Limiter
	switch {
	case g.limiter != nil:
	case cfg.Redis != nil:
		g.redis = ratelimit.NewRedis(ratelimit.RedisOptions{
			Client: *cfg.Redis, Prefix: cfg.RateLimitKeyPrefix, Timeout: cfg.RateLimitRedisTimeout,
			FailureMode: ratelimit.FailureMode(cfg.RateLimitFailureMode), Replicas: cfg.RateLimitReplicas,
			Breaker:   cfg.RateLimitBreaker(),
			CacheSize: cfg.RateLimitLocalCacheSize, MaxKeys: cfg.RateLimitMaxKeys,
			Logger: d.Logger, Metrics: g.rl, Registry: g.Metrics, Now: d.Now,
		})
		g.limiter = g.redis
	default:
		g.local = ratelimit.NewLocal(ratelimit.Options{MaxKeys: cfg.RateLimitMaxKeys, Now: d.Now})
		g.limiter = g.local
	}
	for name, base := range map[string]string{
		routes.Credential: cfg.CredentialURL, routes.Stats: cfg.StatsURL, routes.Chat: cfg.ChatURL,
	} {
		up, err := proxy.New(proxy.Options{
			Name: name, BaseURL: base, Timeout: cfg.Timeout(name), MaxConns: cfg.MaxConcurrentConnections,
			Breaker: cfg.UpstreamBreaker(),
			Metrics: g.Metrics, Signer: d.Signer,
		})
		if err != nil {
			return nil, err
		}
		g.upstreams[name] = up
	}

	// Probe results are shared for a second: probes poll often.
	g.healthProbe = &health.Prober{Targets: g.targets(), Path: "/health", Timeout: cfg.HealthTimeout, TTL: time.Second}
	g.concurrencyProbe = &health.Prober{Targets: g.targets(), Path: "/health/concurrency", Timeout: cfg.HealthTimeout, TTL: time.Second}

	g.Server = server.New(server.Options{
		Service: Service, Logger: d.Logger, Metrics: g.Metrics, Tracer: d.Tracer,
		BodyLimit: cfg.BodyLimitBytes, OwnRequestIDs: true,
		MaxConnsPerIP: cfg.MaxConnsPerIP, ConnExempt: func(a netip.Addr) bool {
			for _, p := range cfg.Proxies {
				if p.Contains(a) {
					return true
				}
			}
			return false
		},
		// Only the import routes stream; the server caps every other body.
		// Their read timeout is IMPORT_TIMEOUT, given per request by
		// requestConfig (only to a key that may import).
		StreamPaths:     routes.StreamPrefixes(),
		ReadTimeout:     cfg.ReadTimeout,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Config:          cfg.Public(),
		Info:            g.healthInfo,
		Concurrency:     g.concurrency,
	})
	fs := g.Server.App.Server()
	// Import uploads are proxied as a raw stream; parsing multipart here
	// would spool them to disk and break the pass-through.
	fs.DisablePreParseMultipartForm = true
	fs.HeaderReceived = g.requestConfig

	app := g.Server.App
	openapi.New().Routes(app)
	// Registered after the health and docs endpoints, so probes are never shed.
	app.Use(g.shedding)
	app.Use(canonicalPath)
	for _, rt := range routes.Table {
		h := g.handler(rt)
		for _, m := range rt.Methods {
			app.Add(m, rt.Path, h)
		}
	}
	return g, nil
}

// requestConfig gives import uploads by a key with the route's role
// (admin; operator for POST /batch-credential) IMPORT_TIMEOUT as the
// connection's read and write timeout (the server's read timeout covers the
// whole body). Only such a key gets that long, so nobody else can hold a
// connection open for it.
func (g *Gateway) requestConfig(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	role, ok := routes.ImportRole(string(pathOnly(h.RequestURI())))
	if !ok {
		return fasthttp.RequestConfig{}
	}
	tok, ok := auth.BearerToken(string(h.Peek(fiber.HeaderAuthorization)))
	if !ok {
		return fasthttp.RequestConfig{}
	}
	if k, ok := g.keys.Lookup(tok); !ok || k.Role < role {
		return fasthttp.RequestConfig{}
	}
	return fasthttp.RequestConfig{ReadTimeout: g.cfg.ImportTimeout, WriteTimeout: g.cfg.ImportTimeout}
}

func pathOnly(uri []byte) []byte {
	for i, b := range uri {
		if b == '?' {
			return uri[:i]
		}
	}
	return uri
}

// Serve runs the gateway on ln until ctx ends, then drains.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	return g.Server.Serve(ctx, ln, g.Close)
}

// Close drops the idle upstream connections (a closer for the drain).
func (g *Gateway) Close(context.Context) error {
	g.stop()
	for _, u := range g.upstreams {
		u.Close()
	}
	if g.redis != nil {
		g.redis.Close()
	}
	return nil
}

// shedding refuses requests past MAX_CONCURRENT_CONNECTIONS in flight with
// a quick 503, before any auth or proxy work is spent on them.
func (g *Gateway) shedding(c *fiber.Ctx) error {
	n := g.inflight.Add(1)
	defer g.inflight.Add(-1)
	if n > int64(g.cfg.MaxConcurrentConnections) {
		g.shed.Inc()
		c.Set(fiber.HeaderRetryAfter, "1")
		return apierr.Unavailable("overloaded", "The gateway is at its connection limit. Please retry shortly.")
	}
	return c.Next()
}

var errPath = apierr.BadRequest("bad_request",
	"The request path must not contain dot segments, encoded slashes or empty segments.")

// canonicalPath refuses a path that is not already in the form it is
// forwarded in. Fiber routes (and so checks the role) on the raw path, while
// the proxy forwards fasthttp's decoded, normalised one: without this,
// GET /results/..%2Fadmin%2Fimports passes as a reader route and reaches
// GET /admin/imports upstream.
func canonicalPath(c *fiber.Ctx) error {
	raw, fwd := c.Path(), c.Request().URI().Path()
	if raw != string(fwd) {
		dec, err := url.PathUnescape(raw)
		// An encoded slash decodes to a segment boundary the route did not
		// see: /batch/x%2Fy matched /batch/:batch_id but forwards /batch/x/y.
		if err != nil || dec != string(fwd) || strings.Count(dec, "/") != strings.Count(raw, "/") {
			return errPath
		}
	}
	return c.Next()
}

// Errors of the auth and rate-limit steps (stable codes, see docs/api.md).
var (
	errUnauthorized = apierr.New(fiber.StatusUnauthorized, "unauthorized",
		"A valid API key is required: send Authorization: Bearer <key>.")
	errRateLimited = apierr.New(fiber.StatusTooManyRequests, "rate_limited",
		"Too many requests. Please try again later.")
)

func (g *Gateway) handler(rt routes.Route) fiber.Handler {
	up := g.upstreams[rt.Upstream]
	policy := g.cfg.Policies[rt.LimitGroup()]
	fwd := proxy.Forward{BodyLimit: int64(g.cfg.BodyLimitBytes)}
	if rt.Import {
		fwd = proxy.Forward{Stream: true, Timeout: g.cfg.ImportTimeout, BodyLimit: g.cfg.ImportBodyLimitBytes}
	}
	return func(c *fiber.Ctx) error {
		key, authed := auth.Key{}, false
		if tok, ok := auth.BearerToken(c.Get(fiber.HeaderAuthorization)); ok {
			key, authed = g.keys.Lookup(tok)
		}
		// An authenticated client is limited per key (shared by all its
		// hosts), anyone else per address, so bad keys are limited too.
		rlKey := "ip:" + ratelimit.ClientKey(g.clientIP(c))
		if authed {
			rlKey = "key:" + key.ID
		}
		if err := g.rateLimit(c, policy, rlKey); err != nil {
			return err
		}
		if !authed {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="provcred"`)
			return errUnauthorized
		}
		if key.Role < rt.Role {
			return apierr.Newf(fiber.StatusForbidden, "forbidden",
				"This API key (role %s) may not %s %s: it needs the %s role.", key.Role, c.Method(), rt.Path, rt.Role)
		}
		f := fwd
		f.Actor, f.Role = key.ID, key.Role.String()
		return up.Handle(c, f)
	}
}

// rateLimit charges the request to key under p. The Redis limiter never
// errs (it has its own fallback); another Limiter's error lets the request
// through, since a limiter outage must not take the API down.
func (g *Gateway) rateLimit(c *fiber.Ctx, p ratelimit.Policy, key string) error {
	d, err := g.limiter.Allow(c.UserContext(), p, key)
	if err != nil {
		g.rl.BackendErrors.Inc()
		g.log.WarnContext(c.UserContext(), "rate limiter failed; request let through", "err", err.Error())
		return nil
	}
	c.Set("RateLimit-Policy", p.HeaderPolicy())
	c.Set("RateLimit", p.Header(d))
	if d.Allowed {
		g.rl.Decisions.WithLabelValues("allowed").Inc()
		return nil
	}
	g.rl.Decisions.WithLabelValues("limited").Inc()
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(ratelimit.RetryAfterSeconds(d)))
	return errRateLimited
}

func (g *Gateway) clientIP(c *fiber.Ctx) netip.Addr {
	peer := netip.Addr{}
	if ip := c.Context().RemoteIP(); ip != nil {
		peer, _ = netip.AddrFromSlice(ip)
	}
	var xff []string
	if len(g.cfg.Proxies) > 0 {
		for _, v := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
			xff = append(xff, string(v))
		}
	}
	return ratelimit.ClientIP(peer, xff, g.cfg.Proxies)
}

func (g *Gateway) targets() map[string]health.Target {
	t := make(map[string]health.Target, len(g.upstreams))
	for n, u := range g.upstreams {
		t[n] = u
	}
	return t
}

// healthInfo adds the upstreams' status to /health (short form).
func (g *Gateway) healthInfo(ctx context.Context) map[string]any {
	reports, ok := g.healthProbe.Probe(ctx)
	rl, rlOK := g.limiterStatus()
	out := map[string]any{"upstreams": health.Short(reports), "breakers": g.breakerStates(),
		"rate_limiter": map[string]any{"backend": rl["backend"], "status": rl["status"]}}
	if !ok || !rlOK {
		out["status"] = "degraded"
	}
	return out
}

// limiterStatus is the rate limiter's report and whether it is as
// configured (a Redis limiter deciding in Redis).
func (g *Gateway) limiterStatus() (map[string]any, bool) {
	var rl map[string]any
	switch {
	case g.redis != nil:
		rl = g.redis.Status()
	case g.local != nil:
		rl = map[string]any{"backend": "local", "status": "ok", "keys": g.local.Keys()}
	default:
		rl = map[string]any{"backend": fmt.Sprintf("%T", g.limiter), "status": "ok"}
	}
	rl["algorithm"] = "gcra"
	pol := map[string]any{}
	for n, p := range g.cfg.Policies {
		pol[n] = map[string]any{"rate": p.Rate, "period": p.Period.String(), "burst": p.Burst}
	}
	rl["policies"] = pol
	return rl, g.redis == nil || g.redis.Healthy()
}

// mayReadDetails reports whether the request carries an operator or admin key.
func (g *Gateway) mayReadDetails(c *fiber.Ctx) bool {
	tok, ok := auth.BearerToken(c.Get(fiber.HeaderAuthorization))
	if !ok {
		return false
	}
	k, ok := g.keys.Lookup(tok)
	return ok && k.Role >= auth.RoleOperator
}

// openConcurrency is /health/concurrency without a key: the overall status
// and each upstream's status word, judged as the detailed report judges them.
func (g *Gateway) openConcurrency(reports map[string]any, upstreamsOK bool) map[string]any {
	_, rlOK := g.limiterStatus()
	ok := upstreamsOK && rlOK
	for _, u := range g.upstreams {
		if u.Breaker().State() != "closed" {
			ok = false
		}
	}
	status := "healthy"
	if g.Server.Draining() {
		status = "draining"
	} else if !ok {
		status = "degraded"
	}
	ups := map[string]any{}
	for name, r := range reports {
		st := "unknown"
		if m, isMap := r.(map[string]any); isMap {
			if s, isStr := m["status"].(string); isStr {
				st = s
			}
		}
		ups[name] = map[string]any{"status": st}
	}
	return map[string]any{"service": "gateway", "status": status, "upstreams": ups,
		"detail": "Send an operator or admin key for the full report (limits, utilization, settings)."}
}

func (g *Gateway) breakerStates() map[string]string {
	out := map[string]string{}
	for _, u := range g.upstreams {
		out[u.Breaker().Name()] = u.Breaker().State()
	}
	return out
}

// concurrency is the gateway's /health/concurrency: its own figures plus
// every upstream's report. The route is open (load balancers and status
// pages call it without a key), so the open answer is status words only;
// limits, timeouts, settings and utilization are for an operator or admin
// key, since they tell an attacker how to stay under every guard.
func (g *Gateway) concurrency(c *fiber.Ctx) error {
	ctx := proxy.WithRequestID(c.UserContext(), server.RequestID(c))
	reports, ok := g.concurrencyProbe.Probe(ctx)
	if !g.mayReadDetails(c) {
		return c.JSON(g.openConcurrency(reports, ok))
	}
	body := g.Server.ConcurrencyReport(ctx)
	conc, _ := body["concurrency"].(map[string]any)
	if conc == nil {
		conc = map[string]any{}
		body["concurrency"] = conc
	}
	inUse := g.inflight.Load()
	total := int64(g.cfg.MaxConcurrentConnections)
	conc["connections"] = map[string]any{
		"in_use": inUse, "total": total, "available": max(total-inUse, 0),
		"utilization": fmt.Sprintf("%.1f%%", float64(inUse)*100/float64(total)),
	}
	rl, rlOK := g.limiterStatus()
	conc["rate_limiter"] = rl
	ok = ok && rlOK
	breakers := map[string]any{}
	for _, u := range g.upstreams {
		b := u.Breaker()
		cnt := b.Counts()
		breakers[b.Name()] = map[string]any{"state": b.State(), "consecutive_failures": cnt.ConsecutiveFailures}
		if b.State() != "closed" {
			ok = false
		}
	}
	conc["breakers"] = breakers
	body["upstreams"] = reports
	if !ok && body["status"] == "healthy" {
		body["status"] = "degraded"
	}
	return c.JSON(body)
}
