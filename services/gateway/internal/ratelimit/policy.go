package ratelimit

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Policy is a rate: Rate requests per Period, with bursts up to Burst.
//
// A fresh client may send Burst requests at once, never more; after that
// one request passes per T = Period/Rate. Each request may come up to T/2
// before its turn (the cell delay variation tolerance of ATM's GCRA), so a
// client whose requests arrive with some jitter is not robbed of a turn
// each time one comes a little early: over any span e from a fresh start a
// client gets Burst + Rate×e/Period requests, rounded to the nearest whole
// request, and never more. Without that tolerance, a client with burst 1
// sending at twice its rate got about 75% of its rate (a turn is lost
// whenever the request on the turn comes a microsecond early).
//
// In GCRA terms: emission interval T, and a request is allowed when its
// new theoretical arrival time max(TAT, now)+T is at most τ = (Burst+½)×T
// ahead of now.
type Policy struct {
	// Name is the route group (default, chat, batch, credential, import):
	// part of the key and of the RateLimit headers.
	Name   string
	Rate   int
	Period time.Duration
	Burst  int
}

// interval is the emission interval T: the steady-state time between requests.
func (p Policy) interval() time.Duration { return p.Period / time.Duration(p.Rate) }

// tau is the tolerance: how far ahead of now a client's new theoretical
// arrival time may run (Burst intervals, and half of one for jitter).
func (p Policy) tau() time.Duration {
	return p.interval()*time.Duration(p.Burst) + p.interval()/2
}

// Valid reports whether the policy can be applied.
func (p Policy) Valid() error {
	switch {
	case p.Rate < 1:
		return fmt.Errorf("rate must be at least 1, got %d", p.Rate)
	case p.Period < time.Millisecond:
		return fmt.Errorf("period must be at least 1ms, got %s", p.Period)
	case p.Period/time.Duration(p.Rate) < time.Microsecond:
		return fmt.Errorf("rate %d per %s is more than one request per microsecond", p.Rate, p.Period)
	case p.Burst < 1:
		return fmt.Errorf("burst must be at least 1, got %d", p.Burst)
	}
	return nil
}

// String is the policy in the form ParsePolicy reads.
func (p Policy) String() string {
	return fmt.Sprintf("%d/%s,burst=%d", p.Rate, p.Period, p.Burst)
}

// HeaderPolicy is the RateLimit-Policy header value (draft-ietf-httpapi-ratelimit-headers-09:
// a named policy with quota q over window w seconds).
func (p Policy) HeaderPolicy() string {
	return `"` + p.Name + `";q=` + strconv.Itoa(p.Rate) + ";w=" + strconv.Itoa(int(math.Ceil(p.Period.Seconds())))
}

// Header is the RateLimit header value for d under p: remaining quota r
// and seconds t until it is whole again.
func (p Policy) Header(d Decision) string {
	return `"` + p.Name + `";r=` + strconv.Itoa(d.Remaining) + ";t=" + strconv.Itoa(ceilSeconds(d.ResetAfter))
}

// Shared returns the share of p that one of n replicas enforces on its own
// while Redis is unavailable: the rate divided by n (as the same rate over n
// periods, so nothing is rounded away) and the burst divided by n, rounded
// up. n replicas together then admit about what p admits.
func (p Policy) Shared(n int) Policy {
	if n <= 1 {
		return p
	}
	p.Period *= time.Duration(n)
	p.Burst = max(1, (p.Burst+n-1)/n)
	return p
}

// ParsePolicy reads "RATE/PERIOD" or "RATE/PERIOD,burst=N", e.g.
// "20/1m,burst=5" (period a Go duration; a bare unit means one of it:
// "20/m", "1000/h"). Without burst, the burst is the rate.
func ParsePolicy(name, s string) (Policy, error) {
	p := Policy{Name: name}
	spec, opts, _ := strings.Cut(strings.TrimSpace(s), ",")
	rate, period, ok := strings.Cut(spec, "/")
	if !ok {
		return p, fmt.Errorf("want RATE/PERIOD[,burst=N], got %q", s)
	}
	var err error
	if p.Rate, err = strconv.Atoi(strings.TrimSpace(rate)); err != nil {
		return p, fmt.Errorf("rate %q is not a whole number", rate)
	}
	period = strings.TrimSpace(period)
	if period != "" && strings.IndexAny(period[:1], "0123456789") < 0 {
		period = "1" + period
	}
	if p.Period, err = time.ParseDuration(period); err != nil {
		return p, fmt.Errorf("period %q is not a duration (e.g. 1s, 1m, 1h)", period)
	}
	p.Burst = p.Rate
	for _, o := range strings.Split(opts, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		k, v, _ := strings.Cut(o, "=")
		if strings.TrimSpace(k) != "burst" {
			return p, fmt.Errorf("unknown option %q (only burst=N)", o)
		}
		if p.Burst, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
			return p, fmt.Errorf("burst %q is not a whole number", v)
		}
	}
	return p, p.Valid()
}
