package sources_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/nppes"
)

func nppesFile(rows int, badAt int) string {
	var b strings.Builder
	b.WriteString("NPI,Entity Type Code,Provider Last Name (Legal Name),Provider First Name,NPI Deactivation Date,Healthcare Provider Taxonomy Code_1\n")
	for i := 1; i <= rows; i++ {
		date := ""
		if i == badAt {
			date = "2020-01-01"
		}
		fmt.Fprintf(&b, "%010d,1,LAST%d,FIRST,%s,207Q00000X\n", 1000000000+i, i, date)
	}
	return b.String()
}

// drain reads every row from src, copying []byte values (the sources reuse them).
func drain(src interface {
	Next() bool
	Values() ([]any, error)
}) [][]any {
	var out [][]any
	for src.Next() {
		v, _ := src.Values()
		row := make([]any, len(v))
		for i, x := range v {
			if b, ok := x.([]byte); ok {
				x = string(b)
			}
			row[i] = x
		}
		out = append(out, row)
	}
	return out
}

func TestPipelineMatchesReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		rows, badAt int
	}{
		{"empty", 0, 0}, {"one batch", 10, 0}, {"exactly one batch", 512, 0}, {"several batches", 1500, 0},
		{"error in a later batch", 1500, 1200}, {"error on the first row", 5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := nppesFile(tt.rows, tt.badAt)
			r, err := sources.NewReader(nppes.BulkFormat{}, strings.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			want := drain(r)
			p, err := sources.NewPipeline(nppes.BulkFormat{}, strings.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			got := drain(p)
			p.Close()
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("pipeline gave %d rows, reader %d (or different values)", len(got), len(want))
			}
			if p.Rows() != int64(len(want)) {
				t.Errorf("Rows() = %d, want %d", p.Rows(), len(want))
			}
			var le, pe *sources.LineError
			errors.As(r.Err(), &le)
			errors.As(p.Err(), &pe)
			if (le == nil) != (pe == nil) || (le != nil && *le != *pe) {
				t.Fatalf("errors differ: reader %v, pipeline %v", r.Err(), p.Err())
			}
			if tt.badAt > 0 && (pe == nil || pe.Line != int64(tt.badAt)+1) {
				t.Errorf("error %v, want line %d", p.Err(), tt.badAt+1)
			}
		})
	}
}

func TestPipelineCloseStopsEarly(t *testing.T) {
	t.Parallel()
	p, err := sources.NewPipeline(nppes.BulkFormat{}, strings.NewReader(nppesFile(5000, 0)))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10 && p.Next(); i++ {
	}
	p.Close() // must not hang with the producer blocked on a full queue
}
