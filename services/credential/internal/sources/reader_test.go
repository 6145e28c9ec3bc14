package sources_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/exclusions"
	"github.com/provcred/credential/internal/sources/leie"
	"github.com/provcred/credential/internal/sources/nppes"
	"github.com/provcred/credential/internal/sources/sourcestest"
)

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// An open quote early in a big upload must fail near the limit, not buffer
// the rest of the file as one field.
func TestReaderBoundsOneRecord(t *testing.T) {
	t.Parallel()
	head := nppesFile(3, 0) + "\"1000000009,1,UNTERMINATED\n"
	rest := strings.Repeat("2000000000,1,LAST,FIRST,,207Q00000X\n", 4*sources.MaxRecordBytes/36)
	src := &countingReader{r: strings.NewReader(head + rest)}
	r, err := sources.NewReader(nppes.BulkFormat{}, src)
	if err != nil {
		t.Fatal(err)
	}
	rows := drain(r)
	var le *sources.LineError
	if !errors.As(r.Err(), &le) || !strings.Contains(le.Reason, "longer than") || le.Line != 5 {
		t.Fatalf("err = %v, want a LineError at line 5 about the record length", r.Err())
	}
	if len(rows) != 3 {
		t.Errorf("rows before the bad record = %d, want 3", len(rows))
	}
	if max := int64(sources.MaxRecordBytes + 64<<10); src.n > max {
		t.Errorf("read %d bytes for one record, want at most %d", src.n, max)
	}
	// A long but legal record still parses: every field at its limit.
	full := strings.Repeat("x", sources.MaxFieldBytes)
	long := nppesFile(0, 0) + "1000000009,1,LAST,FIRST,,\"" + full + "\"\n"
	if _, err := sourcestest.ParseAll(nppes.BulkFormat{}, long); err != nil {
		t.Fatalf("a field of %d bytes: %v", sources.MaxFieldBytes, err)
	}
}

const leieHeader = `"LASTNAME","FIRSTNAME","MIDNAME","BUSNAME","GENERAL","SPECIALTY","UPIN","NPI","DOB","ADDRESS","CITY","STATE","ZIP","EXCLTYPE","EXCLDATE","REINDATE","WAIVERDATE","WVRSTATE"`

func leieLine(last, first string) string {
	return `"` + last + `","` + first + `","","","IND","NURSE","","0000000000","19700101","1 MAIN","AUSTIN","TX","78701","1128a1","20200101","00000000","00000000",""`
}

var exclCol = sourcestest.ColumnIndex(exclusions.Columns)

