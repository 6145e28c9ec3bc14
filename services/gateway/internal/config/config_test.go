package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provcred/platform/config"

	"github.com/provcred/gateway/internal/auth"
)

// withKey is env plus one API key: a gateway without keys does not start.
func withKey(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	_, entry, err := auth.Generate("k", auth.RoleReader)
	if err != nil {
		t.Fatal(err)
	}
	env["API_KEYS"] = entry
	return env
}

func TestDefaults(t *testing.T) {
	c, err := config.Parse[Config](withKey(t, map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8000" || c.CredentialURL != "http://127.0.0.1:8001" || c.StatsURL != "http://127.0.0.1:8002" ||
		c.ChatURL != "http://127.0.0.1:8003" || c.MaxConcurrentConnections != 1000 || c.RateLimitRequestsPerMinute != 200 ||
		c.RateLimitBurst != 200 || c.ImportTimeout != 30*time.Minute || c.UpstreamTimeout != 30*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	if c.Timeout("stats") != 30*time.Second {
		t.Fatal("stats timeout should default to UPSTREAM_TIMEOUT")
	}
}

func TestOverrides(t *testing.T) {
	_, entry, _ := auth.Generate("a", auth.RoleAdmin)
	_, entry2, _ := auth.Generate("b", auth.RoleReader)
	file := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(file, []byte("# ops\n"+entry2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse[Config](map[string]string{
		"HTTP_ADDR": "127.0.0.1:9000", "UPSTREAM_TIMEOUT": "5s", "CHAT_TIMEOUT": "2m", "RATE_LIMIT_BURST": "10",
		"TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1", "API_KEYS": entry, "API_KEYS_FILE": file,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout("chat") != 2*time.Minute || c.Timeout("credential") != 5*time.Second || c.RateLimitBurst != 10 {
		t.Fatalf("timeouts/burst: %+v", c)
	}
	if len(c.Proxies) != 2 || c.Proxies[1].String() != "192.168.1.1/32" {
		t.Fatalf("proxies %v", c.Proxies)
	}
	if len(c.Keys) != 2 || c.Keys[0].ID != "a" || c.Keys[1].ID != "b" {
		t.Fatalf("keys %+v", c.Keys)
	}
	pub := c.Public()
	for _, v := range pub {
		if s, ok := v.(string); ok && strings.Contains(entry, s) && len(s) > 10 {
			t.Fatalf("public config leaks a key: %v", pub)
		}
	}
}

func TestInvalid(t *testing.T) {
	_, entry, _ := auth.Generate("a", auth.RoleAdmin)
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CREDENTIAL_URL": "ftp://x"}, "CREDENTIAL_URL"},
		{map[string]string{"STATS_URL": "http://"}, "STATS_URL"},
		{map[string]string{"CHAT_URL": "::"}, "CHAT_URL"},
		{map[string]string{"UPSTREAM_TIMEOUT": "0s"}, "UPSTREAM_TIMEOUT"},
		{map[string]string{"UPSTREAM_TIMEOUT": "soon"}, "UPSTREAM_TIMEOUT"},
		{map[string]string{"STATS_TIMEOUT": "-1s"}, "STATS_TIMEOUT"},
		{map[string]string{"IMPORT_TIMEOUT": "0s"}, "IMPORT_TIMEOUT"},
		{map[string]string{"MAX_CONCURRENT_CONNECTIONS": "0"}, "MAX_CONCURRENT_CONNECTIONS"},
		{map[string]string{"MAX_CONNS_PER_IP": "-1"}, "MAX_CONNS_PER_IP"},
		{map[string]string{"RATE_LIMIT_REQUESTS_PER_MINUTE": "0"}, "RATE_LIMIT_REQUESTS_PER_MINUTE"},
		{map[string]string{"RATE_LIMIT_BURST": "-2"}, "RATE_LIMIT_BURST"},
		{map[string]string{"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"},
		{map[string]string{"TRUSTED_PROXIES": "proxy.local"}, "TRUSTED_PROXIES"},
		{map[string]string{"API_KEYS": "a:god:" + strings.Repeat("0", 64)}, "API_KEYS"},
		{map[string]string{"API_KEYS_FILE": "/nonexistent/keys"}, "API_KEYS_FILE"},
		{map[string]string{"API_KEYS": entry + "," + entry}, "API_KEYS"},
		{map[string]string{"BREAKER_FAILURES": "0"}, "BREAKER_FAILURES"},
		{map[string]string{"BREAKER_OPEN_TIMEOUT": "0s"}, "BREAKER_OPEN_TIMEOUT"},
		{map[string]string{"HTTP_ADDR": "8000"}, "HTTP_ADDR"},
		{map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		// Every request would be 401 (it once started for `gateway --help`).
		{map[string]string{}, "no API keys"},
		{map[string]string{"API_KEYS": " , "}, "no API keys"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := config.Parse[Config](tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}
