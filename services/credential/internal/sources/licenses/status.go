package licenses

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/provcred/platform/database"
)

// Status classes: what a board's status word means for a license. The
// check (checks/license.go) decides on the class: active passes (when the
// rest agrees), expired and revoked deny, the others need a human.
const (
	StatusActive      = "active"
	StatusExpired     = "expired"
	StatusRevoked     = "revoked"
	StatusSuspended   = "suspended"
	StatusProbation   = "probation"
	StatusInactive    = "inactive"
	StatusSurrendered = "surrendered"
)

// Classes lists the status classes, in documentation order.
var Classes = []string{StatusActive, StatusExpired, StatusRevoked, StatusSuspended, StatusProbation, StatusInactive, StatusSurrendered}

// DefaultStatusWords is the documented default status table
// (docs/verification.md): a board's word, folded by FoldStatus, to its
// class. LICENSE_STATUS_WORDS adds words or changes a word's class.
var DefaultStatusWords = map[string]string{
	"active": StatusActive, "a": StatusActive, "current": StatusActive, "clear": StatusActive,
	"active - clear": StatusActive, "active clear": StatusActive, "registered": StatusActive,
	"in good standing": StatusActive, "good standing": StatusActive, "licensed": StatusActive,
	"valid": StatusActive, "renewed": StatusActive, "active - renewed": StatusActive,

	"expired": StatusExpired, "e": StatusExpired, "lapsed": StatusExpired, "expire": StatusExpired,
	"delinquent": StatusExpired, "not renewed": StatusExpired,

	"revoked": StatusRevoked, "r": StatusRevoked, "revocation": StatusRevoked, "cancelled": StatusRevoked,
	"canceled": StatusRevoked, "denied": StatusRevoked,

	"suspended": StatusSuspended, "s": StatusSuspended, "suspension": StatusSuspended,
	"summarily suspended": StatusSuspended,

	"probation": StatusProbation, "p": StatusProbation, "active on probation": StatusProbation,
	"probationary": StatusProbation, "active - probation": StatusProbation, "restricted": StatusProbation,
	"active with conditions": StatusProbation, "conditional": StatusProbation,

	"inactive": StatusInactive, "i": StatusInactive, "retired": StatusInactive, "deceased": StatusInactive,
	"voluntarily inactive": StatusInactive,

	"surrendered": StatusSurrendered, "voluntary surrender": StatusSurrendered,
	"voluntarily surrendered": StatusSurrendered, "relinquished": StatusSurrendered,
}

// FoldStatus is a status word as it is stored and looked up: lower case,
// runs of spaces as one.
func FoldStatus(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// StatusTable maps folded status words to classes. The zero value is the
// default table.
type StatusTable struct {
	words map[string]string
}

// NewStatusTable is the default table with overrides, "Word=class,Word=class"
// (LICENSE_STATUS_WORDS): a word already in the table changes class, a new
// word is added. A class must be one of Classes.
func NewStatusTable(overrides string) (StatusTable, error) {
	words := make(map[string]string, len(DefaultStatusWords))
	for w, c := range DefaultStatusWords {
		words[w] = c
	}
	for _, pair := range strings.Split(overrides, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		w, c, ok := strings.Cut(pair, "=")
		w, c = FoldStatus(w), strings.ToLower(strings.TrimSpace(c))
		if !ok || w == "" {
			return StatusTable{}, fmt.Errorf("%q is not WORD=CLASS", pair)
		}
		known := false
		for _, k := range Classes {
			known = known || k == c
		}
		if !known {
			return StatusTable{}, fmt.Errorf("%q: class %q is not one of %s", pair, c, strings.Join(Classes, ", "))
		}
		words[w] = c
	}
	return StatusTable{words: words}, nil
}

// Class is the class of a status word (folded here too); known is false for
// a word the table does not list.
func (t StatusTable) Class(status string) (class string, known bool) {
	words := t.words
	if words == nil {
		words = DefaultStatusWords
	}
	class, known = words[FoldStatus(status)]
	return class, known
}

// Words lists the table sorted by class then word (for documentation and /health/config).
func (t StatusTable) Words() [][2]string {
	words := t.words
	if words == nil {
		words = DefaultStatusWords
	}
	out := make([][2]string, 0, len(words))
	for w, c := range words {
		out = append(out, [2]string{w, c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i][1] != out[j][1] {
			return out[i][1] < out[j][1]
		}
		return out[i][0] < out[j][0]
	})
	return out
}

// NumberKey is a license number as it is compared: letters and digits only,
// upper case, so "A 890104", "a890104" and "A-890104" are one license (the
// SQL function license_number_key, migration 0007, is the same).
func NumberKey(n string) string {
	var b strings.Builder
	b.Grow(len(n))
	for _, r := range n {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteString(strings.ToUpper(string(r)))
		}
	}
	return b.String()
}

// UnknownStatus is a status word of a license roster that the status table
// does not know, with how many rows carry it and the first one's line.
type UnknownStatus struct {
	Status    string `json:"status"`
	Rows      int64  `json:"rows"`
	FirstLine int64  `json:"first_line"`
}

// UnknownStatuses lists the status words of the loaded version table ident
// (a quoted identifier) that t does not know, most frequent first. Boards
// use a few dozen words, so the GROUP BY is small whatever the file's size.
func UnknownStatuses(ctx context.Context, db database.Querier, ident string, t StatusTable) ([]UnknownStatus, error) {
	rows, err := db.Query(ctx, `SELECT status, count(*), min(line) FROM `+ident+` GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("list the roster's statuses: %w", err)
	}
	defer rows.Close()
	var out []UnknownStatus
	for rows.Next() {
		var u UnknownStatus
		if err := rows.Scan(&u.Status, &u.Rows, &u.FirstLine); err != nil {
			return nil, fmt.Errorf("scan a roster status: %w", err)
		}
		if _, known := t.Class(u.Status); !known {
			out = append(out, u)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the roster's statuses: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Rows != out[j].Rows {
			return out[i].Rows > out[j].Rows
		}
		return out[i].Status < out[j].Status
	})
	return out, nil
}