// The byte stream under the CSV reader: what real tools add around the data
// (a byte order mark, a DOS end-of-file byte, Windows-1252 text) reads as
// the data, and what cannot be read is refused at its line, never stored
// with replacement characters.
func TestReaderInput(t *testing.T) {
	t.Parallel()
	cp1252 := func(s string) string {
		out, err := charmap.Windows1252.NewEncoder().String(s)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		name     string
		file     string
		last     []string // expected LASTNAME of each row
		encoding string
		wantLine int64
		wantErr  string
	}{
		{name: "BOM before a quoted header", file: "\ufeff" + leieHeader + "\r\n" + leieLine("DOE", "JANE") + "\r\n",
			last: []string{"DOE"}, encoding: sources.EncodingUTF8},
		{name: "BOM before an unquoted header", file: "\ufeff" + strings.ReplaceAll(leieHeader, `"`, "") + "\n" + leieLine("DOE", "JANE") + "\n",
			last: []string{"DOE"}, encoding: sources.EncodingUTF8},
		{name: "DOS end-of-file byte after the last line", file: leieHeader + "\r\n" + leieLine("DOE", "JANE") + "\r\n\x1a",
			last: []string{"DOE"}, encoding: sources.EncodingUTF8},
		{name: "DOS end-of-file byte ending the last line", file: leieHeader + "\r\n" + leieLine("DOE", "JANE") + "\x1a",
			last: []string{"DOE"}, encoding: sources.EncodingUTF8},
		{name: "UTF-8 accents", file: leieHeader + "\n" + leieLine("NÚÑEZ", "JOSÉ") + "\n",
			last: []string{"NÚÑEZ"}, encoding: sources.EncodingUTF8},
		{name: "Windows-1252 accents", file: cp1252(leieHeader + "\r\n" + leieLine("PEÑA", "ZOË") + "\r\n" + leieLine("O’NEILL", "RENÉE") + "\r\n"),
			last: []string{"PEÑA", "O’NEILL"}, encoding: sources.EncodingWindows1252},
		{name: "Windows-1252 after ASCII rows", file: leieHeader + "\n" + leieLine("DOE", "JANE") + "\n" + cp1252(leieLine("MÜLLER", "JÜRGEN")) + "\n",
			last: []string{"DOE", "MÜLLER"}, encoding: sources.EncodingWindows1252},
		{name: "Windows-1252 after UTF-8", file: leieHeader + "\n" + leieLine("NÚÑEZ", "JOSÉ") + "\n" + cp1252(leieLine("MÜLLER", "JÜRGEN")) + "\n",
			wantLine: 3, wantErr: `column "LASTNAME": the text is not valid UTF-8`},
		{name: "UTF-8 after Windows-1252", file: leieHeader + "\n" + cp1252(leieLine("MÜLLER", "JÜRGEN")) + "\n" + leieLine("NÚÑEZ", "JOSÉ") + "\n",
			wantLine: 3, wantErr: "mixes UTF-8 and Windows-1252"},
		{name: "neither encoding", file: leieHeader + "\n" + leieLine("DOE", "JA\x81NE") + "\n",
			wantLine: 2, wantErr: `column "FIRSTNAME": the text is neither UTF-8 nor Windows-1252`},
		{name: "field over the limit", file: leieHeader + "\n" + strings.Replace(leieLine("DOE", "JANE"), "1 MAIN", strings.Repeat("A", sources.MaxFieldBytes+1), 1) + "\n",
			wantLine: 2, wantErr: fmt.Sprintf(`column "ADDRESS" is longer than %d bytes`, sources.MaxFieldBytes)},
		{name: "1 MB name", file: leieHeader + "\n" + leieLine("DOE", "JANE") + "\n" + leieLine(strings.Repeat("N", 1_000_000), "JANE") + "\n",
			wantLine: 3, wantErr: "LASTNAME"},
		{name: "name over the key limit", file: leieHeader + "\n" + leieLine(strings.Repeat("N", sources.MaxKeyBytes+1), "JANE") + "\n",
			wantLine: 2, wantErr: fmt.Sprintf("LASTNAME is longer than %d bytes", sources.MaxKeyBytes)},
		{name: "name at the key limit", file: leieHeader + "\n" + leieLine(strings.Repeat("N", sources.MaxKeyBytes), "JANE") + "\n",
			last: []string{strings.Repeat("N", sources.MaxKeyBytes)}, encoding: sources.EncodingUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := sources.NewReader(leie.Format{}, strings.NewReader(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			rows := drain(r)
			if tt.wantErr != "" {
				var le *sources.LineError
				if !errors.As(r.Err(), &le) || le.Line != tt.wantLine || !strings.Contains(le.Reason, tt.wantErr) {
					t.Fatalf("err = %v, want line %d: %s", r.Err(), tt.wantLine, tt.wantErr)
				}
				return
			}
			if r.Err() != nil {
				t.Fatal(r.Err())
			}
			var got []string
			for _, row := range rows {
				got = append(got, row[exclCol("last_name")].(string))
				if rec := row[exclCol("record")].(string); strings.ContainsRune(rec, utf8.RuneError) || strings.ContainsRune(rec, '\x1a') {
					t.Errorf("record %q holds a replacement character or the end-of-file byte", rec)
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.last, "|") {
				t.Errorf("last names %q, want %q", got, tt.last)
			}
			if r.Encoding() != tt.encoding {
				t.Errorf("encoding %q, want %q", r.Encoding(), tt.encoding)
			}
		})
	}
}

// The digest of a Windows-1252 row is the digest of its bytes in the file,
// not of the transcoded text.
func TestReaderDigestBeforeTranscoding(t *testing.T) {
	t.Parallel()
	line, err := charmap.Windows1252.NewEncoder().String(leieLine("PEÑA", "ZOË") + "\r\n")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := sourcestest.ParseAll(leie.Format{}, "\ufeff"+leieHeader+"\r\n"+line+"\x1a")
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %d, err %v", len(rows), err)
	}
	sum := sha256.Sum256([]byte(line))
	if got := rows[0][exclCol("digest")]; got != hex.EncodeToString(sum[:]) {
		t.Errorf("digest %v is not the sha256 of the row's bytes", got)
	}
}

// FuzzTextInput: whatever the bytes, a row that loads holds valid UTF-8 and
// no U+FFFD that the file did not spell itself.
func FuzzTextInput(f *testing.F) {
	f.Add([]byte("\ufeff" + leieHeader + "\r\n" + leieLine("DOE", "JANE") + "\r\n\x1a"))
	f.Add([]byte(leieHeader + "\n" + leieLine("PE\xd1A", "ZO\xcb") + "\n"))
	f.Add([]byte(leieHeader + "\n" + leieLine("PE\x81A", "X") + "\n"))
	f.Fuzz(func(t *testing.T, file []byte) {
		rows := sourcestest.FuzzRows(t, leie.Format{}, string(file), exclCol)
		for _, r := range rows {
			for _, c := range []string{"last_name", "first_name", "middle_name", "business_name"} {
				v := r[exclCol(c)].(string)
				if !utf8.ValidString(v) || (strings.ContainsRune(v, utf8.RuneError) && !bytes.Contains(file, []byte("\ufffd"))) {
					t.Fatalf("%s = %q", c, v)
				}
			}
		}
	})
}
