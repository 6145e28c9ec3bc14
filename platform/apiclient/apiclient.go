// Package apiclient is a small typed client of the public API (through the
// gateway), for the calls credctl makes: source imports and batches. Its
// types mirror the OpenAPI document's schemas (Import, Batch, Error), and
// the end-to-end contract test sends its requests through the validating
// transport, so a drift between this client, the document and the services
// fails the suite. (Why not a generated client: see docs/api.md.)
package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls the API at BaseURL with APIKey. HTTP is the transport
// (http.DefaultClient when nil); per-call deadlines come from the context.
type Client struct {
	BaseURL string
	APIKey  string
	HTTP    *http.Client
}

// Error is an API error answer ({"code","detail"}) with its status.
type Error struct {
	Status int         `json:"-"`
	Code   string      `json:"code"`
	Detail string      `json:"detail"`
	Field  string      `json:"field,omitempty"`
	Errors []LineError `json:"errors,omitempty"`
	// Body is the answer as sent, when it was not the error schema.
	Body string `json:"-"`
}

// LineError is a bad line of an uploaded file.
type LineError struct {
	Line   int    `json:"line"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d: %.200s", e.Status, e.Body)
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Detail)
}

// Import is an import record (schema Import).
type Import struct {
	ID          int64      `json:"id"`
	Source      string     `json:"source"`
	Status      string     `json:"status"`
	Version     *int       `json:"version,omitempty"`
	FileName    string     `json:"file_name"`
	SHA256      string     `json:"sha256"`
	Bytes       int64      `json:"bytes"`
	FileDate    *time.Time `json:"file_date,omitempty"`
	Rows        int64      `json:"rows"`
	Error       string     `json:"error,omitempty"`
	ErrorLine   *int64     `json:"error_line,omitempty"`
	Actor       string     `json:"actor"`
	LoadMS      *int64     `json:"load_ms,omitempty"`
	IndexMS     *int64     `json:"index_ms,omitempty"`
	SwapMS      *int64     `json:"swap_ms,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
	Replaced    *int64     `json:"replaced,omitempty"`
	HookError   string     `json:"hook_error,omitempty"`
	Kind        string     `json:"kind"`
	Encoding    string     `json:"encoding"`
	FileRows    int64      `json:"file_rows"`
	Changes     *Changes   `json:"changes,omitempty"`
}

// Changes is what a supplement or increment did to the version it was
// applied to (schema ImportChanges).
type Changes struct {
	Added     int64 `json:"added"`
	Removed   int64 `json:"removed"`
	Replaced  int64 `json:"replaced"`
	Unmatched int64 `json:"unmatched"`
}

// ImportOptions are an upload's optional query parameters.
type ImportOptions struct {
	FileName string
	// FileDate is YYYY-MM-DD.
	FileDate string
	// Kind is full, supplement or increment ("": from the file name).
	Kind string
	// AllowShrink lets a full list with far fewer rows than the active version replace it.
	AllowShrink bool
}

// Batch is a batch's progress (schema Batch).
type Batch struct {
	BatchID              string         `json:"batch_id"`
	Status               string         `json:"status"`
	StatusURL            string         `json:"status_url"`
	Source               string         `json:"source"`
	Actor                string         `json:"actor"`
	Total                int            `json:"total"`
	Duplicates           int            `json:"duplicates_removed"`
	Counts               map[string]int `json:"counts"`
	Done                 int            `json:"done"`
	CreatedAt            time.Time      `json:"created_at"`
	StartedAt            *time.Time     `json:"started_at"`
	FinishedAt           *time.Time     `json:"finished_at"`
	CanceledAt           *time.Time     `json:"canceled_at,omitempty"`
	ElapsedSeconds       float64        `json:"elapsed_seconds"`
	ThroughputPerSecond  float64        `json:"throughput_per_second"`
	EstimatedSecondsLeft *float64       `json:"estimated_seconds_left"`
	Items                []BatchItem    `json:"items,omitempty"`
	NextCursor           string         `json:"next_cursor,omitempty"`
	UnknownIDs           []string       `json:"unknown_ids,omitempty"`
	Replayed             bool           `json:"replayed,omitempty"`
	ItemsCanceled        *int           `json:"items_canceled,omitempty"`
}

