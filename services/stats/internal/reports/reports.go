// Package reports serves the /stats/* reports. Each report reads only the
// credential service's reporting views (docs/reporting.md) through one
// read-only snapshot of the replica (package replica), is cached per
// query for a short time with concurrent identical requests sharing one
// query (package cache), validates its parameters (package params), and
// answers JSON or, with ?format=csv, a CSV download (package sheet).
package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"

	"github.com/provcred/platform/apierr"
	"github.com/provcred/stats/internal/cache"
	"github.com/provcred/stats/internal/config"
	"github.com/provcred/stats/internal/params"
	"github.com/provcred/stats/internal/replica"
	"github.com/provcred/stats/internal/sheet"
)

// Handler serves every report.
type Handler struct {
	Reader *replica.Reader
	Cache  *cache.Cache
	// VerificationMaxAge is VERIFICATION_MAX_AGE: older verifications are
	// stale in /stats/summary and /stats/expiring (zero: the setting's default).
	VerificationMaxAge time.Duration
}

// maxAgeSetter is a report's parameters that depend on VERIFICATION_MAX_AGE.
type maxAgeSetter interface{ setMaxAge(time.Duration) }

func (h *Handler) maxAge() time.Duration {
	if h.VerificationMaxAge > 0 {
		return h.VerificationMaxAge
	}
	return config.Defaults().VerificationMaxAge
}

// Meta is what every answer says about itself: when it was read, from
// where, and how far that trailed the primary.
type Meta struct {
	Report string `json:"report"`
	replica.Snapshot
}

// result is a report's answer.
type result interface {
	meta() *Meta
	// table is the answer as one CSV table.
	table() sheet.Table
}

func (m *Meta) meta() *Meta { return m }

// report is one endpoint: the parameters it takes, how it reads them into
// P (whose JSON is the cache key: it must hold every resolved value the
// answer depends on, "today" included), and how it computes the answer.
type report[P any] struct {
	name   string
	params []string
	parse  func(q *params.Query, now time.Time) (P, error)
	run    func(ctx context.Context, tx pgx.Tx, p P, now time.Time) (result, error)
}

// Routes registers the reports.
func (h *Handler) Routes(r fiber.Router) {
	route(h, r, summaryReport)
	route(h, r, decisionsReport)
	route(h, r, checksReport)
	route(h, r, turnaroundReport)
	route(h, r, expiringReport)
	route(h, r, batchesReport)
	route(h, r, monitoringReport)
}

// route is a function, not a method: methods cannot have type parameters.
func route[P any](h *Handler, r fiber.Router, rep report[P]) {
	h.Cache.Register(rep.name)
	r.Get("/stats/"+rep.name, func(c *fiber.Ctx) error { return serve(h, c, rep) })
}

func serve[P any](h *Handler, c *fiber.Ctx, rep report[P]) error {
	q, err := params.Parse(c, append(rep.params, "format")...)
	if err != nil {
		return err
	}
	format, err := q.Format()
	if err != nil {
		return err
	}
	p, err := rep.parse(q, h.Reader.Now())
	if err != nil {
		return err
	}
	if m, ok := any(&p).(maxAgeSetter); ok {
		m.setMaxAge(h.maxAge())
	}
	key, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("cache key of %s: %w", rep.name, err)
	}
	v, how, err := h.Cache.Get(c.UserContext(), rep.name, rep.name+string(key), func(ctx context.Context) (any, error) {
		var res result
		snap, err := h.Reader.Read(ctx, func(ctx context.Context, tx pgx.Tx, now time.Time) error {
			var err error
			res, err = rep.run(ctx, tx, p, now)
			return err
		})
		if err != nil {
			return nil, err
		}
		*res.meta() = Meta{Report: rep.name, Snapshot: snap}
		return &cachedAnswer{res: res}, nil
	})
	if err != nil {
		if e, ok := apierr.As(err); ok && e.Status == http.StatusServiceUnavailable {
			c.Set(fiber.HeaderRetryAfter, "5")
		}
		return err
	}
	ans := v.(*cachedAnswer)
	res := ans.res
	m := res.meta()
	c.Set("X-Cache", how)
	c.Set("X-As-Of", m.AsOf.Format(time.RFC3339Nano))
	if m.ReplicaLagSeconds != nil {
		c.Set("X-Replica-Lag-Seconds", fmt.Sprintf("%.3f", *m.ReplicaLagSeconds))
	}
	if format == "csv" {
		var buf bytes.Buffer
		if err := sheet.Write(&buf, res.table()); err != nil {
			return fmt.Errorf("csv of %s: %w", rep.name, err)
		}
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="stats-%s-%s.csv"`,
			rep.name, m.AsOf.Format("20060102T150405Z")))
		return c.Send(buf.Bytes())
	}
	body, err := ans.json()
	if err != nil {
		return fmt.Errorf("json of %s: %w", rep.name, err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

// cachedAnswer is what the cache holds: a report's result and, once a JSON
// request has asked for it, its encoding, so that a hit writes bytes
// instead of encoding again (decisions by day over two years: 730 periods,
// 8 ms to encode on every hit at the benchmark's load).
type cachedAnswer struct {
	res  result
	once sync.Once
	body []byte
	err  error
}

func (a *cachedAnswer) json() ([]byte, error) {
	a.once.Do(func() { a.body, a.err = json.Marshal(a.res) })
	return a.body, a.err
}

// Size is the rows the result holds (cache.Sized: whole-list CSVs are not kept).
func (a *cachedAnswer) Size() int {
	if s, ok := a.res.(cache.Sized); ok {
		return s.Size()
	}
	return 0
}

// checkOrder is the order the credential service reports checks in.
var checkOrder = map[string]int{"npi_format": 0, "nppes": 1, "leie": 2, "sam": 3, "license": 4}

// ratio is n/d rounded to 4 places (0 when d is 0).
func ratio(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return float64(int64(float64(n)/float64(d)*10000+0.5)) / 10000
}

// spanArgs are the Spans of each period as the four arrays the counts
// queries unnest: run starts and ends, widths, and the period's index.
func spanArgs(periods []params.Period) []any {
	var lo, hi []time.Time
	var widths []string
	var index []int32
	for i, p := range periods {
		for _, s := range params.Spans(p.Start, p.End) {
			lo, hi, widths, index = append(lo, s.Start), append(hi, s.End), append(widths, s.Width), append(index, int32(i))
		}
	}
	return []any{lo, hi, widths, index}
}

// spansSQL sums the counts view v per span and by cols (a span's period is
// s.k). Each span is summed in its own index range scan (the LATERAL
// aggregate keeps the planner from one merge of every span with every
// row, which it picks for hundreds of spans: 11 s instead of 0.4 s).
func spansSQL(v, cols, sum string) string {
	return `unnest($1::timestamptz[], $2::timestamptz[], $3::text[]::interval[], $4::int[]) AS s (lo, hi, width, k)
		CROSS JOIN LATERAL (SELECT ` + cols + `, sum(c.` + sum + `)::bigint AS n FROM ` + v + ` c
			WHERE c.bucket_width = s.width AND c.bucket_start >= s.lo AND c.bucket_start < s.hi
			GROUP BY ` + cols + `) c`
}

// MaxCacheRows: answers holding more rows (a whole-list CSV) are not cached.
const MaxCacheRows = 5000
