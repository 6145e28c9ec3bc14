// Package sheet writes a report as CSV that a spreadsheet opens as it is:
// RFC 4180 quoting with CRLF line ends, a UTF-8 byte order mark (without
// it Excel reads accented names as Latin-1), and text that a spreadsheet
// would run as a formula (=, +, -, @, tab, CR first) prefixed with a
// quote, as OWASP advises for CSV made from user data (provider names,
// check details).
package sheet

import (
	"bufio"
	"encoding/csv"
	"io"
	"strconv"
	"time"
)

// Table is a header and rows; a cell is a string, a whole number, a
// float64, a time.Time, a fmt.Stringer (dates), a pointer to one of those,
// or nil (empty).
type Table struct {
	Header []string
	Rows   [][]any
}

// Add appends a row.
func (t *Table) Add(cells ...any) { t.Rows = append(t.Rows, cells) }

const bom = "\ufeff"

// Write writes t.
func Write(w io.Writer, t Table) error {
	bw := bufio.NewWriter(w)
	if _, err := bw.WriteString(bom); err != nil {
		return err
	}
	cw := csv.NewWriter(bw)
	cw.UseCRLF = true
	if err := cw.Write(t.Header); err != nil {
		return err
	}
	rec := make([]string, 0, len(t.Header))
	for _, row := range t.Rows {
		rec = rec[:0]
		for _, cell := range row {
			rec = append(rec, Cell(cell))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// Cell formats one value.
func Cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return Text(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case *string:
		if x == nil {
			return ""
		}
		return Text(*x)
	case *int64:
		if x == nil {
			return ""
		}
		return strconv.FormatInt(*x, 10)
	case *float64:
		if x == nil {
			return ""
		}
		return strconv.FormatFloat(*x, 'f', -1, 64)
	case *time.Time:
		if x == nil {
			return ""
		}
		return x.UTC().Format(time.RFC3339)
	case interface{ String() string }:
		return Text(x.String())
	default:
		panic("sheet: unsupported cell type") // a programming error, caught by the report tests
	}
}

// Text guards a text cell against being run as a formula.
func Text(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
