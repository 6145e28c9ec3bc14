// Package cite decides what an answer may cite: only records that the
// tools returned in the same turn. It keeps a ledger of those records, and
// checks the answer's text for identifiers the model did not get from a
// tool, which are flagged and never presented as sources.
package cite

import (
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
)

// Citation types.
const (
	Provider      = "provider"
	Result        = "result"
	SourceVersion = "source_version"
	AuditLog      = "audit_log"
	Report        = "report"
	Search        = "search"
)

// Citation is one record an answer rests on; URL is its API path, to be
// opened through the gateway.
type Citation struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	URL  string `json:"url"`
}

// Record is a citation candidate a tool returned. A direct record (the one
// provider a lookup asked for, its run, the sources of that run) is cited
// whenever the tool was called; a listed one (a search hit) only when the
// answer names it by one of its Mentions (id, NPI, full name).
type Record struct {
	Citation
	Direct   bool
	Mentions []string
}

// Ledger collects what the tools of one turn returned. Safe for concurrent use.
type Ledger struct {
	mu      sync.Mutex
	records []Record
	known   map[string]bool
}

// NewLedger makes an empty ledger.
func NewLedger() *Ledger { return &Ledger{known: map[string]bool{}} }

// Add records citation candidates.
func (l *Ledger) Add(rs ...Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, rs...)
	for _, r := range rs {
		l.known[norm(r.ID)] = true
		for _, m := range r.Mentions {
			l.known[norm(m)] = true
		}
	}
}

// Know marks identifiers the model was shown (ids, NPIs, batch ids...), so
// naming them is not flagged even when they are not citable.
func (l *Ledger) Know(ids ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if id != "" {
			l.known[norm(id)] = true
		}
	}
}

// Check returns the citations of answer (direct records, and listed ones
// the answer names) in the order the tools returned them, and the
// identifiers in the answer that no tool returned.
func (l *Ledger) Check(answer string) (cited []Citation, unverified []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lower := strings.ToLower(answer)
	seen := map[Citation]bool{}
	for _, r := range l.records {
		if seen[r.Citation] || (!r.Direct && !mentioned(lower, r.Mentions)) {
			continue
		}
		seen[r.Citation] = true
		cited = append(cited, r.Citation)
	}
	for _, id := range Identifiers(answer) {
		if !l.known[id] && !slices.Contains(unverified, id) {
			unverified = append(unverified, id)
		}
	}
	if cited == nil {
		cited = []Citation{}
	}
	if unverified == nil {
		unverified = []string{}
	}
	return cited, unverified
}

// mentioned reports whether any mention occurs in text (lower-cased) as a
// whole word.
func mentioned(text string, mentions []string) bool {
	for _, m := range mentions {
		m = strings.ToLower(strings.TrimSpace(m))
		if m == "" {
			continue
		}
		for i := 0; ; {
			j := strings.Index(text[i:], m)
			if j < 0 {
				break
			}
			start, end := i+j, i+j+len(m)
			if (start == 0 || !idChar(text[start-1])) && (end == len(text) || !idChar(text[end])) {
				return true
			}
			i = start + 1
		}
	}
	return false
}

// norm folds UUIDs to lower case (PostgreSQL prints them so; a model may
// not); every other id is compared as written.
func norm(id string) string {
	if _, err := uuid.Parse(id); err == nil && len(id) == 36 {
		return strings.ToLower(id)
	}
	return id
}

func idChar(b byte) bool {
	return b == '_' || b == '-' || (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
}

var (
	// The system prompt asks for ids in square brackets: [provider_001].
	bracketed = regexp.MustCompile(`\[([A-Za-z0-9][A-Za-z0-9_.:-]{0,99})\]`)
	uuidRe    = regexp.MustCompile(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`)
	digits    = regexp.MustCompile(`[0-9]+`)
	// provider_001-style ids written without brackets.
	providerRe = regexp.MustCompile(`\bprovider_[A-Za-z0-9_.-]*[A-Za-z0-9_]`)
)

// Identifiers finds what in text looks like a record identifier: anything
// in square brackets (a Markdown link's text, [x](url), is not one), UUIDs,
// NPI-shaped numbers and provider_… ids.
func Identifiers(text string) []string {
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, m := range bracketed.FindAllStringSubmatchIndex(text, -1) {
		if m[1] < len(text) && text[m[1]] == '(' {
			continue
		}
		add(norm(text[m[2]:m[3]]))
	}
	for _, s := range uuidRe.FindAllString(text, -1) {
		add(norm(s))
	}
	// NPI-shaped: exactly ten digits starting with 1 or 2.
	for _, s := range digits.FindAllString(text, -1) {
		if len(s) == 10 && (s[0] == '1' || s[0] == '2') {
			add(s)
		}
	}
	for _, s := range providerRe.FindAllString(text, -1) {
		add(s)
	}
	return out
}
