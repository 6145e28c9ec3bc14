package config

import (
	"strings"
	"testing"
	"time"
)

type svcConfig struct {
	Base
	MaxLLM int `env:"MAX_CONCURRENT_LLM_REQUESTS" envDefault:"5"`
}

func (c svcConfig) Validate() error {
	if err := c.Base.Validate(); err != nil {
		return err
	}
	if c.MaxLLM < 1 {
		return errorf("MAX_CONCURRENT_LLM_REQUESTS: must be at least 1")
	}
	return nil
}

type errorf string

func (e errorf) Error() string { return string(e) }

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c svcConfig)
	}{
		{name: "defaults", env: map[string]string{}, check: func(t *testing.T, c svcConfig) {
			// Loopback: outside Kubernetes only the gateway beside it reaches a service.
			if c.HTTPAddr != "127.0.0.1:8080" || c.MaxLLM != 5 || c.ShutdownTimeout != 20*time.Second ||
				c.InternalAuthMaxSkew != 30*time.Second || c.InternalAuthInsecureDev || c.InternalAuthKeys != "" {
				t.Fatalf("unexpected defaults: %+v", c)
			}
		}},
		{name: "override", env: map[string]string{"HTTP_ADDR": ":9", "MAX_CONCURRENT_LLM_REQUESTS": "7"}, check: func(t *testing.T, c svcConfig) {
			if c.HTTPAddr != ":9" || c.MaxLLM != 7 {
				t.Fatalf("override not applied: %+v", c)
			}
		}},
		{name: "internal keys", env: map[string]string{"INTERNAL_AUTH_KEYS": "k1:0123456789abcdef0123456789abcdef", "INTERNAL_AUTH_MAX_SKEW": "10s"},
			check: func(t *testing.T, c svcConfig) {
				if s := c.InternalAuth(); s.MaxSkew != 10*time.Second || s.Keys == "" {
					t.Fatalf("internal auth settings: %+v", s.MaxSkew)
				}
				pub := Public(c)
				if _, shown := pub["internal_auth_keys"]; shown || pub["internal_auth_max_skew"] != "10s" {
					t.Fatalf("public view: %v", pub)
				}
			}},
		{name: "internal key too short", env: map[string]string{"INTERNAL_AUTH_KEYS": "k1:short"}, wantErr: "INTERNAL_AUTH_KEYS"},
		{name: "internal keys twice", env: map[string]string{"INTERNAL_AUTH_KEYS": "k1:0123456789abcdef0123456789abcdef", "INTERNAL_AUTH_KEYS_FILE": "/x"}, wantErr: "INTERNAL_AUTH_KEYS_FILE"},
		{name: "internal skew too long", env: map[string]string{"INTERNAL_AUTH_MAX_SKEW": "1h"}, wantErr: "INTERNAL_AUTH_MAX_SKEW"},
		{name: "not a number", env: map[string]string{"MAX_CONCURRENT_LLM_REQUESTS": "five"}, wantErr: "MAX_CONCURRENT_LLM_REQUESTS"},
		{name: "bad duration", env: map[string]string{"SHUTDOWN_TIMEOUT": "soon"}, wantErr: "SHUTDOWN_TIMEOUT"},
		{name: "negative duration", env: map[string]string{"REQUEST_TIMEOUT": "-1s"}, wantErr: "REQUEST_TIMEOUT"},
		{name: "bad log level", env: map[string]string{"LOG_LEVEL": "loud"}, wantErr: "LOG_LEVEL"},
		{name: "custom validation", env: map[string]string{"MAX_CONCURRENT_LLM_REQUESTS": "0"}, wantErr: "MAX_CONCURRENT_LLM_REQUESTS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse[svcConfig](tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want error naming %s, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// The public view is the struct: every variable but the secret ones.
func TestPublic(t *testing.T) {
	t.Parallel()
	type Nested struct {
		Windows []int         `env:"WINDOWS" envDefault:"90,30,0"`
		Wait    time.Duration `env:"WAIT" envDefault:"1m30s"`
	}
	type cfg struct {
		Base
		Database
		Nested
		Key    string   `env:"THE_KEY" secret:"true" envDefault:"pc_secret"`
		Parsed []string `env:"-"`
		Name   string   `env:"NAME" envDefault:"x"`
	}
	c, err := Parse[cfg](map[string]string{"INTERNAL_AUTH_KEYS": "k1:0123456789abcdef0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	got := Public(c)
	for k, want := range map[string]any{"windows": "90,30,0", "wait": "1m30s", "name": "x", "log_level": "info",
		"request_timeout": "30s", "read_timeout": "1m0s", "database_max_conns": int32(0), "max_concurrent_file_operations": 50} {
		if got[k] != want {
			t.Errorf("%s = %#v, want %#v", k, got[k], want)
		}
	}
	for _, k := range []string{"the_key", "database_url", "parsed", "-", "internal_auth_keys"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s is shown", k)
		}
	}
	// 13, internal_auth_{keys_file,max_skew,insecure_dev} and read_timeout.
	if len(got) != 17 {
		t.Errorf("%d keys: %v", len(got), got)
	}
}
