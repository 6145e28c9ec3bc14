package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/server"
	"github.com/provcred/platform/tracing"
)

// Caller is who asked the question. It travels with every tool call, so
// the services answer the model exactly what they would answer that key.
type Caller struct {
	Actor     string
	Role      string
	RequestID string
}

// Roles, weakest first, as the gateway names them (X-Actor-Role).
var roleRank = map[string]int{"reader": 1, "operator": 2, "admin": 3}

// may reports whether a caller of role may use something needing min.
func may(role, min string) bool { return roleRank[role] > 0 && roleRank[role] >= roleRank[min] }

// Upstream names (also the breaker names' suffixes: tool_<name>).
const (
	Credential = "credential"
	Stats      = "stats"
)

// maxResponseBytes bounds what is read of one service answer; what the
// model gets is bounded again, tighter, by the tool's result size.
const maxResponseBytes = 1 << 20

// ClientOptions configure a Client.
type ClientOptions struct {
	CredentialURL, StatsURL string
	// Timeout bounds one tool call.
	Timeout time.Duration
	Breaker breaker.Settings
	Metrics *metrics.Registry
	// HTTP is the transport (nil: a fresh client).
	HTTP *http.Client
	// Signer signs every call with the caller's identity, as the gateway
	// does (nil: unsigned, INTERNAL_AUTH_INSECURE_DEV).
	Signer *internalauth.Keyring
}

// Client reads the credential and stats services' HTTP APIs: GET only, on
// a fixed set of routes, each upstream behind its own breaker.
type Client struct {
	base     map[string]*url.URL
	breakers map[string]*breaker.Breaker
	http     *http.Client
	timeout  time.Duration
	signer   *internalauth.Keyring
}

// NewClient builds the client and its breakers (tool_credential, tool_stats).
func NewClient(o ClientOptions) (*Client, error) {
	c := &Client{base: map[string]*url.URL{}, breakers: map[string]*breaker.Breaker{}, http: o.HTTP, timeout: o.Timeout, signer: o.Signer}
	if c.http == nil {
		c.http = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: 30 * time.Second}}
	}
	if err := o.Breaker.Validate(); err != nil {
		return nil, fmt.Errorf("tools: %w", err)
	}
	for name, raw := range map[string]string{Credential: o.CredentialURL, Stats: o.StatsURL} {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("tools: %s URL is not a URL", name)
		}
		c.base[name] = u
		c.breakers[name] = breaker.New("tool_"+name, o.Breaker, o.Metrics)
	}
	return c, nil
}

// route is one read endpoint a tool may call, with the role the gateway
// requires for it. Paths are templates: {} is one path segment.
type route struct {
	upstream, path, role string
}

// routes is every endpoint a tool may reach; get refuses anything else,
// and anything the caller's role may not read.
var routes = map[string]route{
	"providers":      {Credential, "/providers", "reader"},
	"provider":       {Credential, "/providers/{}", "reader"},
	"results":        {Credential, "/results/{}", "reader"},
	"logs":           {Credential, "/logs/{}", "reader"},
	"stats_summary":  {Stats, "/stats/summary", "reader"},
	"stats_expiring": {Stats, "/stats/expiring", "reader"},
}

// segmentPattern is what a path segment taken from a model's arguments
// may hold: the credential service's id syntax. It cannot hold a slash, a
// percent sign or be a dot segment, so no argument can move the request to
// another route (such as /admin/imports).
var segmentPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// errRefused is a request that was not sent: not a known route, not the
// caller's role, or a segment that could escape its place in the path.
var errRefused = errors.New("refused")

// apiError is a service's 4xx answer ({"code","detail"}).
type apiError struct {
	Status       int
	Code, Detail string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d %s", e.Status, e.Code) }

// errUnavailable is a service that is down, failing (5xx) or behind an open breaker.
var errUnavailable = errors.New("service unavailable")

// get calls the named route for caller and decodes the JSON answer into out.
func (c *Client) get(ctx context.Context, caller Caller, name string, query url.Values, out any, segments ...string) error {
	rt, ok := routes[name]
	if !ok || !may(caller.Role, rt.role) {
		return errRefused
	}
	path, err := fill(rt.path, segments)
	if err != nil {
		return err
	}
	u := *c.base[rt.upstream]
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = query.Encode()
	var body []byte
	err = c.breakers[rt.upstream].Do(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		if err := c.identify(ctx, req, caller); err != nil {
			return err
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
		if err != nil {
			return err
		}
		if resp.StatusCode >= 500 {
			return &breaker.StatusError{Code: resp.StatusCode}
		}
		if resp.StatusCode != http.StatusOK {
			ae := &apiError{Status: resp.StatusCode}
			var e struct{ Code, Detail string }
			if json.Unmarshal(body, &e) == nil {
				ae.Code, ae.Detail = e.Code, e.Detail
			}
			return ae
		}
		if len(body) > maxResponseBytes {
			return fmt.Errorf("answer larger than %d bytes", maxResponseBytes)
		}
		return nil
	})
	if err != nil {
		var ae *apiError
		var se *breaker.StatusError
		switch {
		case errors.As(err, &ae), breaker.IsTimeout(err), errors.Is(err, context.Canceled):
			return err
		case errors.Is(err, breaker.ErrOpen), errors.As(err, &se):
			return fmt.Errorf("%s: %w", rt.upstream, errUnavailable)
		}
		return fmt.Errorf("%s: %w: %w", rt.upstream, errUnavailable, err)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s answered something that is not JSON: %w", rt.upstream, err)
	}
	return nil
}

// fill puts each segment, checked, into the template's {} in turn.
func fill(tmpl string, segments []string) (string, error) {
	var b strings.Builder
	for _, part := range strings.SplitAfter(tmpl, "{}") {
		if !strings.HasSuffix(part, "{}") {
			b.WriteString(part)
			continue
		}
		if len(segments) == 0 {
			return "", errRefused
		}
		seg := segments[0]
		segments = segments[1:]
		if !segmentPattern.MatchString(seg) {
			return "", errRefused
		}
		b.WriteString(strings.TrimSuffix(part, "{}"))
		b.WriteString(url.PathEscape(seg))
	}
	if len(segments) > 0 {
		return "", errRefused
	}
	return b.String(), nil
}

// identify is the one place a tool call gets the caller's identity: the
// actor and role the gateway authenticated, the request id, signed as the
// gateway signs them, and the trace.
func (c *Client) identify(ctx context.Context, req *http.Request, caller Caller) error {
	req.Header.Set("Accept", "application/json")
	tracing.Propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	id := internalauth.Identity{Actor: caller.Actor, Role: caller.Role, RequestID: caller.RequestID}
	if c.signer == nil {
		req.Header.Set(server.HeaderActor, caller.Actor)
		req.Header.Set(server.HeaderRole, caller.Role)
		if caller.RequestID != "" {
			req.Header.Set(server.HeaderRequestID, caller.RequestID)
		}
		return nil
	}
	return c.signer.SignRequest(req, id)
}
