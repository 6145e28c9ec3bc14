package sources

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/provcred/credential/internal/names"
	"github.com/provcred/platform/text"
)

// Format is one source's file format: how its header and rows map onto the
// columns of its partitioned table.
type Format interface {
	// Source is the source name (LEIE, SAM, NPPES, Licenses).
	Source() string
	// Table is the partitioned parent table the rows go to.
	Table() string
	// Columns are the columns a RowParser fills, in order (import_id excluded:
	// it is the version table's default).
	Columns() []string
	// Indexes are the CREATE INDEX statements for one version table, with %s
	// standing for its name. They match the parent's indexes so that ATTACH
	// PARTITION adopts them instead of building its own.
	Indexes() []string
	// Analyze names the columns lookups filter on, whose statistics the
	// planner needs.
	Analyze() []string
	// Bind checks the header row and returns the parser for the rows under it.
	// The error is the reason, reported at line 1.
	Bind(header []string) (RowParser, error)
}

// RowParser turns one CSV record into column values.
type RowParser interface {
	// Parse fills dst (len(Columns())) from row. dst's values are only valid
	// until the next call. The error is the reason.
	Parse(row Row, dst []any) error
}

// Row is one record of a source file as a RowParser gets it.
type Row struct {
	// Fields are the record's values: UTF-8, at most MaxFieldBytes each
	// (before transcoding), not yet trimmed.
	Fields []string
	// Line is the 1-based physical line of the file where the record starts
	// (the header is line 1).
	Line int64
	// Digest is the hex SHA-256 of the record's bytes as they stand in the
	// file, its line ending included: for a one-line record what
	// `sed -n '<Line>p' FILE | sha256sum` prints.
	Digest string
}

// Field limits. Every field of a source file is at most MaxFieldBytes (SAM's
// free-text Additional Comments, the longest real field, run to a few
// hundred); the fields lookups index (names, NPI, license number, state)
// at most MaxKeyBytes, so an index entry always fits PostgreSQL's limit
// (~2.7 KB) and no real name comes near it (the NPPES allows 35 characters).
const (
	MaxFieldBytes = 4096
	MaxKeyBytes   = 256
)

// Keys checks pairs of (column name, value) against MaxKeyBytes.
func Keys(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if len(pairs[i+1]) > MaxKeyBytes {
			return fmt.Errorf("%s is longer than %d bytes", pairs[i], MaxKeyBytes)
		}
	}
	return nil
}

// Header finds columns by name: names compare trimmed and case-insensitively,
// because the publishers' files differ in exactly that way between releases
// (a UTF-8 byte order mark is dropped from the byte stream before parsing).
type Header struct {
	names []string
	index map[string]int
}

// NewHeader indexes a header record. A name that appears twice is an error.
func NewHeader(rec []string) (*Header, error) {
	h := &Header{names: make([]string, len(rec)), index: make(map[string]int, len(rec))}
	for i, n := range rec {
		n = strings.TrimSpace(n)
		h.names[i] = n
		key := strings.ToLower(n)
		if key == "" {
			continue
		}
		if _, dup := h.index[key]; dup {
			return nil, fmt.Errorf("column %q appears twice in the header", n)
		}
		h.index[key] = i
	}
	return h, nil
}

// Names are the header's column names as given (trimmed).
func (h *Header) Names() []string { return h.names }

// Find returns the index of column name, or -1.
func (h *Header) Find(name string) int {
	if i, ok := h.index[strings.ToLower(name)]; ok {
		return i
	}
	return -1
}

// Bind reads a file's header and finds its required columns: the first
// step of every format's Bind.
func Bind(header []string, required ...string) (*Header, []int, error) {
	h, err := NewHeader(header)
	if err != nil {
		return nil, nil, err
	}
	idx, err := h.Require(required...)
	if err != nil {
		return nil, nil, err
	}
	return h, idx, nil
}

