package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/provcred/platform/apiclient"
)

func init() {
	commands["import"] = command{
		Summary: "upload a source file (leie, sam, nppes, licenses) as the source's new version",
		Run:     runImport,
	}
}

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base, apiKey := connFlags(fs)
	source := fs.String("source", "", "source: leie, sam, nppes or licenses (required)")
	file := fs.String("file", "", "CSV file to upload (required)")
	fileDate := fs.String("file-date", "", "publisher's date of the file, YYYY-MM-DD (default: from the file name, if it has one)")
	kind := fs.String("kind", "", "full, supplement (LEIE YYMMEXCL/YYMMREIN.csv) or increment (NPPES weekly) (default: from the file name, else full)")
	allowShrink := fs.Bool("allow-shrink", false, "let a full list with far fewer rows than the active version replace it")
	quiet := fs.Bool("quiet", false, "no progress bar")
	asJSON := fs.Bool("json", false, "print the import record as JSON")
	timeout := fs.Duration("timeout", 2*time.Hour, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	if *source == "" || *file == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "credctl import: --source and --file are required")
		fs.Usage()
		return errUsage
	}
	if *fileDate != "" {
		if _, err := time.Parse("2006-01-02", *fileDate); err != nil {
			return fmt.Errorf("--file-date must be YYYY-MM-DD")
		}
	}
	f, err := os.Open(*file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}

	// The file is streamed from disk: the bar advances as bytes go out.
	var body io.Reader = f
	var bar *progressbar.ProgressBar
	if !*quiet {
		bar = progressbar.DefaultBytes(st.Size(), "uploading "+filepath.Base(*file))
		body = io.TeeReader(f, bar)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	start := time.Now()
	api := &apiclient.Client{BaseURL: *base, APIKey: *apiKey}
	rec, raw, err := api.ImportSourceWith(ctx, *source, body, st.Size(), apiclient.ImportOptions{
		FileName: filepath.Base(*file), FileDate: *fileDate, Kind: *kind, AllowShrink: *allowShrink})
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(stderr)
	}
	if err != nil {
		if status(err) == 0 {
			return fmt.Errorf("upload: %w", err)
		}
		return err
	}
	if *asJSON {
		_, err := stdout.Write(append(raw, '\n'))
		return err
	}
	r := rec
	version := "?"
	if r.Version != nil {
		version = fmt.Sprint(*r.Version)
	}
	fmt.Fprintf(stdout, "import %d: %s version %s %s, %d rows, %d bytes in %s (load %s ms, index %s ms, swap %s ms)\n",
		r.ID, r.Source, version, r.Status, r.Rows, r.Bytes, time.Since(start).Round(time.Millisecond),
		ms(r.LoadMS), ms(r.IndexMS), ms(r.SwapMS))
	if r.Changes != nil {
		fmt.Fprintf(stdout, "%s of %d rows applied to import %d: %d added, %d removed, %d replaced, %d matched nothing\n",
			r.Kind, r.FileRows, deref(r.Replaced), r.Changes.Added, r.Changes.Removed, r.Changes.Replaced, r.Changes.Unmatched)
	} else if r.Replaced != nil {
		fmt.Fprintf(stdout, "replaced import %d\n", *r.Replaced)
	}
	if r.Encoding != "" && r.Encoding != "utf-8" {
		fmt.Fprintf(stdout, "transcoded from %s\n", r.Encoding)
	}
	fmt.Fprintf(stdout, "sha256 %s\n", r.SHA256)
	if r.HookError != "" {
		fmt.Fprintf(stdout, "warning: re-screen after the import failed: %s\n", r.HookError)
	}
	return nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func ms(p *int64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}
