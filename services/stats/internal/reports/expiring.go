package reports

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/provcred/platform/page"
	"github.com/provcred/stats/internal/params"
	"github.com/provcred/stats/internal/sheet"
)

// Expirable kinds.
const (
	KindLicense         = "license"
	KindBoard           = "board_certification"
	KindRecredentialing = "recredentialing"
	KindVerification    = "verification"
)

// Windows counted, in days: something "within N days" lapses or falls due
// before today + N, so it is due on one of today and the N-1 days after.
var (
	expiryWindows = []int{7, 14, 30, 60, 90}
	recredWindows = []int{30, 90, 120}
)

// ExpiringItem is one license, certification, recredentialing or
// verification falling due. DueOn is the expiry date, the recredentialing
// due date, or the date (in tz) a verification is or becomes stale; DaysLeft
// is DueOn minus today (negative: past). A provider never verified has
// neither.
type ExpiringItem struct {
	Kind           string       `json:"kind"`
	ProviderID     string       `json:"provider_id"`
	NPI            string       `json:"npi"`
	Name           string       `json:"name"`
	State          string       `json:"state,omitempty"`
	Number         string       `json:"number,omitempty"`
	LicenseType    string       `json:"license_type,omitempty"`
	Board          string       `json:"board,omitempty"`
	Specialty      string       `json:"specialty,omitempty"`
	ApprovedAt     *time.Time   `json:"approved_at,omitempty"`
	LastVerifiedAt *time.Time   `json:"last_verified_at,omitempty"`
	DueOn          *params.Date `json:"due_on"`
	DaysLeft       *int         `json:"days_left"`
	key            expiringCursor
}

// Expiring is GET /stats/expiring: counts of everything falling due, and
// the cursor-paged list of one kind within a window.
type Expiring struct {
	Meta
	TZ                 string                      `json:"tz"`
	Today              params.Date                 `json:"today"`
	StalenessLimitDays int                         `json:"staleness_limit_days"`
	Counts             map[string]map[string]int64 `json:"counts"`
	Kind               string                      `json:"kind"`
	WithinDays         int                         `json:"within_days"`
	IncludePast        bool                        `json:"include_past"`
	State              string                      `json:"state,omitempty"`
	page.Page[ExpiringItem]
	csvPart string
}

type expiringParams struct {
	TZ          string          `json:"tz"`
	Today       params.Date     `json:"today"`
	Kind        string          `json:"kind"`
	Within      int             `json:"within"`
	IncludePast bool            `json:"include_past"`
	State       string          `json:"state"`
	Limit       int             `json:"limit"`
	After       *expiringCursor `json:"after"`
	Table       string          `json:"table"`
	// All: the whole list (a CSV download), not a page.
	All bool `json:"all"`
	// MaxAge is VERIFICATION_MAX_AGE (set by the handler, part of the cache key).
	MaxAge time.Duration `json:"max_age"`
}

func (p *expiringParams) setMaxAge(d time.Duration) { p.MaxAge = d }

// expiringCursor is the keyset position: the sort time (expiry or due date
// as midnight UTC, or last verification), provider, and the item within it.
type expiringCursor struct {
	T time.Time `json:"t"`
	P string    `json:"p"`
	A string    `json:"a,omitempty"`
	B string    `json:"b,omitempty"`
	N int       `json:"n,omitempty"`
	// Never: a provider never verified (sorted before every date).
	Never bool `json:"z,omitempty"`
}

// MaxCSVRows bounds a CSV list (?format=csv lists every item, not a page).
const MaxCSVRows = 100000

var stateRE = regexp.MustCompile(`^[A-Z]{2}$`)

var expiringReport = report[expiringParams]{
	name:   "expiring",
	params: []string{"kind", "within", "include_past", "state", "tz", "limit", "cursor", "table"},
	parse:  parseExpiring,
	run:    runExpiring,
}

