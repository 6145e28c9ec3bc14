// Package replica is the stats service's one way into the database: every
// report runs in a read-only, repeatable-read transaction (one snapshot, so
// its numbers agree with each other) on the read replica, with a statement
// timeout, and learns how far the replica trails the primary.
package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/metrics"
)

// Snapshot says when and where an answer was read.
type Snapshot struct {
	// AsOf is when the snapshot was taken.
	AsOf time.Time `json:"as_of"`
	// ReplicaLagSeconds is how far the data trails the primary: 0 on the
	// primary or a replica that has replayed all it received; null when a
	// replica has not replayed anything since it started.
	ReplicaLagSeconds *float64 `json:"replica_lag_seconds"`
	// ReadFrom is "replica" or "primary" (STATS_DATABASE_URL pointing at the
	// primary shows here).
	ReadFrom string `json:"read_from"`
}

// Reader runs read-only snapshots.
type Reader struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	now     func() time.Time
	lag     prometheus.Gauge
}

// New returns a Reader on pool whose statements stop after timeout. It
// registers stats_replica_lag_seconds in reg.
func New(pool *pgxpool.Pool, timeout time.Duration, reg *metrics.Registry) *Reader {
	return &Reader{pool: pool, timeout: timeout, now: time.Now,
		lag: reg.Gauge("stats_replica_lag_seconds", "How far the replica the reports read trailed the primary at the last report query.")}
}

// WithClock replaces the clock (tests pin "now").
func (r *Reader) WithClock(now func() time.Time) *Reader { r.now = now; return r }

// Now is the reader's clock.
func (r *Reader) Now() time.Time { return r.now() }

// lagSQL: a replica that has replayed everything it received while
// streaming is current (an idle primary sends nothing, so the last replayed
// transaction may be old); one that is behind, or has no WAL receiver (cut
// off from the primary), trails by the age of the last transaction it
// replayed, an upper bound. A role without pg_read_all_stats sees the
// receiver but not its status, which then counts as streaming.
const lagSQL = `SELECT pg_is_in_recovery(),
	CASE WHEN NOT pg_is_in_recovery() THEN 0
	     WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()
	          AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE coalesce(status, 'streaming') = 'streaming') THEN 0
	     ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8 END`

// Read runs fn in one read-only snapshot and says when and where it was
// taken. Database failures come back as API errors: 504 timeout for the
// statement timeout, 503 replica_unavailable when the replica cannot be
// reached or lacks the reporting views.
func (r *Reader) Read(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx, now time.Time) error) (Snapshot, error) {
	snap, err := r.read(ctx, fn)
	// A read-only snapshot is always safe to take again: once, when the
	// connection broke (a pooled connection to a replica that restarted
	// since; the new one shows whether it is really down), or when the
	// standby cancelled the query to replay the primary's changes.
	if err != nil && (lostConnection(err) || replayConflict(err)) && ctx.Err() == nil {
		snap, err = r.read(ctx, fn)
	}
	if err != nil {
		return Snapshot{}, classify(err)
	}
	if snap.ReplicaLagSeconds != nil {
		r.lag.Set(*snap.ReplicaLagSeconds)
	}
	return snap, nil
}

func (r *Reader) read(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx, now time.Time) error) (Snapshot, error) {
	var snap Snapshot
	err := pgx.BeginTxFunc(ctx, r.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error {
			var inRecovery bool
			b := &pgx.Batch{}
			// jit: report queries are short; compiling them cost more than it saved.
			b.Queue(fmt.Sprintf("SET LOCAL statement_timeout = %d", r.timeout.Milliseconds()))
			b.Queue("SET LOCAL jit = off")
			// Percentiles sort, and counts hash, tens of thousands of rows.
			b.Queue("SET LOCAL work_mem = '32MB'")
			b.Queue(lagSQL).QueryRow(func(row pgx.Row) error { return row.Scan(&inRecovery, &snap.ReplicaLagSeconds) })
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return err
			}
			snap.AsOf = r.now().UTC()
			snap.ReadFrom = "primary"
			if inRecovery {
				snap.ReadFrom = "replica"
			}
			return fn(ctx, tx, snap.AsOf)
		})
	return snap, err
}

// classify turns database errors into what the client is told; anything
// else stays an internal error (logged, answered 500).
func classify(err error) error {
	if _, ok := apierr.As(err); ok {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57014": // query_canceled: the statement timeout
			return fmt.Errorf("%w: %w", apierr.New(http.StatusGatewayTimeout, "timeout",
				"The report took longer than the statement timeout; narrow the range or retry shortly."), err)
		case "42P01", "42883", "3F000": // the reporting views (or schema) are not on the replica
			return fmt.Errorf("%w: %w", unavailable("The reporting views are not on the read replica yet (credential migration 0005)."), err)
		case "57P01", "57P02", "57P03", "53300": // shutting down, starting up, too many connections
			return fmt.Errorf("%w: %w", unavailable("The read replica is not accepting queries right now."), err)
		case "40001": // on a standby: cancelled by a conflict with recovery
			return fmt.Errorf("%w: %w", unavailable("The read replica cancelled the query to apply the primary's changes; retry."), err)
		}
		return err
	}
	if lostConnection(err) {
		return fmt.Errorf("%w: %w", unavailable("The read replica cannot be reached."), err)
	}
	return err
}

// replayConflict: a hot standby cancelled the query because replaying the
// primary's WAL needed what it read (serialization_failure).
func replayConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "40001"
}

// lostConnection: no PostgreSQL answer at all, the connection could not be
// made or broke (not the request's own deadline or cancellation).
func lostConnection(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgx.ErrTxClosed)
}

func unavailable(detail string) *apierr.Error {
	return apierr.Unavailable("replica_unavailable", detail)
}

// Info is the replica's state for /health: where reports read and how far
// behind it is (never its address).
func (r *Reader) Info(ctx context.Context) map[string]any {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var inRecovery bool
	var lag *float64
	if err := r.pool.QueryRow(ctx, lagSQL).Scan(&inRecovery, &lag); err != nil {
		return map[string]any{"replica": map[string]any{"status": "unreachable"}}
	}
	from := "primary"
	if inRecovery {
		from = "replica"
	}
	return map[string]any{"replica": map[string]any{"status": "ok", "read_from": from, "lag_seconds": lag}}
}
