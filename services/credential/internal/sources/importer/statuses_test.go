package importer

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/provcred/credential/internal/sources/licenses"
)

// A license roster's status words the status table does not know are
// reported on the import record (the answer and GET), most frequent first,
// with the first line carrying each; a configured word is known.
func TestLicenseImportReportsUnknownStatuses(t *testing.T) {
	t.Parallel()
	file := strings.Join(licenses.Columns, ",") + "\n"
	for i, status := range []string{"Active", "Pending Board Action", "In Good Standing", "Under  Investigation",
		"pending board action", "Emeritus", "Lapsed"} {
		file += "IL," + string(rune('1'+i)) + ",MD," + status + ",,2099-01-01,Lee,Ann,,\n"
	}
	for _, c := range []struct {
		name      string
		overrides string
		want      []licenses.UnknownStatus
	}{
		{"default table", "", []licenses.UnknownStatus{{Status: "pending board action", Rows: 2, FirstLine: 3},
			{Status: "emeritus", Rows: 1, FirstLine: 7}, {Status: "under investigation", Rows: 1, FirstLine: 5}}},
		{"configured", "Emeritus=inactive,Pending Board Action=suspended,Under Investigation=suspended", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			im, _ := newImporter(t)
			tbl, err := licenses.NewStatusTable(c.overrides)
			if err != nil {
				t.Fatal(err)
			}
			im.LicenseStatuses = tbl
			ctx := context.Background()
			rec, err := im.Import(ctx, Request{Source: "licenses", FileName: "roster.csv", Actor: "t", Body: strings.NewReader(file)})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rec.UnknownStatuses, c.want) {
				t.Errorf("answer: unknown statuses %+v, want %+v", rec.UnknownStatuses, c.want)
			}
			got, err := im.Get(ctx, rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.UnknownStatuses, c.want) {
				t.Errorf("GET: unknown statuses %+v, want %+v", got.UnknownStatuses, c.want)
			}
		})
	}
}