func parseExpiring(q *params.Query, now time.Time) (expiringParams, error) {
	var p expiringParams
	var err error
	if p.Today, p.TZ, err = today(q, now); err != nil {
		return p, err
	}
	if p.Kind, err = q.Enum("kind", KindLicense, KindLicense, KindBoard, KindRecredentialing, KindVerification); err != nil {
		return p, err
	}
	def, min := 90, 1
	switch p.Kind {
	case KindRecredentialing:
		def = 120
	case KindVerification:
		def, min = 0, 0 // stale now; N: stale now or within N days
	}
	if p.Within, err = q.Int("within", def, min, 365); err != nil {
		return p, err
	}
	if p.IncludePast, err = q.Bool("include_past", false); err != nil {
		return p, err
	}
	if p.State = strings.ToUpper(q.Get("state")); p.State != "" {
		if p.Kind != KindLicense {
			return p, params.Invalid("state", "only applies to kind=license")
		}
		if !stateRE.MatchString(p.State) {
			return p, params.Invalid("state", fmt.Sprintf("must be a two-letter state code, got %q", q.Get("state")))
		}
	}
	if p.Limit, err = q.Limit(); err != nil {
		return p, err
	}
	if p.Table, err = q.Enum("table", "items", "items", "counts"); err != nil {
		return p, err
	}
	format, err := q.Format()
	if err != nil {
		return p, err
	}
	p.All = format == "csv" && p.Table == "items"
	if q.Get("cursor") != "" && !p.All {
		var c expiringCursor
		if err := page.DecodeString(q.Get("cursor"), &c); err != nil {
			return p, err
		}
		p.After = &c
	}
	return p, nil
}

