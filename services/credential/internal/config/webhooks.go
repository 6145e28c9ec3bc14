package config

import (
	"fmt"
	"net/url"
	"time"

	"github.com/provcred/platform/config"
)

// Webhooks configures events, their webhook deliveries (River queue
// `webhooks`) and the daily expirables job (queue `credential_maintenance`).
type Webhooks struct {
	// WebhookAllowPrivate lets deliveries reach private, loopback and
	// link-local addresses (tests, or receivers inside the cluster). Off, a
	// delivery's connection is refused after DNS resolution, at connect time.
	WebhookAllowPrivate bool `env:"WEBHOOK_ALLOW_PRIVATE" envDefault:"false"`
	// WebhookTimeout bounds one delivery attempt: connect, send, response.
	WebhookTimeout time.Duration `env:"WEBHOOK_TIMEOUT" envDefault:"15s" min:">0" max:"5m"`
	// WebhookRetryBase is the first retry's delay; it doubles per attempt
	// (with jitter: each delay is drawn from its upper half).
	WebhookRetryBase time.Duration `env:"WEBHOOK_RETRY_BASE" envDefault:"30s" min:">0"`
	// WebhookRetryMaxDelay caps one retry's delay.
	WebhookRetryMaxDelay time.Duration `env:"WEBHOOK_RETRY_MAX_DELAY" envDefault:"3h" min:">0"`
	// WebhookRetryFor is the least time a failing delivery keeps being
	// retried: River's attempt count is set so the shortest jittered
	// schedule spans it.
	WebhookRetryFor time.Duration `env:"WEBHOOK_RETRY_FOR" envDefault:"24h" min:">0"`
	// WebhookDisableAfter disables an endpoint that has failed every
	// attempt for this long (its pending deliveries are canceled and a
	// webhook.disabled event is raised).
	WebhookDisableAfter time.Duration `env:"WEBHOOK_DISABLE_AFTER" envDefault:"120h" min:">0"`
	// WebhookMaxConcurrent is River's MaxWorkers for deliveries per replica.
	WebhookMaxConcurrent int `env:"WEBHOOK_MAX_CONCURRENT" envDefault:"20" min:"1" max:"1000"`
	// WebhookRelayInterval is how often the relay looks for new events.
	WebhookRelayInterval time.Duration `env:"WEBHOOK_RELAY_INTERVAL" envDefault:"1s" min:">0"`
	// EventLinkBaseURL makes events' links absolute (the public gateway
	// URL); empty keeps them as API paths.
	EventLinkBaseURL string `env:"EVENT_LINK_BASE_URL"`
	// EventRetention is how long events (and their deliveries) are kept;
	// the daily job removes older ones.
	EventRetention time.Duration `env:"EVENT_RETENTION" envDefault:"2160h" min:">0"`

	// ExpirablesRunAt is the UTC time of day (HH:MM) the daily job runs.
	ExpirablesRunAt string `env:"EXPIRABLES_RUN_AT" envDefault:"06:00"`
	// LicenseExpiryWindows are the days before a license's or board
	// certification's expiry that raise license.expiring; 0 raises
	// license.expired once it has expired.
	LicenseExpiryWindows []int `env:"LICENSE_EXPIRY_WINDOWS" envDefault:"90,60,30,14,7,0" envSeparator:","`
	// RecredentialWindows are the days before recredentialing falls due
	// (36 months after approval) that raise recredentialing.due; 0 raises it
	// on the due date (there is no grace period).
	RecredentialWindows []int `env:"RECREDENTIAL_WINDOWS" envDefault:"120,90,30,0" envSeparator:","`
	// VerificationMaxAge: a provider's last verification older than this
	// makes its decision stale — the providers API's verification_stale and
	// the verification.stale event read this one setting (NCQA's 2025 limit
	// for accreditation: 120 days; 90 for a CVO). The stats service has its
	// own setting of the same name and default for its reports.
	VerificationMaxAge time.Duration `env:"VERIFICATION_MAX_AGE" envDefault:"2880h" min:">0"`
}

// Validate checks the webhook and expirables settings; errors name the variable.
func (w Webhooks) Validate() error {
	if err := config.Bounds(w); err != nil {
		return err
	}
	if w.WebhookRetryMaxDelay < w.WebhookRetryBase {
		return fmt.Errorf("WEBHOOK_RETRY_MAX_DELAY: must be at least WEBHOOK_RETRY_BASE (%s), got %s", w.WebhookRetryBase, w.WebhookRetryMaxDelay)
	}
	if n := w.MaxAttempts(); n > 10000 {
		return fmt.Errorf("WEBHOOK_RETRY_FOR: %s needs %d attempts at WEBHOOK_RETRY_MAX_DELAY %s; raise the delay or shorten the time",
			w.WebhookRetryFor, n, w.WebhookRetryMaxDelay)
	}
	if w.EventLinkBaseURL != "" {
		u, err := url.Parse(w.EventLinkBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return fmt.Errorf("EVENT_LINK_BASE_URL: must be an http(s) URL without credentials, got %q", redact(w.EventLinkBaseURL))
		}
	}
	if _, err := w.RunAt(); err != nil {
		return err
	}
	if err := windows("LICENSE_EXPIRY_WINDOWS", w.LicenseExpiryWindows); err != nil {
		return err
	}
	return windows("RECREDENTIAL_WINDOWS", w.RecredentialWindows)
}

func windows(name string, ws []int) error {
	if len(ws) == 0 {
		return fmt.Errorf("%s: must list at least one number of days", name)
	}
	seen := map[int]bool{}
	for _, d := range ws {
		if d < 0 || d > 3650 {
			return fmt.Errorf("%s: days must be from 0 to 3650, got %d", name, d)
		}
		if seen[d] {
			return fmt.Errorf("%s: %d is listed twice", name, d)
		}
		seen[d] = true
	}
	return nil
}

// DeliveryJobTimeout bounds one delivery job: the attempt and the writes
// that record it (milliseconds, given a fifth of the attempt's time and a second).
func (w Webhooks) DeliveryJobTimeout() time.Duration {
	return w.WebhookTimeout + w.WebhookTimeout/5 + time.Second
}

// RunAt is EXPIRABLES_RUN_AT as an offset from UTC midnight.
func (w Webhooks) RunAt() (time.Duration, error) {
	t, err := time.Parse("15:04", w.ExpirablesRunAt)
	if err != nil {
		return 0, fmt.Errorf("EXPIRABLES_RUN_AT: must be a UTC time of day as HH:MM, got %q", w.ExpirablesRunAt)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// RetryDelay is the delay before retry n (n >= 1 is the attempt that
// failed) for a jitter fraction j in [0, 1): the upper half of
// base·2^(n-1), capped at WEBHOOK_RETRY_MAX_DELAY. Full-range jitter could
// retry at once; the upper half keeps the backoff and still spreads a
// recovering receiver's load.
func (w Webhooks) RetryDelay(n int, j float64) time.Duration {
	d := w.WebhookRetryBase
	for i := 1; i < n && d < w.WebhookRetryMaxDelay; i++ {
		d *= 2
	}
	d = min(d, w.WebhookRetryMaxDelay)
	return d/2 + time.Duration(float64(d/2)*j)
}

// MaxAttempts is River's max_attempts for a delivery: enough attempts that
// even the shortest jittered schedule (every delay at its floor) retries
// for WEBHOOK_RETRY_FOR.
func (w Webhooks) MaxAttempts() int {
	var total time.Duration
	n := 1
	for total < w.WebhookRetryFor && n <= 10000 {
		total += w.RetryDelay(n, 0)
		n++
	}
	return n
}
