package config

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	platformcfg "github.com/provcred/platform/config"
)

func TestWebhookSettings(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string // variable named in the error; "" = valid
	}{
		{nil, ""},
		{map[string]string{"WEBHOOK_TIMEOUT": "0s"}, "WEBHOOK_TIMEOUT"},
		{map[string]string{"WEBHOOK_TIMEOUT": "10m"}, "WEBHOOK_TIMEOUT"},
		{map[string]string{"WEBHOOK_TIMEOUT": "9m", "BATCH_RESCUE_STUCK_AFTER": "10m"}, "WEBHOOK_TIMEOUT"},
		{map[string]string{"WEBHOOK_TIMEOUT": "1m", "BATCH_RESCUE_STUCK_AFTER": "70s", "BATCH_JOB_TIMEOUT": "1m"}, "BATCH_RESCUE_STUCK_AFTER"},
		{map[string]string{"WEBHOOK_RETRY_BASE": "1m", "WEBHOOK_RETRY_MAX_DELAY": "30s"}, "WEBHOOK_RETRY_MAX_DELAY"},
		{map[string]string{"WEBHOOK_RETRY_BASE": "1ms", "WEBHOOK_RETRY_MAX_DELAY": "1ms"}, "WEBHOOK_RETRY_FOR"},
		{map[string]string{"WEBHOOK_MAX_CONCURRENT": "0"}, "WEBHOOK_MAX_CONCURRENT"},
		{map[string]string{"WEBHOOK_DISABLE_AFTER": "-1h"}, "WEBHOOK_DISABLE_AFTER"},
		{map[string]string{"WEBHOOK_ALLOW_PRIVATE": "maybe"}, "WEBHOOK_ALLOW_PRIVATE"},
		{map[string]string{"EVENT_LINK_BASE_URL": "ftp://x"}, "EVENT_LINK_BASE_URL"},
		{map[string]string{"EVENT_LINK_BASE_URL": "https://u:secret@api.example.com"}, "EVENT_LINK_BASE_URL"},
		{map[string]string{"EVENT_LINK_BASE_URL": "https://api.example.com"}, ""},
		{map[string]string{"EXPIRABLES_RUN_AT": "25:00"}, "EXPIRABLES_RUN_AT"},
		{map[string]string{"EXPIRABLES_RUN_AT": "6am"}, "EXPIRABLES_RUN_AT"},
		{map[string]string{"LICENSE_EXPIRY_WINDOWS": "30,30"}, "LICENSE_EXPIRY_WINDOWS"},
		{map[string]string{"LICENSE_EXPIRY_WINDOWS": "-1"}, "LICENSE_EXPIRY_WINDOWS"},
		{map[string]string{"LICENSE_EXPIRY_WINDOWS": "thirty"}, "LICENSE_EXPIRY_WINDOWS"},
		{map[string]string{"RECREDENTIAL_WINDOWS": "5000"}, "RECREDENTIAL_WINDOWS"},
		{map[string]string{"VERIFICATION_MAX_AGE": "0s"}, "VERIFICATION_MAX_AGE"},
	}
	for _, tc := range cases {
		_, err := platformcfg.Parse[Config](tc.env)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: unexpected error %v", tc.env, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%v: the error shows a password: %v", tc.env, err)
		}
	}
}

func TestWebhookDefaults(t *testing.T) {
	c, err := platformcfg.Parse[Config](nil)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Webhooks
	if w.WebhookTimeout != 15*time.Second || w.WebhookAllowPrivate || w.VerificationMaxAge != 120*24*time.Hour {
		t.Errorf("defaults: %+v", w)
	}
	if got := sortedDesc(w.LicenseExpiryWindows); got != "90,60,30,14,7,0" {
		t.Errorf("license windows %s", got)
	}
	if got := sortedDesc(w.RecredentialWindows); got != "120,90,30,0" {
		t.Errorf("recredential windows %s", got)
	}
	for _, k := range []string{"webhook_timeout", "webhook_allow_private", "webhook_max_attempts", "license_expiry_windows",
		"verification_max_age", "expirables_run_at"} {
		if _, ok := c.Public()[k]; !ok {
			t.Errorf("/health/concurrency config lacks %s", k)
		}
	}
}

// The retry schedule: exponential, jittered within the upper half of each
// step, capped; and River's attempt count spans at least WEBHOOK_RETRY_FOR
// even if every draw is the smallest.
func TestRetrySchedule(t *testing.T) {
	c, err := platformcfg.Parse[Config](nil)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Webhooks
	tests := []struct {
		n    int
		j    float64
		want time.Duration
	}{
		{1, 0, 15 * time.Second}, {1, 0.999999, 30 * time.Second}, {2, 0, 30 * time.Second}, {3, 0.5, 90 * time.Second},
		{20, 0, 90 * time.Minute}, {20, 0.999999, 3 * time.Hour},
	}
	for _, tc := range tests {
		if got := w.RetryDelay(tc.n, tc.j); got.Round(time.Second) != tc.want {
			t.Errorf("RetryDelay(%d, %v) = %s, want %s", tc.n, tc.j, got, tc.want)
		}
	}
	n := w.MaxAttempts()
	var least, most time.Duration
	for i := 1; i < n; i++ {
		least += w.RetryDelay(i, 0)
		most += w.RetryDelay(i, 0.999999)
	}
	if least < 24*time.Hour {
		t.Errorf("%d attempts retry for at least %s, want 24h", n, least)
	}
	if least-w.RetryDelay(n-1, 0) >= 24*time.Hour {
		t.Errorf("%d attempts are more than needed", n)
	}
	t.Logf("default schedule: %d attempts over %s to %s", n, least.Round(time.Minute), most.Round(time.Minute))
}

func sortedDesc(ws []int) string {
	s := slices.Clone(ws)
	slices.Sort(s)
	slices.Reverse(s)
	out := ""
	for i, d := range s {
		if i > 0 {
			out += ","
		}
		out += strconv.Itoa(d)
	}
	return out
}
