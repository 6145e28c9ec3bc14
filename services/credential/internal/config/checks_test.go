package config

import (
	"strings"
	"testing"

	platformcfg "github.com/provcred/platform/config"
)

func TestChecksConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		env  map[string]string
		bad  string // the variable the error must name; "" when valid
	}{
		{name: "defaults", env: map[string]string{}},
		{name: "api mode", env: map[string]string{"NPPES_MODE": "api", "NPPES_API_URL": "http://registry:8080"}},
		{name: "license urls", env: map[string]string{"LICENSE_VERIFY_URLS": "ca=https://ca/verify, NY=http://ny:9000/v?x=1"}},
		{name: "bad mode", env: map[string]string{"NPPES_MODE": "live"}, bad: "NPPES_MODE"},
		{name: "bad api url", env: map[string]string{"NPPES_MODE": "api", "NPPES_API_URL": "registry"}, bad: "NPPES_API_URL"},
		{name: "bad retries", env: map[string]string{"NPPES_RETRIES": "-1"}, bad: "NPPES_RETRIES"},
		{name: "unparsable timeout", env: map[string]string{"NPPES_TIMEOUT": "soon"}, bad: "NPPES_TIMEOUT"},
		{name: "zero timeout", env: map[string]string{"SOURCE_QUERY_TIMEOUT": "0s"}, bad: "SOURCE_QUERY_TIMEOUT"},
		{name: "license pair without state", env: map[string]string{"LICENSE_VERIFY_URLS": "https://ca/verify"}, bad: "LICENSE_VERIFY_URLS"},
		{name: "license state twice", env: map[string]string{"LICENSE_VERIFY_URLS": "CA=http://a,ca=http://b"}, bad: "LICENSE_VERIFY_URLS"},
		{name: "license url not http", env: map[string]string{"LICENSE_VERIFY_URLS": "CA=ftp://a"}, bad: "LICENSE_VERIFY_URLS"},
		{name: "bad url with a password", env: map[string]string{"LICENSE_VERIFY_URLS": "CA=ftp://u:s3cret@a/x"}, bad: "LICENSE_VERIFY_URLS"},
		{name: "pair with a password but no state", env: map[string]string{"LICENSE_VERIFY_URLS": "https://u:s3cret@ca/verify"}, bad: "LICENSE_VERIFY_URLS"},
		{name: "bad api url with a password", env: map[string]string{"NPPES_MODE": "api", "NPPES_API_URL": "registry://u:s3cret@"}, bad: "NPPES_API_URL"},
		{name: "status words", env: map[string]string{"LICENSE_STATUS_WORDS": "Retired=expired,Pending Review=suspended"}},
		{name: "status word of no class", env: map[string]string{"LICENSE_STATUS_WORDS": "Retired=gone"}, bad: "LICENSE_STATUS_WORDS"},
		{name: "status word without class", env: map[string]string{"LICENSE_STATUS_WORDS": "Retired"}, bad: "LICENSE_STATUS_WORDS"},
		{name: "zero concurrency", env: map[string]string{"CHECK_CONCURRENCY": "0"}, bad: "CHECK_CONCURRENCY"},
		{name: "no nppes cache", env: map[string]string{"NPPES_CACHE_TTL": "0s", "NPPES_BACKOFF": "0s"}},
		{name: "negative nppes cache ttl", env: map[string]string{"NPPES_CACHE_TTL": "-1s"}, bad: "NPPES_CACHE_TTL"},
		{name: "zero nppes cache size", env: map[string]string{"NPPES_CACHE_SIZE": "0"}, bad: "NPPES_CACHE_SIZE"},
		{name: "zero nppes max wait", env: map[string]string{"NPPES_MAX_WAIT": "0s"}, bad: "NPPES_MAX_WAIT"},
		{name: "negative nppes backoff", env: map[string]string{"NPPES_BACKOFF": "-1ms"}, bad: "NPPES_BACKOFF"},
		{name: "zero breaker failures", env: map[string]string{"BREAKER_CONSECUTIVE_FAILURES": "0"}, bad: "BREAKER_CONSECUTIVE_FAILURES"},
	} {
		cfg, err := platformcfg.Parse[Config](c.env)
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("%s: error %v does not name %s", c.name, err, c.bad)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error shows the URL's password: %v", c.name, err)
		}
		if c.name == "license urls" && err == nil {
			eps, _ := cfg.LicenseEndpoints()
			if len(eps) != 2 || eps["CA"] != "https://ca/verify" || eps["NY"] != "http://ny:9000/v?x=1" {
				t.Errorf("endpoints = %v", eps)
			}
		}
		if c.name == "defaults" && (cfg.NPPESMode != "table" || cfg.CheckConcurrency != 32) {
			t.Errorf("defaults = %+v", cfg.Checks)
		}
	}
}
