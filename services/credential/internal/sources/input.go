package sources

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Encodings a source file may come in; the import record says which one it was.
const (
	EncodingUTF8        = "utf-8"
	EncodingWindows1252 = "windows-1252"
)

// MaxRecordBytes bounds one CSV record (NPPES rows, the widest, are a few
// KB). csv.Reader holds a whole record in memory, so without a bound a
// quote left open early in a multi-GB upload would buffer the rest of it.
const MaxRecordBytes = 1 << 20

// errRecordTooLong ends a read that passed MaxRecordBytes within one record.
var errRecordTooLong = fmt.Errorf("a record is longer than %d bytes (an unterminated quote?)", MaxRecordBytes)

var utf8BOM = []byte("\xef\xbb\xbf")

// dosEOF is the end-of-file mark (Ctrl-Z) DOS-era tools still append.
const dosEOF = 0x1a

// input is the byte stream the CSV reader parses. It is the upload with a
// leading UTF-8 byte order mark and a trailing DOS end-of-file byte removed
// (spreadsheet exports add the one, old tools the other; a BOM left in front
// of a quoted header is a "bare quote" to encoding/csv), reads past
// MaxRecordBytes within one record fail, and it keeps the bytes of the
// records not yet taken, so a row's digest is the digest of its bytes as
// they stand in the file.
type input struct {
	r     *bufio.Reader
	buf   []byte // bytes handed to the CSV reader from offset base on
	base  int64  // stream offset of buf[0]
	read  int64  // bytes handed to the CSV reader so far
	start int64  // end of the last record taken: where the next one begins
	began bool
	keep  bool // keep the bytes for take; false: a plain filtered stream
}

func newInput(r io.Reader) *input {
	return &input{r: bufio.NewReaderSize(r, 64<<10), keep: true}
}

// NewTextInput returns r without a leading UTF-8 byte order mark and a
// trailing DOS end-of-file byte, as the source importers read it, for the
// other CSV uploads (the provider roster) to read the same way.
func NewTextInput(r io.Reader) io.Reader {
	return &input{r: bufio.NewReaderSize(r, 64<<10)}
}

func (in *input) Read(p []byte) (int, error) {
	if !in.began {
		in.began = true
		if b, _ := in.r.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
			_, _ = in.r.Discard(len(utf8BOM))
		}
	}
	if in.keep && in.read-in.start > MaxRecordBytes {
		return 0, errRecordTooLong
	}
	n, err := in.r.Read(p)
	if n > 0 && p[n-1] == dosEOF {
		// Only the file's last byte is the mark; Peek waits for more input
		// as the next Read would have.
		if _, perr := in.r.Peek(1); errors.Is(perr, io.EOF) {
			n--
			if err == nil {
				err = io.EOF
			}
		}
	}
	if in.keep {
		in.buf = append(in.buf, p[:n]...)
	}
	in.read += int64(n)
	return n, err
}

// take returns the bytes of the record that ends at stream offset end (the
// CSV reader's InputOffset after it), with the blank lines encoding/csv
// skips before it left out, and forgets everything before end. The slice
// is valid until the next Read.
func (in *input) take(end int64) []byte {
	from, to := in.start-in.base, end-in.base
	if from < 0 || to > int64(len(in.buf)) || from > to {
		return nil // cannot happen: the CSV reader only consumes what Read returned
	}
	raw := in.buf[from:to]
	for {
		if len(raw) > 0 && raw[0] == '\n' {
			raw = raw[1:]
		} else if len(raw) > 1 && raw[0] == '\r' && raw[1] == '\n' {
			raw = raw[2:]
		} else {
			break
		}
	}
	in.start = end
	// Drop the bytes before end once they are most of the buffer: compacting
	// after every record would copy the read-ahead again and again.
	if dead := end - in.base; dead > 64<<10 && dead*2 > int64(len(in.buf)) {
		n := copy(in.buf, in.buf[dead:])
		in.buf = in.buf[:n]
		in.base = end
	}
	return raw
}

// textDecoder turns a file's fields into UTF-8. A file is UTF-8 until a
// field that is not valid UTF-8 shows it to be Windows-1252 (what Excel and
// older Windows tools save): that field and every later one are transcoded.
// A file mixing both (valid non-ASCII UTF-8 in one field, Windows-1252 in
// another) or holding bytes that are neither is refused rather than stored
// with U+FFFD in place of letters.
type textDecoder struct {
	encoding string // "" until the first non-ASCII field
	dec      interface {
		String(string) (string, error)
	}
}

// decode returns s as UTF-8, or the reason it cannot be read.
func (d *textDecoder) decode(s string) (string, error) {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return s, nil
	}
	if utf8.ValidString(s) {
		if d.encoding == EncodingWindows1252 {
			return "", errors.New("the file mixes UTF-8 and Windows-1252 text (earlier lines are Windows-1252)")
		}
		d.encoding = EncodingUTF8
		return s, nil
	}
	if d.encoding == EncodingUTF8 {
		return "", errors.New("the text is not valid UTF-8 (earlier lines are UTF-8)")
	}
	if !windows1252(s) {
		return "", errors.New("the text is neither UTF-8 nor Windows-1252")
	}
	if d.dec == nil {
		d.dec = charmap.Windows1252.NewDecoder()
	}
	out, err := d.dec.String(s)
	if err != nil {
		return "", fmt.Errorf("transcoding from Windows-1252: %w", err)
	}
	d.encoding = EncodingWindows1252
	return out, nil
}

// windows1252 reports whether s uses only bytes Windows-1252 defines: five
// of its 0x80-0x9F bytes have no character.
func windows1252(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case 0x81, 0x8d, 0x8f, 0x90, 0x9d:
			return false
		}
	}
	return true
}

// Encoding is the file's encoding: EncodingWindows1252 once a field was
// transcoded, else EncodingUTF8 (ASCII is both).
func (d *textDecoder) Encoding() string {
	if d.encoding == "" {
		return EncodingUTF8
	}
	return d.encoding
}
