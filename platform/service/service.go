// Package service wires what every service's main needs, in one place:
// logger, metrics, tracing, the database pool with its migrations, and the
// `migrate` subcommand that a Kubernetes Job runs before a rollout.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/provcred/platform/config"
	"github.com/provcred/platform/database"
	"github.com/provcred/platform/internalauth"
	"github.com/provcred/platform/logging"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/page"
	"github.com/provcred/platform/server"
	"github.com/provcred/platform/tracing"
)

// Database says which database a service uses, which schema it owns and
// how to migrate it.
type Database struct {
	// Config is the service's DATABASE_* settings.
	Config config.Database
	// Schema is the service's own schema; migrations land there.
	Schema string
	// SearchPath for the pool, own schema first.
	SearchPath string
	// Migrations are NNNN_name.sql files (nil: none).
	Migrations fs.FS
	// Extra runs after Migrations (e.g. River's own migrations).
	Extra func(ctx context.Context, pool *pgxpool.Pool) error
	// URL overrides Config.DatabaseURL (e.g. a read replica).
	URL string
	// MaxConns sizes the pool: Config.PoolSize of what the service's
	// concurrency can hold.
	MaxConns int32
}

// Deps are the shared pieces a service is built from.
type Deps struct {
	Name    string
	Log     *slog.Logger
	Metrics *metrics.Registry
	Tracer  trace.TracerProvider
	Pool    *pgxpool.Pool
	// Internal signs and verifies calls between the platform's processes
	// (server.Options.Internal; the gateway and chat sign with it). Nil
	// only under INTERNAL_AUTH_INSECURE_DEV.
	Internal *internalauth.Keyring
	closers  []func(context.Context) error
	// reusePort is HTTP_REUSE_PORT (server.Listen).
	reusePort bool
}

// Init builds the logger, metrics and tracing, connects to the database
// (when db is not nil) and applies migrations. When the process was started
// as `<binary> migrate`, it migrates and exits.
func Init(ctx context.Context, name string, base config.Base, db *Database) (*Deps, error) {
	d := &Deps{Name: name, Log: logging.New(os.Stdout, name, base.LogLevel), Metrics: metrics.New(name),
		reusePort: base.HTTPReusePort}
	// `migrate` serves nothing, so it needs no key (the chart's Job has none).
	if !isMigrate() {
		if err := d.initInternal(ctx, base); err != nil {
			return nil, err
		}
	}
	tp, shutdown, err := tracing.Setup(ctx, name, base.OTLPEndpoint)
	if err != nil {
		return nil, err
	}
	d.Tracer = tp
	d.closers = append(d.closers, shutdown)
	if db == nil {
		return d, nil
	}
	url := db.Config.DatabaseURL
	if db.URL != "" {
		url = db.URL
	}
	pool, err := database.Connect(ctx, database.Options{URL: url, SearchPath: db.SearchPath, MaxConns: db.MaxConns,
		ConnectTimeout: db.Config.DatabaseConnectTimeout, Tracer: tp, Logger: d.Log})
	if err != nil {
		return nil, err
	}
	d.Pool = pool
	d.Metrics.RegisterPool(name, pool)
	if db.Migrations != nil {
		applied, err := database.Migrate(ctx, pool, db.Schema, db.Migrations)
		if err != nil {
			pool.Close()
			return nil, err
		}
		if len(applied) > 0 {
			d.Log.Info("migrations applied", "schema", db.Schema, "files", applied)
		}
	}
	if db.Extra != nil {
		if err := db.Extra(ctx, pool); err != nil {
			pool.Close()
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	if isMigrate() {
		d.Log.Info("migrations done; exiting (migrate subcommand)")
		pool.Close()
		os.Exit(0)
	}
	// Services with a database are the ones that page lists (the gateway
	// has neither); the migrate Job needs no cursor key.
	if err := setCursorSecret(base.CursorSecret, os.Getenv("KUBERNETES_SERVICE_HOST") != "", d.Log); err != nil {
		pool.Close()
		return nil, err
	}
	return d, nil
}

func isMigrate() bool { return len(os.Args) > 1 && os.Args[1] == "migrate" }

// internalKeysReload is how often INTERNAL_AUTH_KEYS_FILE is read again.
const internalKeysReload = 10 * time.Second

// initInternal loads the internal signing keys, or refuses to start
// without them unless INTERNAL_AUTH_INSECURE_DEV is set.
func (d *Deps) initInternal(ctx context.Context, base config.Base) error {
	s := base.InternalAuth()
	k, err := internalauth.Load(s)
	if err != nil {
		return err
	}
	if k == nil {
		d.Log.Warn("INSECURE: INTERNAL_AUTH_INSECURE_DEV is set and no INTERNAL_AUTH_KEYS: identity headers " +
			"(X-Actor-Id, X-Actor-Role) are believed from anyone who can connect; never run this way outside a development machine")
		return nil
	}
	d.Internal = k
	if s.KeysFile != "" {
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		go k.Watch(wctx, s.KeysFile, internalKeysReload, d.Log)
		d.closers = append(d.closers, func(context.Context) error { cancel(); return nil })
	}
	d.Log.Info("internal calls signed", "key_ids", k.KeyIDs(), "max_skew", k.MaxSkew().String())
	return nil
}

// CheckArgs decides on a service's command line before anything starts: a
// binary that ignored its arguments once started a keyless gateway for
// `gateway --help`, and `credential --help` would have migrated the default
// database. -h/--help prints the usage (0); an unknown flag or argument
// prints it to stderr (2); otherwise -1: go on. Settings come only from the
// environment.
func CheckArgs(name string, commands, args []string, stdout, stderr io.Writer) int {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: %s", name)
		for _, c := range commands {
			fmt.Fprintf(w, "\n       %s %s", name, c)
		}
		fmt.Fprintf(w, "\n\nServes HTTP; every setting comes from the environment (see the service's README and\n"+
			"docs/operations.md).")
		if slices.Contains(commands, "migrate") {
			fmt.Fprint(w, " `migrate` applies the database migrations and exits.")
		}
		fmt.Fprintln(w)
	}
	switch {
	case len(args) == 0:
		return -1
	case len(args) == 1 && slices.Contains(commands, args[0]):
		return -1
	case len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help"):
		usage(stdout)
		return 0
	}
	if strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "%s: unknown flag %q\n", name, args[0])
	} else {
		fmt.Fprintf(stderr, "%s: unknown argument %q\n", name, strings.Join(args, " "))
	}
	usage(stderr)
	return 2
}

