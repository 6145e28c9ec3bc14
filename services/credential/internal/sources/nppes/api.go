package nppes

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/provcred/credential/internal/config"
	"github.com/provcred/credential/internal/sources"
	"github.com/provcred/platform/breaker"
	"github.com/provcred/platform/metrics"
	"github.com/provcred/platform/semaphore"
)

// Name is the breaker's and semaphore's metric label for the live API.
const Name = "nppes_api"

// APIError is the registry's answer to a bad query: HTTP 200 with
// {"Errors":[{"description","field","number"}]}. It is the caller's fault, so
// it is neither retried nor counted against the breaker.
type APIError struct {
	Items []APIErrorItem
}

// APIErrorItem is one entry of the registry's Errors array.
type APIErrorItem struct {
	Description string `json:"description"`
	Field       string `json:"field"`
	Number      string `json:"number"`
}

func (e *APIError) Error() string {
	parts := make([]string, len(e.Items))
	for i, it := range e.Items {
		parts[i] = fmt.Sprintf("%s (field %s, error %s)", it.Description, it.Field, it.Number)
	}
	return "nppes api: " + strings.Join(parts, "; ")
}

// ClientOptions tune the API client. They are taken as given (Settings
// maps the service's NPPES_* settings onto them); NewClient refuses
// unusable ones.
type ClientOptions struct {
	// AttemptTimeout bounds one HTTP attempt (NPPES_TIMEOUT).
	AttemptTimeout time.Duration
	// Retries after the first attempt, only on timeouts and 5xx; 0 is none
	// (NPPES_RETRIES).
	Retries int
	// Backoff before the first retry, doubled for each next one; 0 retries
	// at once (NPPES_BACKOFF).
	Backoff time.Duration
	// Breaker settings for the "nppes_api" breaker (BREAKER_*).
	Breaker breaker.Settings
	// MaxConcurrent bounds calls in flight (semaphore "nppes_api").
	MaxConcurrent int
	// MaxWait bounds the wait for a semaphore permit (NPPES_MAX_WAIT).
	MaxWait time.Duration
	// CacheTTL keeps found records this long; 0 disables the cache
	// (NPPES_CACHE_TTL).
	CacheTTL time.Duration
	// CacheSize bounds the cache's entries (NPPES_CACHE_SIZE).
	CacheSize int
	// HTTP is the client used. Nil: a client with no overall timeout (the attempts have theirs).
	HTTP *http.Client
}

// Settings is the one place the service's NPPES_* and BREAKER_* settings
// become ClientOptions: MaxConcurrent allows two registry calls per batch
// worker (MAX_CONCURRENT_BATCH_REQUESTS).
func Settings(c config.Config) ClientOptions {
	return ClientOptions{AttemptTimeout: c.NPPESTimeout, Retries: c.NPPESRetries, Backoff: c.NPPESBackoff,
		Breaker: c.Breaker(), MaxConcurrent: 2 * c.MaxConcurrentBatchRequests, MaxWait: c.NPPESMaxWait,
		CacheTTL: c.NPPESCacheTTL, CacheSize: c.NPPESCacheSize}
}

func (o ClientOptions) validate() error {
	switch {
	case o.AttemptTimeout <= 0:
		return fmt.Errorf("AttemptTimeout must be positive, got %s", o.AttemptTimeout)
	case o.Retries < 0:
		return fmt.Errorf("Retries must not be negative, got %d", o.Retries)
	case o.Backoff < 0:
		return fmt.Errorf("Backoff must not be negative, got %s", o.Backoff)
	case o.MaxConcurrent < 1:
		return fmt.Errorf("MaxConcurrent must be at least 1, got %d", o.MaxConcurrent)
	case o.MaxWait <= 0:
		return fmt.Errorf("MaxWait must be positive, got %s", o.MaxWait)
	case o.CacheTTL < 0:
		return fmt.Errorf("CacheTTL must not be negative (0 disables the cache), got %s", o.CacheTTL)
	case o.CacheTTL > 0 && o.CacheSize < 1:
		return fmt.Errorf("CacheSize must be at least 1 when the cache is on, got %d", o.CacheSize)
	}
	return nil
}

