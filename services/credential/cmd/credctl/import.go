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
	quiet := fs.Bool("quiet", false, "no progress bar")
	asJSON := fs.Bool("json", false, "print the import record as JSON")
	timeout := fs.Duration("timeout", 2*time.Hour, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return errUsage
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
	rec, raw, err := api.ImportSource(ctx, *source, body, st.Size(), filepath.Base(*file), *fileDate)
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
	if r.Replaced != nil {
		fmt.Fprintf(stdout, "replaced import %d\n", *r.Replaced)
	}
	fmt.Fprintf(stdout, "sha256 %s\n", r.SHA256)
	if r.HookError != "" {
		fmt.Fprintf(stdout, "warning: re-screen after the import failed: %s\n", r.HookError)
	}
	return nil
}

func ms(p *int64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}
