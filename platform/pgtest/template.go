package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Template is one migration set: the schema every test database of a service
// starts from. Its database, tmpl_<Name>_<Key>, is migrated once on the
// server and then copied for each test with CREATE DATABASE ... TEMPLATE,
// which costs a file copy instead of running every migration again.
//
// The template is shared by every test process on the server (parallel
// packages, other checkouts): it is built under an advisory lock and only
// marked a template (IS_TEMPLATE) once its migrations committed, so a
// process that died mid-build leaves a database that the next one drops and
// builds again. A changed migration changes Key and so gives a new template.
type Template struct {
	// Name is the set's name, e.g. "credential" (lower-case letters, digits, _).
	Name string
	// Key identifies the set's content; Fingerprint computes one.
	Key string
	// SearchPath is set on the pools NewPool opens.
	SearchPath string
	// Migrate brings the empty database at url to the set's schema. It must
	// close its connections before it returns.
	Migrate func(ctx context.Context, url string) error
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,20}$`)

// Fingerprint hashes the files of each fsys (names and contents, in name
// order) and the extra strings: a Template Key that changes whenever a
// migration does.
func Fingerprint(files []fs.FS, extra ...string) (string, error) {
	h := sha256.New()
	for i, fsys := range files {
		var names []string
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				names = append(names, p)
			}
			return err
		})
		if err != nil {
			return "", fmt.Errorf("fingerprint set %d: %w", i, err)
		}
		sort.Strings(names)
		for _, n := range names {
			b, err := fs.ReadFile(fsys, n)
			if err != nil {
				return "", fmt.Errorf("fingerprint %s: %w", n, err)
			}
			fmt.Fprintf(h, "%d\x00%s\x00%d\x00", i, n, len(b))
			h.Write(b)
		}
	}
	for _, s := range extra {
		fmt.Fprintf(h, "extra\x00%d\x00%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// database is the template's database name.
func (tpl Template) database() string { return "tmpl_" + tpl.Name + "_" + tpl.Key }

// known remembers, per process, the templates seen complete on the server.
var known sync.Map // database name → *state

type state struct {
	mu   sync.Mutex // held while this process checks or builds the template
	done bool
}

// builtComment and the build time are the template database's comment.
const builtComment = "pgtest template built "

// staleAfter is how old another key's template of the same name must be
// before a build drops it: older checkouts may still be running their tests.
const staleAfter = 24 * time.Hour

// NewDatabase returns the URL of a fresh copy of the template, dropped when
// t ends. The template is built first if the server does not hold it yet.
func (tpl Template) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return own(t)(tpl.Copy(ctx, adminURL(), "test"))
}

// Copy creates prefix_<random>, a copy of the template, on the server at
// admin (building the template first if the server does not hold it) and
// returns its URL and a function that drops it. Benchmarks use it directly;
// tests use NewDatabase.
func (tpl Template) Copy(ctx context.Context, admin, prefix string) (string, func() error, error) {
	if !validName.MatchString(tpl.Name) || tpl.Key == "" || tpl.Migrate == nil {
		return "", nil, fmt.Errorf("template %q needs a lower-case Name, a Key and Migrate", tpl.Name)
	}
	for attempt := 0; ; attempt++ {
		if err := tpl.ensure(ctx, admin); err != nil {
			return "", nil, fmt.Errorf("template %s: %w", tpl.database(), err)
		}
		dbURL, drop, err := scratch(ctx, admin, prefix, tpl.database())
		var pe *pgconn.PgError
		if err != nil && errors.As(err, &pe) && pe.Code == "3D000" && attempt == 0 {
			// Dropped meanwhile (a newer checkout cleaned it up as stale): build it again.
			known.Delete(tpl.database())
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("copy template %s: %w", tpl.database(), err)
		}
		return dbURL, drop, nil
	}
}

// NewPool is NewDatabase with a pool on it (search_path SearchPath), closed
// before the database drops.
func (tpl Template) NewPool(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	dbURL := tpl.NewDatabase(t)
	return openPool(t, dbURL, tpl.SearchPath), dbURL
}

// ensure makes sure the template exists on the server.
func (tpl Template) ensure(ctx context.Context, admin string) error {
	name := tpl.database()
	v, _ := known.LoadOrStore(name, &state{})
	st := v.(*state)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return nil
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redacted(admin), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Session lock: released by the unlock below, or by the server when this
	// process dies holding it.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext('pgtest-template'), hashtext($1))`, name); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('pgtest-template'), hashtext($1))`, name) //nolint:errcheck // closing the connection unlocks too
	var isTemplate *bool
	err = conn.QueryRow(ctx, `SELECT datistemplate FROM pg_database WHERE datname = $1`, name).Scan(&isTemplate)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("look up: %w", err)
	}
	if isTemplate != nil && *isTemplate {
		st.done = true
		return nil
	}
	if err := tpl.build(ctx, conn, admin, isTemplate != nil); err != nil {
		return err
	}
	st.done = true
	tpl.dropStale(ctx, conn)
	return nil
}

// build creates and migrates the template database; exists says a half-built
// one (its builder died) is there to drop first.
func (tpl Template) build(ctx context.Context, conn *pgx.Conn, admin string, exists bool) error {
	name := tpl.database()
	ident := pgx.Identifier{name}.Sanitize()
	if exists {
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+ident+` WITH (FORCE)`); err != nil {
			return fmt.Errorf("drop a half-built template: %w", err)
		}
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+ident+` TEMPLATE template0`); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return fmt.Errorf("parse the server URL: %w", err)
	}
	u.Path = "/" + name
	if err := tpl.Migrate(ctx, u.String()); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// A copy needs the template to itself: no session may linger on it.
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()`, name); err != nil {
		return fmt.Errorf("close sessions: %w", err)
	}
	if _, err := conn.Exec(ctx, `COMMENT ON DATABASE `+ident+` IS '`+builtComment+
		time.Now().UTC().Format(time.RFC3339)+`'`); err != nil {
		return fmt.Errorf("comment: %w", err)
	}
	// The mark that the build completed: copies are taken only from a template.
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+ident+` WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`); err != nil {
		return fmt.Errorf("mark as template: %w", err)
	}
	return nil
}

// dropStale drops templates of the same Name but another Key built more than
// staleAfter ago, so that changed migrations do not pile up templates on a
// long-lived server. A database being built has a fresh stamp, so one left
// half-dropped (its IS_TEMPLATE cleared by a process that died) goes too.
// Failures only leave a template behind.
func (tpl Template) dropStale(ctx context.Context, conn *pgx.Conn) {
	rows, err := conn.Query(ctx, `SELECT d.datname, shobj_description(d.oid, 'pg_database')
		FROM pg_database d WHERE d.datname <> $1`, tpl.database())
	if err != nil {
		return
	}
	var stale []string
	for rows.Next() {
		var name string
		var comment *string
		if rows.Scan(&name, &comment) != nil || comment == nil || len(name) != len(tpl.database()) ||
			!strings.HasPrefix(name, "tmpl_"+tpl.Name+"_") {
			continue
		}
		stamp, ok := strings.CutPrefix(*comment, builtComment)
		at, err := time.Parse(time.RFC3339, stamp)
		if ok && err == nil && time.Since(at) > staleAfter {
			stale = append(stale, name)
		}
	}
	rows.Close()
	for _, name := range stale {
		ident := pgx.Identifier{name}.Sanitize()
		if _, err := conn.Exec(ctx, `ALTER DATABASE `+ident+` WITH IS_TEMPLATE false`); err == nil {
			_, _ = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+ident+` WITH (FORCE)`)
		}
	}
}
