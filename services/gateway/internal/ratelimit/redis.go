package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/metrics"
)

// GCRAScript decides one request atomically. Redis's clock (TIME, µs) is
// the only clock: replicas' clocks never matter. KEYS[1] holds the client's
// theoretical arrival time (µs since the epoch) and expires when its
// allowance is whole again. ARGV: emission interval T and tolerance
// τ = (burst+½)×T (see Policy), both in µs (fractional). Returns {allowed, µs until whole
// again, µs until the next request passes, remaining}.
//
// Numbers are Lua doubles: µs since the epoch (~1.8e15) are exact below
// 2^53, and are written with %d (tostring would round them to 14 digits).
const GCRAScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local T = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new = tat + T
local diff = new - now
if diff <= tau then
  redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.max(1, math.ceil(diff / 1000)))
  return {1, math.ceil(diff), 0, math.floor((tau - diff) / T + 1e-6)}
end
return {0, math.ceil(tat - now), math.ceil(diff - tau), 0}
`

// replicasScript records this replica's heartbeat and counts the replicas
// seen within the window (µs), for the fallback's share of each limit.
const replicasScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], string.format('%d', now), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('(%d', now - window))
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 500))
return redis.call('ZCARD', KEYS[1])
`

var (
	gcra     = rueidis.NewLuaScript(GCRAScript)
	heartbit = rueidis.NewLuaScript(replicasScript)
)

// FailureMode is what the Redis limiter does while Redis cannot decide.
type FailureMode string

const (
	// FailOpen decides with the local limiter, each limit divided by the
	// number of gateway replicas.
	FailOpen FailureMode = "open"
	// FailClosed refuses every request with 429.
	FailClosed FailureMode = "closed"
)

// Heartbeat timing of the replica count.
const (
	heartbeatEvery  = 5 * time.Second
	heartbeatWindow = 3 * heartbeatEvery
	reconnectEvery  = 500 * time.Millisecond
)

var errNotConnected = errors.New("redis: not connected")

// RedisOptions configure NewRedis.
type RedisOptions struct {
	// Client is the rueidis configuration (see ClientOption).
	Client rueidis.ClientOption
	// Prefix starts every key (the key is Prefix{policy:client}).
	Prefix string
	// Timeout bounds each decision's Redis call (positive).
	Timeout     time.Duration
	FailureMode FailureMode
	// Replicas is the gateway replica count the fallback divides by; 0
	// counts the replicas that heartbeat through Redis (1 until known).
	Replicas int
	Breaker  breaker.Settings
	// CacheSize bounds the local cache of clients known to be over their
	// limit (refused without a Redis call until their retry time; at least 1).
	CacheSize int
	// MaxKeys bounds the fallback limiter (at least 1).
	MaxKeys int
	Logger  *slog.Logger
	Metrics *Metrics
	// Registry gets the breaker's series (circuit_breaker_state{name="ratelimit_redis"}).
	Registry *metrics.Registry
	// Now is the local clock of the caches (tests inject one).
	Now func() time.Time
}

// Redis is the cluster-wide limiter: one GCRA decision per request in
// Redis, shared by every gateway replica. Redis slow, down or read-only
// never fails a request: past Timeout, or while the breaker around Redis is
// open, it decides by FailureMode, and goes back to Redis when Redis answers.
type Redis struct {
	o     RedisOptions
	log   *slog.Logger
	m     *Metrics
	br    *breaker.Breaker
	local *Local
	over  *overCache
	id    string

	client   atomic.Pointer[rueidis.Client]
	replicas atomic.Int64
	kick     chan struct{}
	stop     context.CancelFunc
	done     chan struct{}

	// suspect is set by a failed call and cleared by a good one: see evalWithin.
	suspect       atomic.Bool
	fallback      atomic.Bool
	fallbackSince atomic.Int64 // unix ns
	fallbackCount atomic.Int64
	lastError     atomic.Value // string: a reason word, never an address
}

// validate reports a setting the limiter cannot work with. The values come
// from the gateway's configuration (RATE_LIMIT_*), which holds the defaults.
func (o RedisOptions) validate() error {
	switch {
	case o.Timeout <= 0:
		return fmt.Errorf("ratelimit: Timeout must be positive, got %s", o.Timeout)
	case o.FailureMode != FailOpen && o.FailureMode != FailClosed:
		return fmt.Errorf("ratelimit: FailureMode must be %q or %q, got %q", FailOpen, FailClosed, o.FailureMode)
	case o.CacheSize < 1:
		return fmt.Errorf("ratelimit: CacheSize must be at least 1, got %d", o.CacheSize)
	case o.MaxKeys < 1:
		return fmt.Errorf("ratelimit: MaxKeys must be at least 1, got %d", o.MaxKeys)
	}
	return o.Breaker.Validate()
}

