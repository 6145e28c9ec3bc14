package sources

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/provcred/platform/text"
)

// Reader streams a source file's rows: it implements pgx.CopyFromSource,
// reading and parsing one CSV record per Next, so memory stays constant
// whatever the file's size. After Next returns false, Err says whether the
// file ended cleanly or was rejected (a *LineError).
//
// Below the CSV reader is one byte stream (input) that drops a UTF-8 byte
// order mark and a trailing DOS end-of-file byte, bounds a record's length
// and keeps each record's raw bytes for its digest; above it, every field
// is checked against MaxFieldBytes and turned into UTF-8 (textDecoder).
type Reader struct {
	r      *csv.Reader
	in     *input
	text   textDecoder
	p      RowParser
	header []string
	vals   []any
	rows   int64
	line   int64 // line of the last record read
	err    error
}

// NewReader reads the header of r and binds f's parser to it. A missing or
// wrong header is a *LineError at line 1.
func NewReader(f Format, r io.Reader) (*Reader, error) {
	in := newInput(r)
	cr := csv.NewReader(in)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &LineError{Line: 1, Reason: "the file is empty (no header)"}
	}
	if err != nil {
		return nil, csvError(err, 1)
	}
	in.take(cr.InputOffset())
	s := &Reader{r: cr, in: in, line: 1}
	header = append([]string(nil), header...) // ReuseRecord: the slice is overwritten by the next Read
	if err := s.clean(header, nil); err != nil {
		return nil, &LineError{Line: 1, Reason: err.Error()}
	}
	p, err := f.Bind(header)
	if err != nil {
		return nil, &LineError{Line: 1, Reason: err.Error()}
	}
	s.p, s.header, s.vals = p, header, make([]any, len(f.Columns()))
	return s, nil
}

// clean checks each field's length and makes it storable UTF-8 text, in place.
func (s *Reader) clean(rec, names []string) error {
	for i, v := range rec {
		if len(v) > MaxFieldBytes {
			return fmt.Errorf("%s is longer than %d bytes", fieldName(names, i), MaxFieldBytes)
		}
		if plainASCII(v) { // nearly every field: one pass, nothing to change
			continue
		}
		v, err := s.text.decode(v)
		if err != nil {
			return fmt.Errorf("%s: %w", fieldName(names, i), err)
		}
		rec[i] = CleanText(v)
	}
	return nil
}

// plainASCII reports whether s is ASCII without NUL bytes.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || c == 0 {
			return false
		}
	}
	return true
}

func fieldName(names []string, i int) string {
	if i < len(names) && names[i] != "" {
		return fmt.Sprintf("column %q", text.Clip(names[i], 40))
	}
	return fmt.Sprintf("field %d", i+1)
}

// Next implements pgx.CopyFromSource.
func (s *Reader) Next() bool {
	if s.err != nil {
		return false
	}
	rec, err := s.r.Read()
	if errors.Is(err, io.EOF) {
		return false
	}
	if err != nil {
		s.err = csvError(err, s.line+1)
		if pe := new(csv.ParseError); errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
			s.err = &LineError{Line: int64(pe.StartLine),
				Reason: fmt.Sprintf("the row has %d fields, the header has %d", len(rec), len(s.header))}
		}
		return false
	}
	raw := s.in.take(s.r.InputOffset())
	line, _ := s.r.FieldPos(0)
	s.line = int64(line)
	if err := s.clean(rec, s.header); err != nil {
		s.err = &LineError{Line: s.line, Reason: err.Error()}
		return false
	}
	if err := s.p.Parse(Row{Fields: rec, Line: s.line, Digest: Digest(raw)}, s.vals); err != nil {
		s.err = &LineError{Line: s.line, Reason: err.Error()}
		return false
	}
	s.rows++
	return true
}

// Rows is the number of rows parsed so far.
func (s *Reader) Rows() int64 { return s.rows }

// Line is the file line of the last record read (1: the header).
func (s *Reader) Line() int64 { return s.line }

// Encoding is the file's text encoding as read so far (EncodingUTF8 or
// EncodingWindows1252); final once Next returned false.
func (s *Reader) Encoding() string { return s.text.Encoding() }

// Values implements pgx.CopyFromSource.
func (s *Reader) Values() ([]any, error) { return s.vals, nil }

// Err implements pgx.CopyFromSource.
func (s *Reader) Err() error { return s.err }

// csvError turns a reader error into a LineError: a malformed CSV (often a
// truncated file: an unterminated quote) at its line, a read failure (the
// upload broke off) at the line being read.
func csvError(err error, line int64) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		l := int64(pe.StartLine)
		if l == 0 {
			l = int64(pe.Line)
		}
		return &LineError{Line: l, Reason: fmt.Sprintf("malformed CSV: %v", pe.Err)}
	}
	return &LineError{Line: line, Reason: "reading the file: " + err.Error()}
}
