// Command credgen writes deterministic demo data: a provider roster, the
// source files that verify it (NPPES bulk CSV, LEIE UPDATED.csv, SAM
// exclusions extract, license roster) and expected.csv.
//
//	credgen -out DIR -providers N -seed S [-as-of YYYY-MM-DD] [-nppes-extra N] [-leie-extra N] [-sam-extra N] [-license-extra N] [-deltas] [-windows-1252]
//
// -deltas also writes the month's LEIE supplements (YYMMEXCL.csv,
// YYMMREIN.csv) and the week's NPPES increment (npidata_pfile_<from>-<to>.csv);
// -windows-1252 writes licenses.csv as an old Windows export would.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/provcred/credential/internal/gen"
)

func main() {
	const providers = 200
	def := gen.DefaultOptions(providers)
	out := flag.String("out", "data", "output directory")
	n := flag.Int("providers", providers, "providers in the roster")
	seed := flag.Uint64("seed", 1, "random seed (same seed and as-of date: same files)")
	asOf := flag.String("as-of", "", "day the data is current on, YYYY-MM-DD (default today, UTC)")
	edge := flag.Float64("edge-rate", def.EdgeRate, "share of providers given a seeded edge case, from 0 to 1")
	// The extra rows' defaults follow -providers (gen.DefaultOptions): a flag
	// given, 0 included, replaces its default.
	nppesExtra := flag.Int("nppes-extra", 0, "unrelated NPPES rows (default 2 x providers)")
	leieExtra := flag.Int("leie-extra", 0, "unrelated LEIE rows (default 1 x providers, at least 20)")
	samExtra := flag.Int("sam-extra", 0, "unrelated SAM rows (default providers/2, at least 10)")
	licExtra := flag.Int("license-extra", 0, "unrelated license rows (default providers/2, at least 10)")
	deltas := flag.Bool("deltas", false, "also write the LEIE supplements and the NPPES weekly increment")
	win := flag.Bool("windows-1252", false, "write licenses.csv in Windows-1252 with a trailing DOS end-of-file byte")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "credgen: unknown argument %q\n", flag.Arg(0))
		flag.Usage()
		os.Exit(2)
	}
	if *n < 1 {
		fmt.Fprintln(os.Stderr, "credgen: -providers must be at least 1")
		os.Exit(2)
	}
	if *edge < 0 || *edge > 1 {
		fmt.Fprintln(os.Stderr, "credgen: -edge-rate must be from 0 to 1")
		os.Exit(2)
	}
	o := gen.DefaultOptions(*n)
	o.Seed, o.EdgeRate, o.Deltas, o.Windows1252 = *seed, *edge, *deltas, *win
	extras := map[string]struct {
		v   *int
		opt *int
	}{"nppes-extra": {nppesExtra, &o.NPPESExtra}, "leie-extra": {leieExtra, &o.LEIEExtra},
		"sam-extra": {samExtra, &o.SAMExtra}, "license-extra": {licExtra, &o.LicenseExtra}}
	var bad string
	flag.Visit(func(f *flag.Flag) {
		if x, ok := extras[f.Name]; ok {
			if *x.v < 0 {
				bad = f.Name
			}
			*x.opt = *x.v
		}
	})
	if bad != "" {
		fmt.Fprintf(os.Stderr, "credgen: -%s must not be negative\n", bad)
		os.Exit(2)
	}
	if *asOf != "" {
		t, err := time.Parse("2006-01-02", *asOf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "credgen: -as-of must be YYYY-MM-DD")
			os.Exit(2)
		}
		o.AsOf = t
	}
	paths, err := gen.WriteAll(*out, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "credgen:", err)
		os.Exit(1)
	}
	for _, p := range paths {
		fmt.Println(p)
	}
}