// Client looks NPIs up in the live NPI Registry API v2.1.
type Client struct {
	base    string
	o       ClientOptions
	http    *http.Client
	Breaker *breaker.Breaker
	Sem     *semaphore.Semaphore
	cache   *ttlCache
	now     func() time.Time
}

// NewClient returns a client for the registry at base (e.g.
// https://npiregistry.cms.hhs.gov), registering its breaker and semaphore,
// both named "nppes_api", in reg.
func NewClient(base string, reg *metrics.Registry, o ClientOptions) (*Client, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("%s client: %w", Name, err)
	}
	hc := o.HTTP
	if hc == nil {
		hc = &http.Client{}
	}
	c := &Client{
		base: strings.TrimRight(base, "/"), o: o, http: hc,
		Breaker: breaker.New(Name, o.Breaker, reg),
		Sem:     semaphore.New(Name, o.MaxConcurrent, o.MaxWait, reg),
		now:     time.Now,
	}
	if o.CacheTTL > 0 {
		c.cache = newTTLCache(o.CacheSize, o.CacheTTL)
	}
	return c, nil
}

type cached struct {
	rec *Record
	raw []byte
}

// Lookup implements Lookup against the live API. Errors: a *NotFound, which
// is ErrNotFound (result_count 0; raw is the answer), *APIError (the
// registry rejected the query), an error
// wrapping breaker.ErrOpen, or the last attempt's transport/5xx error.
func (c *Client) Lookup(ctx context.Context, npi string) (*Record, []byte, error) {
	if c.cache != nil {
		if v, ok := c.cache.get(npi, c.now()); ok {
			return v.rec.clone(), v.raw, nil
		}
	}
	if err := c.Sem.Acquire(ctx); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", Name, err)
	}
	defer c.Sem.Release()

	u := c.base + "/api/?version=2.1&number=" + url.QueryEscape(npi)
	var body []byte
	var err error
	backoff := c.o.Backoff
	for attempt := 0; ; attempt++ {
		err = c.Breaker.Do(ctx, func(ctx context.Context) error {
			b, err := c.attempt(ctx, u)
			body = b
			return err
		})
		if err == nil || attempt >= c.o.Retries || !retryable(err) {
			break
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("%s: %w", Name, ctx.Err())
		}
		backoff *= 2
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s lookup: %w", Name, err)
	}
	rec, err := DecodeResponse(body, npi)
	if errors.Is(err, ErrNotFound) {
		return nil, body, &NotFound{Digest: sources.Digest(body), FetchedAt: c.now().UTC()}
	}
	if err != nil {
		return nil, nil, err
	}
	rec.Digest = sources.Digest(body)
	rec.FetchedAt = c.now().UTC()
	if c.cache != nil {
		c.cache.put(npi, cached{rec: rec.clone(), raw: body}, c.now())
	}
	return rec, body, nil
}

// retryable: timeouts and 5xx only. A 4xx will not get better, an open
// breaker must not be hammered, and Errors-on-200 is not an error here.
func retryable(err error) bool {
	if errors.Is(err, breaker.ErrOpen) {
		return false
	}
	var se *breaker.StatusError
	if errors.As(err, &se) {
		return se.Code >= 500
	}
	return breaker.IsTimeout(err)
}

const maxBody = 4 << 20

func (c *Client) attempt(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &breaker.StatusError{Code: resp.StatusCode, Body: string(body[:min(len(body), 200)])}
	}
	return body, nil
}

// flexString accepts a JSON string or number (the registry sends both for
// "number" and the epochs) and null.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*f = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("expected a string or number, got %.20s", b)
		}
		*f = flexString(n.String())
	}
	return nil
}

