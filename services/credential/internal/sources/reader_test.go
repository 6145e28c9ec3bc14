package sources_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/provcred/credential/internal/sources"
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
	// A long but legal record still parses.
	long := nppesFile(0, 0) + "1000000009,1,\"" + strings.Repeat("x", sources.MaxRecordBytes/2) + "\",FIRST,,207Q00000X\n"
	if _, err := sourcestest.ParseAll(nppes.BulkFormat{}, long); err != nil {
		t.Fatalf("a %d-byte record: %v", sources.MaxRecordBytes/2, err)
	}
}
