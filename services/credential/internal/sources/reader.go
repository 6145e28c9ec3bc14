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
	lim    *recordLimit
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
	lim := &recordLimit{r: r, max: MaxRecordBytes}
	cr := csv.NewReader(lim)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &LineError{Line: 1, Reason: "the file is empty (no header)"}
	}
	if err != nil {
		return nil, csvError(err, 1)
	}
	lim.start = cr.InputOffset()
	header = append([]string(nil), header...) // ReuseRecord: the slice is overwritten by the next Read
	for i := range header {
		header[i] = CleanText(header[i])
	}
	p, err := f.Bind(header)
	if err != nil {
		return nil, &LineError{Line: 1, Reason: err.Error()}
	}
	return &Reader{r: cr, lim: lim, p: p, vals: make([]any, len(f.Columns())), fields: len(header), line: 1}, nil
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
	s.lim.start = s.r.InputOffset()
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

// MaxRecordBytes bounds one CSV record (NPPES rows, the widest, are a few
// KB). csv.Reader holds a whole record in memory, so without a bound a
// quote left open early in a multi-GB upload would buffer the rest of it.
const MaxRecordBytes = 1 << 20

// errRecordTooLong ends a read that passed MaxRecordBytes within one record.
var errRecordTooLong = fmt.Errorf("a record is longer than %d bytes (an unterminated quote?)", MaxRecordBytes)

// recordLimit fails the csv.Reader's reads once it has consumed more than
// max bytes past start, the end of the last whole record (InputOffset after
// it; InputOffset itself moves line by line, inside a quoted field too).
type recordLimit struct {
	r     io.Reader
	max   int64
	start int64
	read  int64
}

func (l *recordLimit) Read(p []byte) (int, error) {
	if l.read-l.start > l.max {
		return 0, errRecordTooLong
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	return n, err
}

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
