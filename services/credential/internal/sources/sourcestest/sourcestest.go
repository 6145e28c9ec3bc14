// Package sourcestest holds the table-test and fuzz helpers every source
// format's tests share: parse a whole file, expect one row or a line error,
// find a column by name, and the property every parser's fuzz target checks.
package sourcestest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provcred/credential/internal/sources"
)

// ParseAll reads a whole file in memory through f, for tests and fuzzing:
// every row's values (copied), or the *sources.LineError that rejected the file.
func ParseAll(f sources.Format, file string) ([][]any, error) {
	r, err := sources.NewReader(f, strings.NewReader(file))
	if err != nil {
		return nil, err
	}
	var out [][]any
	for r.Next() {
		v, _ := r.Values()
		row := make([]any, len(v))
		for i, x := range v {
			if b, ok := x.([]byte); ok {
				x = string(b) // the reader reuses its buffers
			}
			row[i] = x
		}
		out = append(out, row)
	}
	return out, r.Err()
}

// ExpectRow parses file through f for a table test. With wantErr set it
// asserts that the file is rejected by a *sources.LineError at wantLine whose reason
// contains wantErr, and returns false; otherwise it asserts exactly one row
// and checks each column named in want (col maps a name to its position).
func ExpectRow(t testing.TB, f sources.Format, file string, wantLine int64, wantErr string,
	col func(string) int, want map[string]any) ([]any, bool) {
	t.Helper()
	rows, err := ParseAll(f, file)
	if wantErr != "" {
		var le *sources.LineError
		if !errors.As(err, &le) || le.Line != wantLine || !strings.Contains(le.Reason, wantErr) {
			t.Fatalf("err = %v, want line %d containing %q", err, wantLine, wantErr)
		}
		return nil, false
	}
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %d, err %v", len(rows), err)
	}
	for k, w := range want {
		if got := rows[0][col(k)]; got != w {
			t.Errorf("%s = %#v, want %#v", k, got, w)
		}
	}
	return rows[0], true
}

// ColumnIndex returns a lookup of a column's position in cols, for tests
// reading parsed rows by name; an unknown name panics (a typo in the test).
func ColumnIndex(cols []string) func(string) int {
	return func(name string) int {
		for i, c := range cols {
			if c == name {
				return i
			}
		}
		panic("no column " + name)
	}
}

// FuzzRows is the shared property of every format's fuzz target: a rejected
// file is rejected by a *sources.LineError that names a line, and every accepted row
// carries its raw record as valid JSON. It returns the rows (nil when the
// file was rejected) for the format's own checks.
func FuzzRows(t testing.TB, f sources.Format, file string, col func(string) int) [][]any {
	t.Helper()
	rows, err := ParseAll(f, file)
	if err != nil {
		var le *sources.LineError
		if !errors.As(err, &le) || le.Line < 1 {
			t.Fatalf("error %v is not a LineError with a line", err)
		}
		return nil
	}
	for _, r := range rows {
		if s, _ := r[col("record")].(string); !json.Valid([]byte(s)) {
			t.Fatalf("record %q is not JSON", s)
		}
	}
	return rows
}

// RealData reads a file of the real published samples (../shared/realdata
// beside the repository, or $REALDATA_DIR). They are read at test time,
// never copied into the repository; a missing directory fails the test
// rather than skipping what it checks.
func RealData(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RealDataDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RealDataDir finds the real samples' directory: $REALDATA_DIR, else the
// first shared/realdata found walking up from the working directory (the
// repository's parent holds it, for a worktree its parent's parent).
func RealDataDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("REALDATA_DIR"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, "shared", "realdata")); err == nil && fi.IsDir() {
			return filepath.Join(dir, "shared", "realdata")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("the real samples (shared/realdata) are not beside the repository; set REALDATA_DIR")
		}
		dir = parent
	}
}
