package sources

import "strings"

// ParseAll reads a whole file in memory through f, for tests and fuzzing:
// every row's values (copied), or the *LineError that rejected the file.
func ParseAll(f Format, file string) ([][]any, error) {
	r, err := NewReader(f, strings.NewReader(file))
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
