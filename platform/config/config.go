// Package config parses a service's settings from environment variables,
// once, into a typed struct. A bad value stops start-up with one message
// that names the variable.
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/provcred/platform/internalauth"
)

// Base holds the settings every service shares. Services embed it.
type Base struct {
	// HTTPAddr is where the service listens. Loopback by default: outside
	// Kubernetes (whose chart sets ":8080") only the gateway on the same
	// host should reach a service.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	// HTTPReusePort listens with SO_REUSEPORT, so a restart on one host can
	// start the new process on HTTP_ADDR before the old one drains.
	HTTPReusePort bool `env:"HTTP_REUSE_PORT" envDefault:"false"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// BodyLimitBytes caps a request body (imports stream, and set their own).
	BodyLimitBytes int `env:"BODY_LIMIT_BYTES" envDefault:"4194304" min:"1024"`
	// ShutdownTimeout bounds the drain of in-flight requests on SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s" min:">0"`
	// RequestTimeout bounds one request's handler.
	RequestTimeout time.Duration `env:"REQUEST_TIMEOUT" envDefault:"30s" min:">0"`
	// ReadTimeout bounds reading one request, body included, so a slow or
	// stalled client cannot hold a connection; import routes get
	// IMPORT_TIMEOUT instead (Import).
	ReadTimeout time.Duration `env:"READ_TIMEOUT" envDefault:"60s" min:">0"`
	// OTLPEndpoint turns tracing on when set (standard OTel variable).
	OTLPEndpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	// CursorSecret keys the list cursors (platform/page): at least 32 bytes,
	// the same in every replica of every service. Unset, a process makes a
	// random key, and its cursors fail (400 invalid_cursor) on any other
	// replica and after a restart; in Kubernetes it is required.
	CursorSecret string `env:"CURSOR_SECRET" secret:"true"`
	// MaxConcurrentFileOperations bounds imports and exports at once.
	MaxConcurrentFileOperations int `env:"MAX_CONCURRENT_FILE_OPERATIONS" envDefault:"50" min:"1"`

	// InternalAuthKeys are the shared secrets that sign calls between the
	// platform's processes ("<id>:<secret>", comma-separated, at most two:
	// the first signs, either verifies). A secret: never shown or logged.
	InternalAuthKeys string `env:"INTERNAL_AUTH_KEYS" json:"-" secret:"true"`
	// InternalAuthKeysFile holds the same, read from a file (a mounted
	// Secret) and read again when it changes.
	InternalAuthKeysFile string `env:"INTERNAL_AUTH_KEYS_FILE"`
	// InternalAuthMaxSkew is how old (or early) a signed call may be.
	InternalAuthMaxSkew time.Duration `env:"INTERNAL_AUTH_MAX_SKEW" envDefault:"30s"`
	// InternalAuthInsecureDev lets a process start without keys, trusting
	// identity headers from anyone who can connect: a development machine only.
	InternalAuthInsecureDev bool `env:"INTERNAL_AUTH_INSECURE_DEV" envDefault:"false"`
}

// InternalAuth returns the internal call signing settings.
func (b Base) InternalAuth() internalauth.Settings {
	return internalauth.Settings{Keys: b.InternalAuthKeys, KeysFile: b.InternalAuthKeysFile,
		MaxSkew: b.InternalAuthMaxSkew, InsecureDev: b.InternalAuthInsecureDev}
}

// Validate checks the shared settings (their min tags, then the rest).
func (b Base) Validate() error {
	if err := Bounds(b); err != nil {
		return err
	}
	switch b.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("LOG_LEVEL: must be debug, info, warn or error, got %q", b.LogLevel)
	}
	if b.CursorSecret != "" && len(b.CursorSecret) < 32 {
		return fmt.Errorf("CURSOR_SECRET: must be at least 32 bytes (openssl rand -base64 32), got %d", len(b.CursorSecret))
	}
	// Only the form here: whether a key is present is checked at start-up
	// (service.Init), so settings can be parsed without one.
	return b.InternalAuth().Check()
}

// Import is the import timeout, embedded by the processes that serve
// import routes (the gateway and credential; stats and chat have none).
type Import struct {
	// ImportTimeout bounds one import (a roster or bulk source upload, a
	// batch with its roster): the gateway's read of the upload and its wait
	// for the answer, the service's read of the stream and the import's own
	// work. One value end to end, so no hop gives up before another.
	ImportTimeout time.Duration `env:"IMPORT_TIMEOUT" envDefault:"30m" min:">0"`
}

// Validate checks the import timeout.
func (i Import) Validate() error { return Bounds(i) }

// Database holds the database settings of a service that has one (the
// gateway has none). Services embed it next to Base.
type Database struct {
	// DatabaseURL is the PostgreSQL connection string (pgx format); it may
	// hold a password, so /health/concurrency never shows it.
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/credentialing?sslmode=disable" secret:"true"`
	// DatabaseMaxConns caps the pgx pool per replica; 0 (automatic) lets
	// the service size it from its own concurrency settings (PoolSize).
	DatabaseMaxConns int32 `env:"DATABASE_MAX_CONNS" envDefault:"0"`
	// DatabaseConnectTimeout bounds the start-up retries for the database.
	DatabaseConnectTimeout time.Duration `env:"DATABASE_CONNECT_TIMEOUT" envDefault:"30s" min:">0"`
}

// PoolSize is DATABASE_MAX_CONNS or, when it is 0 (automatic), 10
// connections for the API and background work plus busy: what the
// service's own concurrency settings can hold at once.
func (d Database) PoolSize(busy int32) int32 {
	if d.DatabaseMaxConns > 0 {
		return d.DatabaseMaxConns
	}
	return 10 + busy
}

// Validate checks the database settings.
func (d Database) Validate() error {
	if d.DatabaseMaxConns < 0 {
		return fmt.Errorf("DATABASE_MAX_CONNS: must be 0 (automatic) or more, got %d", d.DatabaseMaxConns)
	}
	return Bounds(d)
}

// Validator is implemented by config structs that check their own values.
type Validator interface{ Validate() error }

// Parse fills a T from the environment given as a map (nil means os.Environ)
// and validates it. Errors name the variable.
func Parse[T any](environ map[string]string) (T, error) {
	var cfg T
	opts := env.Options{}
	if environ != nil {
		opts.Environment = environ
	}
	if err := env.ParseWithOptions(&cfg, opts); err != nil {
		var agg env.AggregateError
		if errors.As(err, &agg) && len(agg.Errors) > 0 {
			err = agg.Errors[0]
		}
		var pe env.ParseError
		if errors.As(err, &pe) {
			// The library names the Go field; operators know the variable.
			return cfg, fmt.Errorf("invalid configuration: %s: %w", envKey(reflect.TypeOf(cfg), pe.Name), pe.Err)
		}
		return cfg, fmt.Errorf("invalid configuration: %w", err)
	}
	if v, ok := any(&cfg).(Validator); ok {
		if err := v.Validate(); err != nil {
			return cfg, fmt.Errorf("invalid configuration: %w", err)
		}
	}
	return cfg, nil
}

// envKey finds the env tag of the field called name, searching embedded structs.
func envKey(t reflect.Type, name string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return name
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Name == name {
			if key, _, _ := strings.Cut(f.Tag.Get("env"), ","); key != "" {
				return key
			}
		}
		if f.Type.Kind() == reflect.Struct {
			if key := envKey(f.Type, name); key != name {
				return key
			}
		}
	}
	return name
}

// MustLoad parses the process environment or exits 2 with one line on stderr.
func MustLoad[T any]() T {
	cfg, err := Parse[T](nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	return cfg
}