// BatchItem is one provider of a batch (schema BatchItem).
type BatchItem struct {
	ProviderID string     `json:"provider_id"`
	State      string     `json:"state"`
	RunID      *string    `json:"run_id"`
	Attempts   int        `json:"attempts"`
	LastError  string     `json:"last_error,omitempty"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// Ended reports whether the batch will not change any more.
func (b *Batch) Ended() bool { return b.Status == "finished" || b.Status == "canceled" }

// ImportSource uploads a source file (POST /admin/imports/{source}),
// streaming body; size is its length (-1 when unknown). fileName and
// fileDate (YYYY-MM-DD) are optional.
func (c *Client) ImportSource(ctx context.Context, source string, body io.Reader, size int64, fileName, fileDate string) (*Import, []byte, error) {
	return c.ImportSourceWith(ctx, source, body, size, ImportOptions{FileName: fileName, FileDate: fileDate})
}

// ImportSourceWith is ImportSource with every optional parameter.
func (c *Client) ImportSourceWith(ctx context.Context, source string, body io.Reader, size int64, o ImportOptions) (*Import, []byte, error) {
	q := url.Values{}
	if o.FileName != "" {
		q.Set("file_name", o.FileName)
	}
	if o.FileDate != "" {
		q.Set("file_date", o.FileDate)
	}
	if o.Kind != "" {
		q.Set("kind", o.Kind)
	}
	if o.AllowShrink {
		q.Set("allow_shrink", "true")
	}
	path := "/admin/imports/" + url.PathEscape(source)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out Import
	raw, err := c.send(ctx, http.MethodPost, path, "text/csv", body, size, nil, &out)
	if err != nil {
		return nil, raw, err
	}
	return &out, raw, nil
}

// SubmitBatch submits a batch (POST /batch-credential): body is
// {"provider_ids":[...]} as application/json, or a roster as text/csv.
// A retry with the same idempotencyKey answers the batch the first made.
func (c *Client) SubmitBatch(ctx context.Context, contentType string, body io.Reader, idempotencyKey string) (*Batch, []byte, error) {
	h := http.Header{}
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	var out Batch
	raw, err := c.send(ctx, http.MethodPost, "/batch-credential", contentType, body, -1, h, &out)
	if err != nil {
		return nil, raw, err
	}
	return &out, raw, nil
}

// BatchProgress reads a batch's progress and up to limit items
// (GET /results/batch/{id}; limit 0 is the API's default page).
func (c *Client) BatchProgress(ctx context.Context, id string, limit int) (*Batch, []byte, error) {
	path := "/results/batch/" + url.PathEscape(id)
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var out Batch
	raw, err := c.send(ctx, http.MethodGet, path, "", nil, 0, nil, &out)
	if err != nil {
		return nil, raw, err
	}
	return &out, raw, nil
}

// CancelBatch cancels a batch (DELETE /batch/{id}).
func (c *Client) CancelBatch(ctx context.Context, id string) (*Batch, []byte, error) {
	var out Batch
	raw, err := c.send(ctx, http.MethodDelete, "/batch/"+url.PathEscape(id), "", nil, 0, nil, &out)
	if err != nil {
		return nil, raw, err
	}
	return &out, raw, nil
}

// maxAnswer bounds an answer read into memory.
const maxAnswer = 16 << 20

// send makes one call and decodes a 2xx answer into out; any other answer
// is an *Error. It returns the answer's bytes either way.
func (c *Client) send(ctx context.Context, method, path, contentType string, body io.Reader, size int64, h http.Header, out any) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil && size >= 0 {
		req.ContentLength = size
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, &Error{Status: resp.StatusCode, Body: "reading the answer: " + err.Error()}
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(raw, e) != nil || e.Code == "" {
			e.Code, e.Body = "", string(raw)
		}
		return raw, e
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return raw, fmt.Errorf("%s %s: the answer is not the documented JSON: %w", method, path, err)
	}
	return raw, nil
}