// NewRedis builds the limiter and starts connecting in the background: the
// gateway starts (and decides by FailureMode) while Redis is unreachable.
// It panics on options that fail validation, which validated configuration
// never gives.
func NewRedis(o RedisOptions) *Redis {
	if err := o.validate(); err != nil {
		panic(err.Error())
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Registry == nil {
		o.Registry = metrics.New("ratelimit")
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(o.Registry)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	host, _ := os.Hostname()
	r := &Redis{
		o: o, log: o.Logger, m: o.Metrics,
		br:    breaker.New("ratelimit_redis", o.Breaker, o.Registry),
		local: NewLocal(Options{MaxKeys: o.MaxKeys, Now: o.Now}),
		over:  newOverCache(o.CacheSize),
		id:    host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(b[:]),
		kick:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	r.replicas.Store(1)
	r.lastError.Store("")
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go r.run(ctx)
	return r
}

// Allow decides in Redis; see Redis.
func (r *Redis) Allow(ctx context.Context, p Policy, key string) (Decision, error) {
	now := r.o.Now()
	ck := p.Name + "\x00" + key
	if until, ok := r.over.get(ck, now); ok {
		retry := until.Sub(now)
		return Decision{Limit: p.Burst, RetryAfter: retry, ResetAfter: retry + p.tau() - p.interval()}, nil
	}
	c := r.client.Load()
	if c == nil {
		return r.degraded(ctx, p, key, errNotConnected), nil
	}
	var d Decision
	err := r.br.Do(ctx, func(ctx context.Context) error {
		var err error
		d, err = r.evalWithin(ctx, *c, p, key)
		return err
	})
	if err != nil {
		if !errors.Is(err, breaker.ErrOpen) {
			r.m.BackendErrors.Inc()
		}
		if isReadOnly(err) {
			// A demoted primary (failover): new connections find the new one.
			r.reconnect()
		}
		return r.degraded(ctx, p, key, err), nil
	}
	r.healed()
	if !d.Allowed {
		r.over.put(ck, now.Add(d.RetryAfter), now)
	}
	return d, nil
}

type evalResult struct {
	d   Decision
	err error
}

// evalWithin runs the script with the per-call timeout. rueidis honours
// the deadline while a command waits for its answer, but it re-dials a
// broken connection inside the caller's call, and that handshake is bounded
// by the dial timeout, not by the context (a paused Redis held such calls
// for the whole dial timeout). So after a failure, until a call succeeds
// again, each call runs in a goroutine that is abandoned at the timeout;
// while Redis answers, calls run directly (no goroutine, no channel).
func (r *Redis) evalWithin(ctx context.Context, c rueidis.Client, p Policy, key string) (Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	if !r.suspect.Load() {
		d, err := r.eval(ctx, c, p, key)
		if err != nil {
			r.suspect.Store(true)
		}
		return d, err
	}
	ch := make(chan evalResult, 1)
	go func() {
		d, err := r.eval(ctx, c, p, key)
		ch <- evalResult{d, err}
	}()
	select {
	case res := <-ch:
		if res.err == nil {
			r.suspect.Store(false)
		}
		return res.d, res.err
	case <-ctx.Done():
		return Decision{}, fmt.Errorf("redis: rate limit decision: %w", ctx.Err())
	}
}

func (r *Redis) eval(ctx context.Context, c rueidis.Client, p Policy, key string) (Decision, error) {
	t, tau := p.interval(), p.tau()
	vals, err := gcra.Exec(ctx, c, []string{r.o.Prefix + "{" + p.Name + ":" + key + "}"},
		[]string{micros(t), micros(tau)}).AsIntSlice()
	if err != nil {
		return Decision{}, err
	}
	if len(vals) != 4 {
		return Decision{}, fmt.Errorf("redis: rate limit script returned %d values", len(vals))
	}
	return Decision{
		Allowed: vals[0] == 1, Limit: p.Burst, Remaining: int(vals[3]),
		ResetAfter: time.Duration(vals[1]) * time.Microsecond, RetryAfter: time.Duration(vals[2]) * time.Microsecond,
	}, nil
}

func micros(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 3, 64) }

// degraded decides without Redis and marks the start of an episode (one
// log line per episode, and the gauge).
func (r *Redis) degraded(ctx context.Context, p Policy, key string, cause error) Decision {
	reason := reasonOf(cause)
	r.lastError.Store(reason)
	if r.fallback.CompareAndSwap(false, true) {
		r.fallbackSince.Store(time.Now().UnixNano())
		r.m.FallbackActive.Set(1)
		r.log.WarnContext(ctx, "rate limiter: Redis unavailable, deciding without it until it answers",
			"failure_mode", string(r.o.FailureMode), "replicas", r.replicaCount(), "reason", reason, "err", cause.Error())
	}
	r.fallbackCount.Add(1)
	if r.o.FailureMode == FailClosed {
		return Decision{Limit: p.Burst, RetryAfter: time.Second, ResetAfter: time.Second}
	}
	d, _ := r.local.Allow(ctx, p.Shared(r.replicaCount()), key)
	return d
}

// healed ends an episode when Redis has decided again.
func (r *Redis) healed() {
	if !r.fallback.Load() || !r.fallback.CompareAndSwap(true, false) {
		return
	}
	r.m.FallbackActive.Set(0)
	since := time.Unix(0, r.fallbackSince.Load())
	r.log.Info("rate limiter: back on Redis", "fallback_for", time.Since(since).Round(time.Millisecond).String(),
		"fallback_decisions", r.fallbackCount.Swap(0))
}

func (r *Redis) replicaCount() int {
	if r.o.Replicas > 0 {
		return r.o.Replicas
	}
	return int(max(r.replicas.Load(), 1))
}

// reconnect asks the background loop for new connections.
func (r *Redis) reconnect() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run connects (again after a READONLY answer or a failed start), and
// heartbeats the replica count, until Close.
func (r *Redis) run(ctx context.Context) {
	defer close(r.done)
	heartbeat := time.NewTicker(heartbeatEvery)
	defer heartbeat.Stop()
	fresh := true // connect now
	for {
		if fresh || r.client.Load() == nil {
			if r.connect(ctx) {
				r.heartbeat(ctx)
			}
		}
		wait := time.Duration(0)
		if r.client.Load() == nil {
			wait = reconnectEvery
		}
		var retry <-chan time.Time
		if wait > 0 {
			retry = time.After(wait)
		}
		select {
		case <-ctx.Done():
			if c := r.client.Swap(nil); c != nil {
				// Leave the count: the others' fallback share grows at once.
				cctx, cancel := context.WithTimeout(context.Background(), r.o.Timeout*4)
				_ = (*c).Do(cctx, (*c).B().Zrem().Key(r.replicasKey()).Member(r.id).Build()).Error()
				cancel()
				(*c).Close()
			}
			return
		case <-r.kick:
			fresh = true
			// A burst of READONLY answers asks once; new clients at most
			// every reconnectEvery.
			select {
			case <-time.After(reconnectEvery):
			case <-ctx.Done():
			}
			continue
		case <-retry:
		case <-heartbeat.C:
			r.heartbeat(ctx)
		}
		fresh = false
	}
}

// connect makes a new client and swaps it in; the old one's connections
// are closed (after a failover they lead to a replica).
func (r *Redis) connect(ctx context.Context) bool {
	opt := r.o.Client
	c, err := rueidis.NewClient(opt)
	if err != nil {
		r.m.BackendErrors.Inc()
		r.lastError.Store(reasonOf(err))
		return false
	}
	// Load the script on every node now, so requests run it by SHA; a node
	// that lost it (restart, SCRIPT FLUSH) gets it again on NOSCRIPT.
	for _, n := range c.Nodes() {
		lctx, cancel := context.WithTimeout(ctx, 10*r.o.Timeout)
		_ = n.Do(lctx, n.B().ScriptLoad().Script(GCRAScript).Build()).Error()
		cancel()
	}
	r.suspect.Store(true) // its first calls may dial
	if old := r.client.Swap(&c); old != nil {
		(*old).Close()
	}
	return true
}

func (r *Redis) heartbeat(ctx context.Context) {
	c := r.client.Load()
	if c == nil {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, 10*r.o.Timeout)
	defer cancel()
	n, err := heartbit.Exec(hctx, *c, []string{r.replicasKey()},
		[]string{r.id, strconv.FormatInt(heartbeatWindow.Microseconds(), 10)}).AsInt64()
	if err != nil {
		r.m.BackendErrors.Inc()
		if isReadOnly(err) {
			r.reconnect()
		}
		return
	}
	r.replicas.Store(max(n, 1))
}

func (r *Redis) replicasKey() string { return r.o.Prefix + "{replicas}" }

// Close stops the background loop and closes the connections.
func (r *Redis) Close() {
	r.stop()
	<-r.done
}

// Status is the limiter's part of /health/concurrency: status words and
// counts, no addresses.
func (r *Redis) Status() map[string]any {
	st := map[string]any{
		"backend": "redis", "status": "ok", "failure_mode": string(r.o.FailureMode),
		"breaker": r.br.State(), "replicas": r.replicaCount(), "over_limit_cached": r.over.len(),
		"timeout": r.o.Timeout.String(),
	}
	if r.o.Replicas == 0 {
		st["replicas_from"] = "heartbeats"
	}
	if r.client.Load() == nil {
		st["status"] = "connecting"
	}
	if r.fallback.Load() {
		st["status"] = "fallback"
		st["fallback_since"] = time.Unix(0, r.fallbackSince.Load()).UTC().Format(time.RFC3339)
		st["fallback_keys"] = r.local.Keys()
	}
	if e, _ := r.lastError.Load().(string); e != "" {
		st["last_error"] = e
	}
	return st
}

// Healthy reports whether decisions are made in Redis now.
func (r *Redis) Healthy() bool { return !r.fallback.Load() && r.client.Load() != nil }

func isReadOnly(err error) bool {
	var re *rueidis.RedisError
	if errors.As(err, &re) {
		return strings.HasPrefix(re.Error(), "READONLY") || strings.HasPrefix(re.Error(), "MASTERDOWN")
	}
	return strings.Contains(err.Error(), "READONLY")
}

// reasonOf names a failure in a word fit for an open endpoint.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, breaker.ErrOpen):
		return "breaker open"
	case errors.Is(err, errNotConnected):
		return "not connected"
	case breaker.IsTimeout(err):
		return "timeout"
	case isReadOnly(err):
		return "read-only replica"
	}
	var re *rueidis.RedisError
	if errors.As(err, &re) {
		return "redis error"
	}
	return "connection failed"
}

