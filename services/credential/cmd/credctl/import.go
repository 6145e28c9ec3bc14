package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

func init() {
	commands["import"] = command{
		Summary: "upload a source file (leie, sam, nppes, licenses) as the source's new version",
		Run:     runImport,
	}
}

// importResult is the part of the import record credctl prints.
type importResult struct {
	ID       int64  `json:"id"`
	Source   string `json:"source"`
	Status   string `json:"status"`
	Version  *int   `json:"version"`
	Rows     int64  `json:"rows"`
	Bytes    int64  `json:"bytes"`
	SHA256   string `json:"sha256"`
	LoadMS   *int64 `json:"load_ms"`
	IndexMS  *int64 `json:"index_ms"`
	SwapMS   *int64 `json:"swap_ms"`
	Replaced *int64 `json:"replaced"`
	HookErr  string `json:"hook_error"`
}

type apiError struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
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

	q := url.Values{"file_name": {filepath.Base(*file)}}
	if *fileDate != "" {
		q.Set("file_date", *fileDate)
	}
	u := strings.TrimRight(*base, "/") + "/admin/imports/" + url.PathEscape(*source) + "?" + q.Encode()

	// The file is streamed from disk: the bar advances as bytes go out.
	var body io.Reader = f
	var bar *progressbar.ProgressBar
	if !*quiet {
		bar = progressbar.DefaultBytes(st.Size(), "uploading "+filepath.Base(*file))
		body = io.TeeReader(f, bar)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return err
	}
	req.ContentLength = st.Size()
	req.Header.Set("Content-Type", "text/csv")
	if *apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+*apiKey)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var ae apiError
		if json.Unmarshal(raw, &ae) == nil && ae.Code != "" {
			return fmt.Errorf("HTTP %d %s: %s", resp.StatusCode, ae.Code, ae.Detail)
		}
		return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, raw)
	}
	if *asJSON {
		_, err := stdout.Write(append(raw, '\n'))
		return err
	}
	var r importResult
	if err := json.Unmarshal(raw, &r); err != nil {
		return errors.New("the server's answer is not an import record")
	}
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
	if r.HookErr != "" {
		fmt.Fprintf(stdout, "warning: re-screen after the import failed: %s\n", r.HookErr)
	}
	return nil
}

func ms(p *int64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}
