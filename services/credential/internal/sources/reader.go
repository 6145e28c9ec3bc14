package sources

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
)

// Reader streams a source file's rows: it implements pgx.CopyFromSource,
// reading and parsing one CSV record per Next, so memory stays constant
// whatever the file's size. After Next returns false, Err says whether the
// file ended cleanly or was rejected (a *LineError).
type Reader struct {
	r      *csv.Reader
	p      RowParser
	vals   []any
	fields int
	rows   int64
	line   int64 // line of the last record read
	err    error
}

// NewReader reads the header of r and binds f's parser to it. A missing or
// wrong header is a *LineError at line 1.
func NewReader(f Format, r io.Reader) (*Reader, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &LineError{Line: 1, Reason: "the file is empty (no header)"}
	}
	if err != nil {
		return nil, csvError(err, 1)
	}
	header = append([]string(nil), header...) // ReuseRecord: the slice is overwritten by the next Read
	for i := range header {
		header[i] = CleanText(header[i])
	}
	p, err := f.Bind(header)
	if err != nil {
		return nil, &LineError{Line: 1, Reason: err.Error()}
	}
	return &Reader{r: cr, p: p, vals: make([]any, len(f.Columns())), fields: len(header), line: 1}, nil
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
				Reason: fmt.Sprintf("the row has %d fields, the header has %d", len(rec), s.fields)}
		}
		return false
	}
	line, _ := s.r.FieldPos(0)
	s.line = int64(line)
	for i := range rec {
		rec[i] = CleanText(rec[i])
	}
	if err := s.p.Parse(rec, s.line, s.vals); err != nil {
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