type apiResponse struct {
	ResultCount *flexString    `json:"result_count"`
	Results     []apiResult    `json:"results"`
	Errors      []apiErrorItem `json:"Errors"`
}

type apiErrorItem struct {
	Description flexString `json:"description"`
	Field       flexString `json:"field"`
	Number      flexString `json:"number"`
}

type apiResult struct {
	Number           flexString `json:"number"`
	EnumerationType  string     `json:"enumeration_type"`
	CreatedEpoch     flexString `json:"created_epoch"`
	LastUpdatedEpoch flexString `json:"last_updated_epoch"`
	Basic            struct {
		FirstName        string     `json:"first_name"`
		LastName         string     `json:"last_name"`
		MiddleName       string     `json:"middle_name"`
		NameSuffix       string     `json:"name_suffix"`
		Credential       string     `json:"credential"`
		OrganizationName string     `json:"organization_name"`
		Gender           string     `json:"gender"`
		Sex              string     `json:"sex"`
		Status           string     `json:"status"`
		EnumerationDate  flexString `json:"enumeration_date"`
		DeactivationDate flexString `json:"deactivation_date"`
		ReactivationDate flexString `json:"reactivation_date"`
	} `json:"basic"`
	Addresses []struct {
		Purpose string `json:"address_purpose"`
		State   string `json:"state"`
	} `json:"addresses"`
	Taxonomies []struct {
		Code    string     `json:"code"`
		Desc    string     `json:"desc"`
		Primary flexBool   `json:"primary"`
		State   flexString `json:"state"`
		License flexString `json:"license"`
	} `json:"taxonomies"`
}

// flexBool accepts true/false, "true"/"Y"/"N" and null.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	switch strings.ToLower(s) {
	case "true", "y", "yes", "1":
		*f = true
	case "false", "n", "no", "0", "", "null":
		*f = false
	default:
		return fmt.Errorf("expected a boolean, got %.20s", b)
	}
	return nil
}

// DecodeResponse reads a registry response for npi: ErrNotFound when it
// holds no result for that number, *APIError for Errors-on-200.
func DecodeResponse(body []byte, npi string) (*Record, error) {
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: undecodable response: %w", Name, err)
	}
	if len(r.Errors) > 0 {
		e := &APIError{}
		for _, it := range r.Errors {
			e.Items = append(e.Items, APIErrorItem{Description: string(it.Description), Field: string(it.Field), Number: string(it.Number)})
		}
		return nil, e
	}
	if r.ResultCount == nil && r.Results == nil {
		return nil, fmt.Errorf("%s: response has neither result_count nor Errors", Name)
	}
	for _, res := range r.Results {
		if string(res.Number) != npi {
			continue
		}
		return fromAPI(&res)
	}
	return nil, ErrNotFound
}