// Require returns the indexes of names, or an error naming every missing column.
func (h *Header) Require(names ...string) ([]int, error) {
	idx := make([]int, len(names))
	var missing []string
	for i, n := range names {
		idx[i] = h.Find(n)
		if idx[i] < 0 {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("header is missing column(s) %s", quoteList(missing))
	}
	return idx, nil
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// Field returns rec[i] trimmed, or "" when i < 0 (an optional column absent).
func Field(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

// NPI normalizes an NPI field: "" and the LEIE's 0000000000 mean none (nil);
// anything else must be 10 digits. The check digit is not enforced: the
// source says what it says, and the engine compares exactly.
func NPI(s string) (any, error) {
	if s == "" || s == "0000000000" {
		return nil, nil
	}
	if len(s) != 10 {
		return nil, fmt.Errorf("NPI %q is not 10 digits", text.Clip(s, 40))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, fmt.Errorf("NPI %q is not 10 digits", text.Clip(s, 40))
		}
	}
	return s, nil
}

// DateYYYYMMDD parses the LEIE's dates: YYYYMMDD, with "" and 00000000 meaning none.
func DateYYYYMMDD(s string) (any, error) {
	if s == "" || s == "00000000" {
		return nil, nil
	}
	if len(s) != 8 || !digits(s) {
		return nil, fmt.Errorf("date %q is not YYYYMMDD", text.Clip(s, 40))
	}
	return date(s[0:4], s[4:6], s[6:8], s)
}

// DateMDY parses MM/DD/YYYY (SAM, NPPES); "" means none. One-digit months and
// days are accepted ("1/2/2024"), as spreadsheets re-save them that way.
func DateMDY(s string) (any, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) != 3 || len(parts[0]) < 1 || len(parts[0]) > 2 || len(parts[1]) < 1 || len(parts[1]) > 2 ||
		len(parts[2]) != 4 || !digits(parts[0]) || !digits(parts[1]) || !digits(parts[2]) {
		return nil, fmt.Errorf("date %q is not MM/DD/YYYY", text.Clip(s, 40))
	}
	return date(parts[2], parts[0], parts[1], s)
}

// DateISO parses YYYY-MM-DD, and also MM/DD/YYYY; "" means none.
func DateISO(s string) (any, error) {
	if s == "" {
		return nil, nil
	}
	if strings.Contains(s, "/") {
		return DateMDY(s)
	}
	if len(s) != 10 || s[4] != '-' || s[7] != '-' || !digits(s[0:4]) || !digits(s[5:7]) || !digits(s[8:10]) {
		return nil, fmt.Errorf("date %q is not YYYY-MM-DD", text.Clip(s, 40))
	}
	return date(s[0:4], s[5:7], s[8:10], s)
}

func date(y, m, d, orig string) (any, error) {
	yi, mi, di := atoi(y), atoi(m), atoi(d)
	if yi < 1800 || yi > 2200 || mi < 1 || mi > 12 || di < 1 || di > 31 {
		return nil, fmt.Errorf("date %q is out of range", text.Clip(orig, 40))
	}
	t := time.Date(yi, time.Month(mi), di, 0, 0, 0, 0, time.UTC)
	if t.Day() != di { // 02/30 rolled over into March
		return nil, fmt.Errorf("date %q does not exist", text.Clip(orig, 40))
	}
	return t, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// Encoder builds a row's record (the raw row as a JSON object, header name →
// value), reusing its buffer from row to row.
type Encoder struct {
	names     []string
	omitEmpty bool
	rec       []byte
}

// NewEncoder makes an encoder for header names. With omitEmpty, empty
// fields are left out of the record (the NPPES file's ~330 mostly empty
// columns would otherwise dominate the table).
func NewEncoder(names []string, omitEmpty bool) *Encoder {
	e := &Encoder{names: make([]string, len(names)), omitEmpty: omitEmpty}
	copy(e.names, names)
	for i, n := range e.names {
		if n == "" {
			e.names[i] = fmt.Sprintf("column_%d", i+1)
		}
	}
	return e
}

// Record returns the JSON object for rec; valid until the next call.
func (e *Encoder) Record(rec []string) []byte {
	b := append(e.rec[:0], '{')
	first := true
	for i, v := range rec {
		if e.omitEmpty && v == "" {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		name := ""
		if i < len(e.names) {
			name = e.names[i]
		} else {
			name = fmt.Sprintf("column_%d", i+1)
		}
		b = AppendJSONString(b, name)
		b = append(b, ':')
		b = AppendJSONString(b, v)
	}
	b = append(b, '}')
	e.rec = b
	return b
}

// AppendQuotedCSV appends fields as one CSV line with every field quoted
// (the current LEIE's style), without the line ending. The generator writes
// its files with it.
func AppendQuotedCSV(b []byte, fields []string) []byte {
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(f); j++ {
			if f[j] == '"' {
				b = append(b, '"')
			}
			b = append(b, f[j])
		}
		b = append(b, '"')
	}
	return b
}

// Digest is the hex SHA-256 of raw evidence (a row, a response body): what
// an auditor recomputes to prove a record was not altered.
func Digest(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD
// and NUL is escaped, so PostgreSQL's jsonb always accepts the result.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0 // bytes s[start:i] need no escaping and are appended in one go
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
		}
		b = append(b, s[start:i]...)
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default: // invalid UTF-8
			b = append(b, "\ufffd"...)
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// CleanText makes s storable in a PostgreSQL text column: NUL bytes are
// dropped and invalid UTF-8 replaced, since either would make COPY fail on
// a byte the publisher's file should never have held anyway. (The Reader
// hands it UTF-8 only: a file's text that is neither UTF-8 nor
// Windows-1252 is refused before.)
func CleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\ufffd"), "\x00", "")
}

// NameNorm memoizes names.Part for one import. names.Part folds accents
// through golang.org/x/text transformers, which costs ~20µs a call; list
// files repeat the same family and given names thousands of times, so a
// bounded cache makes it cheap while giving exactly names.Part's answer.
type NameNorm struct {
	m map[string]string
}

// nameNormMax bounds the cache (a few MB); when full it starts over.
const nameNormMax = 1 << 16

// Part returns names.Part(s).
func (n *NameNorm) Part(s string) string {
	if v, ok := n.m[s]; ok {
		return v
	}
	if n.m == nil || len(n.m) >= nameNormMax {
		n.m = make(map[string]string, 1024)
	}
	v := names.Part(s)
	// Clone: s shares its backing array with the whole CSV line.
	n.m[strings.Clone(s)] = v
	return v
}
