package importer

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/credential/internal/sources/sourcestest"
)

// Every real published sample loads, as it is and with a UTF-8 byte order
// mark in front (what a spreadsheet export adds; it used to fail the LEIE,
// SAM and NPPES files with "bare quote"), and every row's digest is what
// `sed -n '<line>p' FILE | sha256sum` prints for its line of that file.
func TestRealSamplesLoad(t *testing.T) {
	t.Parallel()
	files := []struct {
		file, source, name string
		kind               string
		rows               int64
	}{
		{"leie_psm_UPDATED_2017sample.csv", sources.LEIE, "UPDATED.csv", sources.KindFull, 335},
		{"leie_psm_1701REIN.csv", sources.LEIE, "1701REIN.csv", sources.KindSupplement, 13},
		{"leie_psm_1702REIN.csv", sources.LEIE, "1702REIN.csv", sources.KindSupplement, 77},
		{"leie_psm_1703REIN.csv", sources.LEIE, "1703REIN.csv", sources.KindSupplement, 55},
		{"leie_psm_1704REIN.csv", sources.LEIE, "1704REIN.csv", sources.KindSupplement, 33},
		{"sam_v1_2016_parse-samgov.csv", sources.SAM, "SAM_Exclusions_Public_Extract_16001.CSV", sources.KindFull, 4},
		{"sam_v2_2023_parse-samgov.csv", sources.SAM, "SAM_Exclusions_Public_Extract_V2_23320.CSV", sources.KindFull, 16},
		{"nppes_bfd_npidata_8rows.csv", sources.NPPES, "npidata_pfile_20050523-20240609.csv", sources.KindFull, 8},
	}
	for _, bom := range []bool{false, true} {
		t.Run(fmt.Sprintf("bom=%v", bom), func(t *testing.T) {
			t.Parallel()
			im, pool := newImporter(t)
			ctx := context.Background()
			for _, f := range files {
				body := sourcestest.RealData(t, f.file)
				if bom {
					body = append([]byte("\ufeff"), body...)
				}
				rec, err := im.Import(ctx, Request{Source: f.source, FileName: f.name, Body: strings.NewReader(string(body))})
				if err != nil {
					t.Fatalf("%s: %v", f.file, err)
				}
				if rec.Kind != f.kind || rec.FileRows != f.rows || rec.Encoding != sources.EncodingUTF8 || rec.Bytes != int64(len(body)) ||
					rec.SHA256 != sha(body) {
					t.Errorf("%s: record %+v", f.file, rec)
				}
				parent := map[string]string{sources.LEIE: "exclusion_rows", sources.SAM: "exclusion_rows", sources.NPPES: "nppes_rows"}[f.source]
				rows, err := pool.Query(ctx, `SELECT line, digest FROM `+parent+` WHERE import_id = $1 AND file_import_id = $1`, rec.ID)
				if err != nil {
					t.Fatal(err)
				}
				fileLines := lines(body)
				n := int64(0)
				for rows.Next() {
					var line int64
					var dg string
					if err := rows.Scan(&line, &dg); err != nil {
						t.Fatal(err)
					}
					if dg != sha(fileLines[line-1]) {
						t.Errorf("%s line %d: digest %s is not the line's", f.file, line, dg)
					}
					n++
				}
				if rows.Err() != nil {
					t.Fatal(rows.Err())
				}
				// A supplement's reinstatements leave the version; none of these
				// is in the sample, so each is a change of its own.
				if f.kind == sources.KindSupplement {
					n = rec.Changes.Removed + rec.Changes.Unmatched
				}
				if n != f.rows {
					t.Errorf("%s: %d rows checked, want %d", f.file, n, f.rows)
				}
			}
		})
	}
}
