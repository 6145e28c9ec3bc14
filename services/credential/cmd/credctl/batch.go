package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/provcred/platform/apiclient"
	"github.com/provcred/platform/domain"
)

func init() {
	commands["batch"] = command{
		Summary: "credential a roster file or a list of ids as a durable batch (submit, status, cancel)",
		Run:     runBatch,
	}
}

const batchUsage = `usage:
  credctl batch submit (--file roster.csv | --ids id1,id2,... | --ids-file ids.txt) [flags]
  credctl batch status <batch_id> [--json]
  credctl batch cancel <batch_id>`

func runBatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, batchUsage)
		return errUsage
	}
	switch args[0] {
	case "submit":
		return batchSubmit(ctx, args[1:], stdout, stderr)
	case "status":
		return batchStatus(ctx, args[1:], stdout, stderr)
	case "cancel":
		return batchCancel(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stderr, batchUsage)
		return nil
	}
	fmt.Fprintf(stderr, "credctl batch: unknown subcommand %q\n%s\n", args[0], batchUsage)
	return errUsage
}

// batchProgress is GET /results/batch/{id}'s answer.
type batchProgress = apiclient.Batch

// stateOrder is the order states are printed in.
var stateOrder = []string{string(domain.Approved), string(domain.Denied), string(domain.NeedsReview),
	string(domain.Incomplete), "unknown_provider", "failed", "canceled", "running", "queued"}

// client is credctl's connection to the API: the typed client
// (platform/apiclient, the one the contract test checks) with a deadline
// per call.
type client struct {
	base, apiKey string
	// timeout bounds one request, answer included (0: none). Without it a
	// server that accepts the connection but never answers hangs the
	// command, and a poll never gets its retry.
	timeout time.Duration
}

// Request timeouts: a submission uploads a roster (the gateway allows
// IMPORT_TIMEOUT, 30 m, for it); the other calls are small reads.
const (
	submitTimeout = 30 * time.Minute
	callTimeout   = time.Minute
)

func (c *client) api() *apiclient.Client { return &apiclient.Client{BaseURL: c.base, APIKey: c.apiKey} }

// call runs f with the per-call deadline.
func (c *client) call(ctx context.Context, f func(ctx context.Context, api *apiclient.Client) (*batchProgress, []byte, error)) (*batchProgress, []byte, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	return f(ctx, c.api())
}

// status is the HTTP status of err's answer (0: none came).
func status(err error) int {
	var ae *apiclient.Error
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

func batchSubmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("batch submit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base, apiKey := connFlags(fs)
	file := fs.String("file", "", "roster CSV to upsert and credential (columns: docs/batch.md)")
	ids := fs.String("ids", "", "comma-separated provider ids")
	idsFile := fs.String("ids-file", "", "file with one provider id per line")
	key := fs.String("idempotency-key", "", "Idempotency-Key; default: random per run, reused on retries")
	follow := fs.Bool("follow", true, "poll the batch and show a progress bar until it ends")
	interval := fs.Duration("interval", time.Second, "how often to poll the progress")
	quiet := fs.Bool("quiet", false, "no progress bar")
	asJSON := fs.Bool("json", false, "print the final progress as JSON")
	timeout := fs.Duration("timeout", 24*time.Hour, "stop following after this long (the batch keeps running)")
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	given := 0
	for _, s := range []string{*file, *ids, *idsFile} {
		if s != "" {
			given++
		}
	}
	if given != 1 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "credctl batch submit: give exactly one of --file, --ids, --ids-file")
		fs.Usage()
		return errUsage
	}
	var body []byte
	ctype := "application/json"
	switch {
	case *file != "":
		b, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		body, ctype = b, "text/csv"
	default:
		list, err := idList(*ids, *idsFile)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return errors.New("no provider ids given")
		}
		body, _ = json.Marshal(map[string][]string{"provider_ids": list})
	}
	if *key == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		*key = "credctl-" + hex.EncodeToString(b)
	}
	c := &client{base: *base, apiKey: *apiKey, timeout: submitTimeout}

	// Transport errors and 5xx are retried with the same key: the server
	// answers a retry with the batch the first attempt made, never a second.
	var p *batchProgress
	var raw []byte
	var err error
	for attempt := 1; ; attempt++ {
		p, raw, err = c.call(ctx, func(ctx context.Context, api *apiclient.Client) (*batchProgress, []byte, error) {
			return api.SubmitBatch(ctx, ctype, bytes.NewReader(body), *key)
		})
		if code := status(err); err == nil || attempt == 3 || (code != 0 && code < 500) || ctx.Err() != nil {
			break
		}
		fmt.Fprintf(stderr, "submit failed (%v); retrying with the same Idempotency-Key\n", err)
		time.Sleep(time.Duration(attempt) * time.Second)
	}
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	if p.BatchID == "" {
		return errors.New("the server's answer is not a batch")
	}
	note := ""
	if p.Replayed {
		note = " (already submitted with this Idempotency-Key)"
	}
	fmt.Fprintf(stderr, "batch %s: %d providers%s; status %s\n", p.BatchID, p.Total, note, p.StatusURL)
	if p.Duplicates > 0 {
		fmt.Fprintf(stderr, "%d duplicate ids removed\n", p.Duplicates)
	}
	if n := len(p.UnknownIDs); n > 0 {
		fmt.Fprintf(stderr, "%d unknown provider ids (e.g. %s)\n", p.Counts["unknown_provider"], strings.Join(p.UnknownIDs[:min(n, 5)], ", "))
	}
	if !*follow {
		return printProgress(stdout, p, *asJSON, raw)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	final, raw, err := followBatch(ctx, &client{base: c.base, apiKey: c.apiKey, timeout: callTimeout}, p.BatchID, *interval, *quiet, stderr)
	if err != nil {
		return err
	}
	return printProgress(stdout, final, *asJSON, raw)
}