// ClientOption builds the rueidis configuration from the gateway's
// settings: REDIS_URL (redis:// or rediss://, user, password and database;
// ?addr=host:port may add seed nodes, ?master_set=name selects Sentinel),
// REDIS_ADDRS (more seeds: Cluster nodes, or Sentinels with
// REDIS_MASTER_NAME), and REDIS_USERNAME / REDIS_PASSWORD, which win over
// the URL's. One address that is a Cluster node becomes a Cluster client.
// Errors never repeat the URL (it may carry a password).
func ClientOption(rawURL string, addrs []string, master, user, password string, timeout time.Duration) (rueidis.ClientOption, error) {
	var opt rueidis.ClientOption
	if rawURL != "" {
		u, err := url.Parse(rawURL)
		if err != nil {
			return opt, errors.New("not a URL")
		}
		if u.Scheme != "redis" && u.Scheme != "rediss" {
			return opt, fmt.Errorf("want a redis:// or rediss:// URL, got scheme %q", u.Scheme)
		}
		if opt, err = rueidis.ParseURL(rawURL); err != nil {
			return opt, errors.New(strings.ReplaceAll(err.Error(), rawURL, "<url>"))
		}
	}
	for _, a := range addrs {
		if a = strings.TrimSpace(a); a != "" {
			opt.InitAddress = append(opt.InitAddress, a)
		}
	}
	if len(opt.InitAddress) == 0 {
		return opt, errors.New("no Redis address")
	}
	if master != "" {
		opt.Sentinel.MasterSet = master
	}
	if user != "" {
		opt.Username = user
	}
	if password != "" {
		opt.Password = password
	}
	if opt.Sentinel.MasterSet != "" {
		// Sentinels usually share the data nodes' credentials.
		opt.Sentinel.Username, opt.Sentinel.Password = opt.Username, opt.Password
		opt.Sentinel.TLSConfig = opt.TLSConfig
	}
	// No client-side caching: every decision reads and writes one key.
	opt.DisableCache = true
	// Connecting is in the background; a write that the kernel cannot send
	// for long (a dead peer) fails the connection rather than queueing.
	opt.Dialer.Timeout = max(20*timeout, time.Second)
	opt.ConnWriteTimeout = max(40*timeout, 2*time.Second)
	opt.ClientName = "provcred-gateway"
	return opt, nil
}