// setCursorSecret keys the list cursors. In Kubernetes a missing secret is
// an error: each replica would make its own key and a client's next page,
// sent to another replica, would be 400 invalid_cursor.
func setCursorSecret(secret string, inKubernetes bool, log *slog.Logger) error {
	if secret == "" {
		if inKubernetes {
			return errors.New("CURSOR_SECRET is required in Kubernetes (the chart's cursor Secret): replicas must share the cursor key")
		}
		log.Warn("CURSOR_SECRET is not set: list cursors are valid only in this process (not after a restart, not on another replica)")
		return nil
	}
	return page.SetSecret(secret)
}

// DBCheck is the readiness check of the pool.
func (d *Deps) DBCheck() server.Check {
	return server.Check{Name: "postgres", Fn: func(ctx context.Context) error { return d.Pool.Ping(ctx) }}
}

// Serve runs srv on addr until ctx ends, then drains it and closes the
// pool, extra closers (in order) and the tracer.
func (d *Deps) Serve(ctx context.Context, srv *server.Server, addr string, closers ...func(context.Context) error) error {
	all := append([]func(context.Context) error{}, closers...)
	if d.Pool != nil {
		all = append(all, func(context.Context) error { d.Pool.Close(); return nil })
	}
	all = append(all, d.closers...)
	ln, err := server.Listen(ctx, addr, d.reusePort)
	if err != nil {
		return err
	}
	return srv.Serve(ctx, ln, all...)
}

// Main runs a service with a database: `<name>` serves, `<name> migrate`
// applies its migrations and exits (see Init). Anything else is refused
// before anything starts (CheckArgs).
func Main(name string, fn func(ctx context.Context) error) {
	MainWith(name, []string{"migrate"}, fn)
}

// MainWith is Main for a service whose only extra arguments are commands
// (nil: none). It runs fn with a context that ends on SIGTERM/SIGINT and
// exits 1 with one JSON log line if it fails.
func MainWith(name string, commands []string, fn func(ctx context.Context) error) {
	if code := CheckArgs(name, commands, os.Args[1:], os.Stdout, os.Stderr); code >= 0 {
		os.Exit(code)
	}
	ctx, stop := server.SignalContext()
	defer stop()
	if err := fn(ctx); err != nil {
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("service failed", "service", name, "err", err.Error())
		stop()
		os.Exit(1)
	}
}