func fromAPI(res *apiResult) (*Record, error) {
	b := &res.Basic
	rec := &Record{
		NPI: string(res.Number), LastName: b.LastName, FirstName: b.FirstName, MiddleName: b.MiddleName,
		NameSuffix: b.NameSuffix, Credential: b.Credential, OrganizationName: b.OrganizationName,
		Gender: b.Gender, Status: b.Status, Source: Name, Taxonomies: []Taxonomy{},
	}
	if rec.Gender == "" {
		rec.Gender = b.Sex // newer responses say sex
	}
	switch res.EnumerationType {
	case "NPI-1":
		rec.EntityType = "1"
	case "NPI-2":
		rec.EntityType = "2"
	case "":
	default:
		return nil, fmt.Errorf("%s: enumeration_type %.20q is not NPI-1 or NPI-2", Name, res.EnumerationType)
	}
	var err error
	if rec.EnumerationDate, err = apiDate(string(b.EnumerationDate)); err != nil {
		return nil, fmt.Errorf("%s: enumeration_date: %w", Name, err)
	}
	if rec.DeactivationDate, err = apiDate(string(b.DeactivationDate)); err != nil {
		return nil, fmt.Errorf("%s: deactivation_date: %w", Name, err)
	}
	if rec.ReactivationDate, err = apiDate(string(b.ReactivationDate)); err != nil {
		return nil, fmt.Errorf("%s: reactivation_date: %w", Name, err)
	}
	if rec.Created, err = epoch(string(res.CreatedEpoch)); err != nil {
		return nil, fmt.Errorf("%s: created_epoch: %w", Name, err)
	}
	if rec.LastUpdated, err = epoch(string(res.LastUpdatedEpoch)); err != nil {
		return nil, fmt.Errorf("%s: last_updated_epoch: %w", Name, err)
	}
	for _, a := range res.Addresses {
		if strings.EqualFold(a.Purpose, "LOCATION") {
			rec.State = a.State
		}
	}
	for _, t := range res.Taxonomies {
		tx := Taxonomy{Code: t.Code, Desc: t.Desc, Primary: bool(t.Primary), State: string(t.State), License: string(t.License)}
		rec.Taxonomies = append(rec.Taxonomies, tx)
		if tx.Primary && rec.PrimaryTaxonomy == "" {
			rec.PrimaryTaxonomy = tx.Code
		}
	}
	if rec.PrimaryTaxonomy == "" && len(rec.Taxonomies) == 1 {
		rec.PrimaryTaxonomy = rec.Taxonomies[0].Code
	}
	return rec, nil
}

// epochMillisFrom tells the registry's two epoch units apart: answers of
// 2019-20 give seconds (1525737600), those since milliseconds
// (1183953600000). 10^11 seconds is the year 5138, 10^11 milliseconds
// March 1973, before the NPPES began (2005): below it, a value is seconds.
const epochMillisFrom = 100_000_000_000

// epoch reads a created/last-updated epoch in seconds or milliseconds; "" is none.
func epoch(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%.20q is not a count of seconds or milliseconds", s)
	}
	t := time.UnixMilli(n).UTC()
	if n < epochMillisFrom {
		t = time.Unix(n, 0).UTC()
	}
	return &t, nil
}

// apiDate reads the registry's dates: YYYY-MM-DD (MM/DD/YYYY accepted).
func apiDate(s string) (*time.Time, error) {
	v, err := sources.DateISO(s)
	if err != nil || v == nil {
		return nil, err
	}
	t := v.(time.Time)
	return &t, nil
}

func (r *Record) clone() *Record {
	c := *r
	c.Taxonomies = append([]Taxonomy(nil), r.Taxonomies...)
	return &c
}

// ttlCache is a bounded LRU of found records, each kept at most ttl.
type ttlCache struct {
	mu    sync.Mutex
	size  int
	ttl   time.Duration
	ll    *list.List
	items map[string]*list.Element
}

type cacheEntry struct {
	key     string
	val     cached
	expires time.Time
}

func newTTLCache(size int, ttl time.Duration) *ttlCache {
	return &ttlCache{size: size, ttl: ttl, ll: list.New(), items: make(map[string]*list.Element)}
}

func (c *ttlCache) get(k string, now time.Time) (cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return cached{}, false
	}
	e := el.Value.(*cacheEntry)
	if now.After(e.expires) {
		c.ll.Remove(el)
		delete(c.items, k)
		return cached{}, false
	}
	c.ll.MoveToFront(el)
	return e.val, true
}

func (c *ttlCache) put(k string, v cached, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		e := el.Value.(*cacheEntry)
		e.val, e.expires = v, now.Add(c.ttl)
		c.ll.MoveToFront(el)
		return
	}
	c.items[k] = c.ll.PushFront(&cacheEntry{key: k, val: v, expires: now.Add(c.ttl)})
	for c.ll.Len() > c.size {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

func (c *ttlCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