// followBatch polls the progress with a bar until the batch ends.
func followBatch(ctx context.Context, c *client, id string, every time.Duration, quiet bool, stderr io.Writer) (*batchProgress, []byte, error) {
	var bar *progressbar.ProgressBar
	defer func() {
		if bar != nil {
			_ = bar.Exit()
			fmt.Fprintln(stderr)
		}
	}()
	failures := 0
	for {
		p, raw, err := c.call(ctx, func(ctx context.Context, api *apiclient.Client) (*batchProgress, []byte, error) {
			return api.BatchProgress(ctx, id, 1)
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, fmt.Errorf("stopped following (the batch keeps running; `credctl batch status %s`): %w", id, ctx.Err())
			}
			// The gateway or a replica may blip; the batch is durable, keep polling.
			failures++
			if failures >= 30 {
				return nil, nil, fmt.Errorf("progress: %w", err)
			}
		} else {
			failures = 0
			if !quiet {
				if bar == nil {
					bar = progressbar.NewOptions(p.Total, progressbar.OptionSetWriter(stderr),
						progressbar.OptionSetDescription("credentialing"), progressbar.OptionShowCount(),
						progressbar.OptionShowIts(), progressbar.OptionSetItsString("providers"),
						progressbar.OptionSetPredictTime(true), progressbar.OptionSetWidth(30))
				}
				_ = bar.Set(p.Done)
				bar.Describe(fmt.Sprintf("credentialing (%d approved, %d review, %d denied, %d incomplete)",
					p.Counts[string(domain.Approved)], p.Counts[string(domain.NeedsReview)],
					p.Counts[string(domain.Denied)], p.Counts[string(domain.Incomplete)]))
			}
			if p.Ended() {
				return p, raw, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("stopped following (the batch keeps running; `credctl batch status %s`): %w", id, ctx.Err())
		case <-time.After(every):
		}
	}
}

func printProgress(w io.Writer, p *batchProgress, asJSON bool, raw []byte) error {
	if asJSON {
		_, err := w.Write(append(bytes.TrimSpace(raw), '\n'))
		return err
	}
	fmt.Fprintf(w, "batch %s %s: %d/%d done", p.BatchID, p.Status, p.Done, p.Total)
	if p.ThroughputPerSecond > 0 {
		fmt.Fprintf(w, ", %.1f providers/s over %.1fs", p.ThroughputPerSecond, p.ElapsedSeconds)
	}
	if !p.Ended() && p.EstimatedSecondsLeft != nil {
		fmt.Fprintf(w, ", about %s left", (time.Duration(*p.EstimatedSecondsLeft) * time.Second).String())
	}
	fmt.Fprintln(w)
	for _, st := range stateOrder {
		if n := p.Counts[st]; n > 0 {
			fmt.Fprintf(w, "  %-17s %d\n", st, n)
		}
	}
	return nil
}

// idList reads --ids or --ids-file (one id per line, # comments).
func idList(ids, file string) ([]string, error) {
	var out []string
	if ids != "" {
		for _, s := range strings.Split(ids, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		if s != "" && !strings.HasPrefix(s, "#") {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}

func batchStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("batch status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base, apiKey := connFlags(fs)
	asJSON := fs.Bool("json", false, "print the progress as JSON")
	if err := fs.Parse(reorder(args)); err != nil {
		return parseError(err)
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, batchUsage)
		return errUsage
	}
	c := &client{base: *base, apiKey: *apiKey, timeout: callTimeout}
	p, raw, err := c.call(ctx, func(ctx context.Context, api *apiclient.Client) (*batchProgress, []byte, error) {
		return api.BatchProgress(ctx, fs.Arg(0), 1)
	})
	if err != nil {
		return err
	}
	return printProgress(stdout, p, *asJSON, raw)
}

func batchCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("batch cancel", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base, apiKey := connFlags(fs)
	if err := fs.Parse(reorder(args)); err != nil {
		return parseError(err)
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, batchUsage)
		return errUsage
	}
	c := &client{base: *base, apiKey: *apiKey, timeout: callTimeout}
	p, raw, err := c.call(ctx, func(ctx context.Context, api *apiclient.Client) (*batchProgress, []byte, error) {
		return api.CancelBatch(ctx, fs.Arg(0))
	})
	if err != nil {
		return err
	}
	n := 0
	if p.ItemsCanceled != nil {
		n = *p.ItemsCanceled
	}
	fmt.Fprintf(stdout, "canceled %d providers not yet verified; ", n)
	return printProgress(stdout, p, false, raw)
}

// reorder moves flags before the positional batch id, so both
// `status ID --json` and `status --json ID` work.
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && (a == "--url" || a == "-url" || a == "--api-key" || a == "-api-key") && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}