func runExpiring(ctx context.Context, tx pgx.Tx, p expiringParams, now time.Time) (result, error) {
	out := &Expiring{TZ: p.TZ, Today: p.Today, Kind: p.Kind, WithinDays: p.Within, IncludePast: p.IncludePast,
		State: p.State, csvPart: p.Table, Counts: map[string]map[string]int64{}}
	t := p.Today.Time()
	b := &pgx.Batch{}
	out.StalenessLimitDays = int(p.MaxAge / (24 * time.Hour))
	// Licenses are counted from their tallies (by expiry date); the others
	// read their expiry or due-date index.
	for _, c := range []struct {
		kind, sql, agg string
		windows        []int
		past           string
	}{
		{KindLicense, `SELECT %s FROM license_tallies WHERE expires_on < $1::date + %d`, "sum(licenses)", expiryWindows, "expired"},
		{KindBoard, `SELECT %s FROM board_certifications WHERE expires_on < $1::date + %d`, "count(*)", expiryWindows, "expired"},
		{KindRecredentialing, `SELECT %s FROM providers WHERE recredential_due_on < $1::date + %d`, "count(*)", recredWindows, "overdue"},
	} {
		col := map[string]string{KindLicense: "expires_on", KindBoard: "expires_on", KindRecredentialing: "recredential_due_on"}[c.kind]
		exprs := []string{fmt.Sprintf("coalesce(%s FILTER (WHERE %s < $1::date), 0)::bigint", c.agg, col)}
		for _, w := range c.windows {
			exprs = append(exprs, fmt.Sprintf("coalesce(%[3]s FILTER (WHERE %[1]s >= $1::date AND %[1]s < $1::date + %[2]d), 0)::bigint", col, w, c.agg))
		}
		counts := make([]int64, len(exprs))
		dest := make([]any, len(counts))
		for i := range counts {
			dest[i] = &counts[i]
		}
		kind, windows, past := c.kind, c.windows, c.past
		b.Queue(fmt.Sprintf(c.sql, strings.Join(exprs, ", "), windows[len(windows)-1]), t).QueryRow(func(row pgx.Row) error {
			if err := row.Scan(dest...); err != nil {
				return err
			}
			m := map[string]int64{past: counts[0]}
			for i, w := range windows {
				m[fmt.Sprintf("within_%dd", w)] = counts[i+1]
			}
			out.Counts[kind] = m
			return nil
		})
	}
	b.Queue(staleSQL, now, p.MaxAge).QueryRow(func(row pgx.Row) error {
		var stale, never int64
		if err := row.Scan(&stale, &never); err != nil {
			return err
		}
		out.Counts[KindVerification] = map[string]int64{"stale": stale, "never_verified": never}
		return nil
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("expiring counts: %w", err)
	}
	items, err := listExpiring(ctx, tx, p, now)
	if err != nil {
		return nil, fmt.Errorf("expiring %s: %w", p.Kind, err)
	}
	if p.All {
		out.Page = page.Page[ExpiringItem]{Items: items}
	} else {
		out.Page = page.Build(items, p.Limit, func(it ExpiringItem) any { return it.key })
	}
	return out, nil
}

// sqlArgs numbers query arguments as they are added.
type sqlArgs []any

func (a *sqlArgs) add(v any) string { *a = append(*a, v); return fmt.Sprintf("$%d", len(*a)) }

// An expiring query selects, in this order: provider_id, npi, first_name,
// last_name, k1, k2, extra, position, due_date (a date), due_at (an
// instant), approved_at, last_verified_at.
const expiringColumns = `p.provider_id, p.npi, p.first_name, p.last_name`

// listExpiring reads up to limit+1 items of p.Kind after the cursor, in due
// order (every item with p.All, up to MaxCSVRows+1).
func listExpiring(ctx context.Context, tx pgx.Tx, p expiringParams, now time.Time) ([]ExpiringItem, error) {
	var a sqlArgs
	today := p.Today.Time()
	limit := p.Limit + 1
	if p.All {
		limit = MaxCSVRows + 1
	}
	var where []string
	var sql string
	switch p.Kind {
	case KindLicense, KindBoard:
		where = append(where, "l.expires_on < "+a.add(today)+"::date + "+a.add(p.Within)+"::int")
		if !p.IncludePast {
			where = append(where, "l.expires_on >= "+a.add(today)+"::date")
		}
		if p.State != "" {
			where = append(where, "l.state = "+a.add(p.State))
		}
		cols, src, order := "l.state, l.number, l.type, 0", "licenses", "l.expires_on, l.provider_id, l.state, l.number"
		after := func(c *expiringCursor) string {
			return fmt.Sprintf("(l.expires_on, l.provider_id, l.state, l.number) > (%s::date, %s, %s, %s)",
				a.add(c.T), a.add(c.P), a.add(c.A), a.add(c.B))
		}
		if p.Kind == KindBoard {
			cols, src, order = "l.board, l.specialty, '', l.ordinal", "board_certifications", "l.expires_on, l.provider_id, l.ordinal"
			after = func(c *expiringCursor) string {
				return fmt.Sprintf("(l.expires_on, l.provider_id, l.ordinal) > (%s::date, %s, %s::int)", a.add(c.T), a.add(c.P), a.add(c.N))
			}
		}
		if p.After != nil {
			where = append(where, after(p.After))
		}
		sql = fmt.Sprintf(`SELECT %s, %s, l.expires_on, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz
			FROM %s l JOIN providers p ON p.provider_id = l.provider_id
			WHERE %s ORDER BY %s LIMIT %s`, expiringColumns, cols, src, strings.Join(where, " AND "), order, a.add(limit))
	case KindRecredentialing:
		where = append(where, "p.recredential_due_on < "+a.add(today)+"::date + "+a.add(p.Within)+"::int")
		if !p.IncludePast {
			where = append(where, "p.recredential_due_on >= "+a.add(today)+"::date")
		}
		if c := p.After; c != nil {
			where = append(where, fmt.Sprintf("(p.recredential_due_on, p.provider_id) > (%s::date, %s)", a.add(c.T), a.add(c.P)))
		}
		sql = fmt.Sprintf(`SELECT %s, '', '', '', 0, p.recredential_due_on, NULL::timestamptz, p.approved_at, NULL::timestamptz
			FROM providers p WHERE %s ORDER BY p.recredential_due_on, p.provider_id LIMIT %s`,
			expiringColumns, strings.Join(where, " AND "), a.add(limit))
	case KindVerification:
		// Never verified first (no date: -infinity), then the oldest verification.
		// Never verified sorts as -infinity: the condition and the order are
		// both on the expression providers_verification_order_idx holds.
		where = append(where, "coalesce(p.last_verified_at, '-infinity') < "+a.add(now)+"::timestamptz + "+
			a.add(p.Within)+"::int * interval '1 day' - "+a.add(p.MaxAge)+"::interval")
		if c := p.After; c != nil {
			var t any = c.T
			if c.Never {
				t = pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
			}
			where = append(where, fmt.Sprintf("(coalesce(p.last_verified_at, '-infinity'), p.provider_id) > (%s::timestamptz, %s)",
				a.add(t), a.add(c.P)))
		}
		maxAge := a.add(p.MaxAge)
		sql = fmt.Sprintf(`SELECT %s, '', '', '', 0, NULL::date, p.last_verified_at + `+maxAge+`::interval,
				NULL::timestamptz, p.last_verified_at
			FROM providers p
			WHERE %s ORDER BY coalesce(p.last_verified_at, '-infinity'), p.provider_id LIMIT %s`,
			expiringColumns, strings.Join(where, " AND "), a.add(limit))
	}
	rows, err := tx.Query(ctx, sql, a...)
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(p.TZ)
	if err != nil {
		return nil, err
	}
	var items []ExpiringItem
	var it ExpiringItem
	var first, last, k1, k2, extra string
	var position int
	var dueDate, dueAt *time.Time
	_, err = pgx.ForEachRow(rows, []any{&it.ProviderID, &it.NPI, &first, &last, &k1, &k2, &extra, &position,
		&dueDate, &dueAt, &it.ApprovedAt, &it.LastVerifiedAt}, func() error {
		it.Kind, it.Name = p.Kind, strings.TrimSpace(first+" "+last)
		it.key = expiringCursor{P: it.ProviderID}
		switch p.Kind {
		case KindLicense:
			it.State, it.Number, it.LicenseType = k1, k2, extra
			it.key.A, it.key.B = k1, k2
		case KindBoard:
			it.Board, it.Specialty = k1, k2
			it.key.N = position
		}
		var due *params.Date
		switch {
		case dueDate != nil:
			d := params.DateOf(dueDate.UTC()) // a date column comes as midnight UTC
			due, it.key.T = &d, d.Time()
		case dueAt != nil:
			d := params.DateOf(dueAt.In(loc)) // an instant: its date in tz
			due = &d
		}
		if due != nil {
			left := due.Sub(p.Today)
			it.DueOn, it.DaysLeft = due, &left
		}
		if p.Kind == KindVerification {
			it.key.Never = it.LastVerifiedAt == nil
			if !it.key.Never {
				it.key.T = *it.LastVerifiedAt
			}
		}
		items = append(items, it)
		it = ExpiringItem{}
		return nil
	})
	if err == nil && p.All && len(items) > MaxCSVRows {
		return nil, params.Invalid("within", fmt.Sprintf("the list has more than %d rows, more than a spreadsheet download holds; "+
			"narrow within (or state)", MaxCSVRows))
	}
	return items, err
}

// Size is the rows the answer holds (a whole-list CSV is not kept in the cache).
func (e *Expiring) Size() int { return len(e.Items) }

func (e *Expiring) table() sheet.Table {
	if e.csvPart == "counts" {
		t := sheet.Table{Header: []string{"kind", "window", "count"}}
		for _, kind := range []string{KindLicense, KindBoard, KindRecredentialing, KindVerification} {
			keys := []string{"expired"}
			windows := expiryWindows
			switch kind {
			case KindRecredentialing:
				keys, windows = []string{"overdue"}, recredWindows
			case KindVerification:
				keys, windows = []string{"stale", "never_verified"}, nil
			}
			for _, w := range windows {
				keys = append(keys, fmt.Sprintf("within_%dd", w))
			}
			for _, k := range keys {
				t.Add(kind, k, e.Counts[kind][k])
			}
		}
		return t
	}
	t := sheet.Table{Header: []string{"kind", "provider_id", "npi", "name", "state", "number", "license_type", "board",
		"specialty", "approved_at", "last_verified_at", "due_on", "days_left"}}
	for _, it := range e.Items {
		var due, left any
		if it.DueOn != nil {
			due, left = *it.DueOn, *it.DaysLeft
		}
		t.Add(it.Kind, it.ProviderID, it.NPI, it.Name, it.State, it.Number, it.LicenseType, it.Board, it.Specialty,
			it.ApprovedAt, it.LastVerifiedAt, due, left)
	}
	return t
}
