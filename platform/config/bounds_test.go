package config

import (
	"strings"
	"testing"
	"time"
)

type bounded struct {
	Workers int           `env:"WORKERS" min:"1" max:"100"`
	Size    uint32        `env:"SIZE" min:"1024"`
	Retries int           `env:"RETRIES" max:"10"`
	Backoff time.Duration `env:"BACKOFF" min:"0"`
	Timeout time.Duration `env:"TIMEOUT" min:">0" max:"5m"`
	Free    int           `env:"FREE"`
	Nested  struct {
		Deep int `env:"DEEP" min:"1"` // its own Validate checks it, not the parent's Bounds
	}
}

func TestBounds(t *testing.T) {
	t.Parallel()
	ok := bounded{Workers: 1, Size: 1024, Retries: 10, Backoff: 0, Timeout: 5 * time.Minute, Free: -5}
	for _, c := range []struct {
		name   string
		change func(*bounded)
		want   string // "" for valid
	}{
		{"at every bound", func(*bounded) {}, ""},
		{"below min", func(b *bounded) { b.Workers = 0 }, "WORKERS: must be from 1 to 100, got 0"},
		{"above max", func(b *bounded) { b.Workers = 101 }, "WORKERS: must be from 1 to 100, got 101"},
		{"unsigned below min", func(b *bounded) { b.Size = 1023 }, "SIZE: must be at least 1024, got 1023"},
		{"max only", func(b *bounded) { b.Retries = 11 }, "RETRIES: must be at most 10, got 11"},
		{"negative duration", func(b *bounded) { b.Backoff = -time.Second }, "BACKOFF: must not be negative, got -1s"},
		{"zero where positive", func(b *bounded) { b.Timeout = 0 }, "TIMEOUT: must be a positive duration, got 0s"},
		{"duration above max", func(b *bounded) { b.Timeout = 6 * time.Minute }, "TIMEOUT: must be at most 5m, got 6m0s"},
		{"nested struct left to its own Validate", func(b *bounded) { b.Nested.Deep = 0 }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := ok
			c.change(&b)
			err := Bounds(b)
			if c.want == "" {
				if err != nil {
					t.Fatalf("Bounds = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != c.want {
				t.Fatalf("Bounds = %v, want %q", err, c.want)
			}
		})
	}
}

// A tag that does not parse is the programmer's mistake, caught by the
// first test that parses the settings.
func TestBoundsBadTagPanics(t *testing.T) {
	t.Parallel()
	for name, v := range map[string]any{
		"duration min": struct {
			D time.Duration `env:"D" min:"1s"`
		}{},
		"integer bound": struct {
			N int `env:"N" min:"one"`
		}{},
		"string field": struct {
			S string `env:"S" min:"1"`
		}{},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), "config:") {
					t.Fatalf("recover() = %v, want a config panic", r)
				}
			}()
			_ = Bounds(v)
		})
	}
}

// Every service's settings parse with their tag defaults inside their tag
// bounds: a default outside its own bound would stop the service at start.
func TestBaseDefaultsWithinBounds(t *testing.T) {
	t.Parallel()
	type both struct {
		Base
		Database
	}
	c, err := Parse[both](map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Base.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := c.Database.Validate(); err != nil {
		t.Fatal(err)
	}
}
