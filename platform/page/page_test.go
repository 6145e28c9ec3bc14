package page

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/provcred/platform/apierr"
)

type key struct {
	Name string `json:"n"`
	ID   string `json:"i"`
}

func TestRoundTrip(t *testing.T) {
	app := fiber.New()
	app.Get("/", func(c *fiber.Ctx) error {
		limit, err := Limit(c)
		if err != nil {
			return c.Status(422).SendString(err.Error())
		}
		var k key
		ok, err := Decode(c, &k)
		if err != nil {
			return c.Status(400).SendString(err.Error())
		}
		return c.JSON(map[string]any{"limit": limit, "has": ok, "key": k})
	})
	cur := Encode(key{"smith", "p1"})
	tests := []struct {
		q      string
		status int
		want   string
	}{
		{"", 200, `{"has":false,"key":{"n":"","i":""},"limit":50}`},
		{"?limit=2&cursor=" + cur, 200, `{"has":true,"key":{"n":"smith","i":"p1"},"limit":2}`},
		{"?limit=0", 422, ""},
		{"?limit=501", 422, ""},
		{"?limit=x", 422, ""},
		{"?cursor=%%%", 400, ""},
		{"?cursor=bm90anNvbg", 400, ""},
	}
	for _, tt := range tests {
		resp, _ := app.Test(httptest.NewRequest("GET", "/"+tt.q, nil))
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tt.status || (tt.want != "" && string(b) != tt.want) {
			t.Errorf("%s: %d %s", tt.q, resp.StatusCode, b)
		}
	}
}

func TestBuild(t *testing.T) {
	p := Build([]int{1, 2, 3}, 2, func(i int) any { return i })
	if len(p.Items) != 2 || p.NextCursor != Encode(2) {
		t.Fatalf("%+v", p)
	}
	p = Build[int](nil, 2, func(i int) any { return i })
	b, _ := json.Marshal(p)
	if string(b) != `{"items":[]}` {
		t.Fatalf("%s", b)
	}
}

// FuzzQuery feeds any ?limit= and ?cursor= to the parsers: they either
// return a value in range or a 4xx API error, never panic or a 500.
func FuzzQuery(f *testing.F) {
	f.Add("5", Encode(key{"smith", "p1"}))
	f.Add("", "bnVsbA")
	f.Add("-1", "%%%")
	f.Add("99999999999999999999", "eyJuIjo1fQ")
	app := fiber.New()
	f.Fuzz(func(t *testing.T, limit, cursor string) {
		fctx := &fasthttp.RequestCtx{}
		args := fasthttp.AcquireArgs()
		defer fasthttp.ReleaseArgs(args)
		args.Set("limit", limit)
		args.Set("cursor", cursor)
		fctx.Request.SetRequestURI("/?" + args.String())
		c := app.AcquireCtx(fctx)
		defer app.ReleaseCtx(c)
		n, err := Limit(c)
		if err != nil {
			if ae, ok := apierr.As(err); !ok || ae.Status != 422 || ae.Field != "limit" {
				t.Fatalf("limit %q: %v", limit, err)
			}
		} else if n < 1 || n > MaxLimit {
			t.Fatalf("limit %q gave %d", limit, n)
		}
		var k key
		if _, err := Decode(c, &k); err != nil {
			if ae, ok := apierr.As(err); !ok || ae.Status != 400 || ae.Code != "invalid_cursor" {
				t.Fatalf("cursor %q: %v", cursor, err)
			}
		}
	})
}

// TestCursorsAreSealed: a cursor is neither readable nor forgeable. The
// cursors of before (base64url JSON) carried a last name into URLs and were
// taken whatever they said.
func TestCursorsAreSealed(t *testing.T) {
	plain := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	good := Encode(key{"smith", "p1"})
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	if bytes.Contains(raw, []byte("smith")) || bytes.Contains(raw, []byte("p1")) || strings.Contains(good, plain(key{"smith", "p1"})) {
		t.Fatalf("cursor %q shows its key", good)
	}
	if Encode(key{"smith", "p1"}) != good {
		t.Fatal("one position must give one cursor")
	}
	flipped := append([]byte{}, raw...)
	flipped[len(flipped)/2] ^= 1
	tests := []struct {
		name, cursor string
		ok           bool
	}{
		{"issued", good, true},
		{"forged plain JSON", plain(key{"jones", "p9"}), false},
		{"forged plain JSON of a real position", plain(key{"smith", "p1"}), false},
		{"one bit flipped", base64.RawURLEncoding.EncodeToString(flipped), false},
		{"truncated", good[:len(good)-4], false},
		{"too short", "AAAA", false},
		{"not base64", "%%%", false},
		{"empty JSON sealed elsewhere", base64.RawURLEncoding.EncodeToString(make([]byte, 40)), false},
	}
	for _, tt := range tests {
		var k key
		err := DecodeString(tt.cursor, &k)
		if tt.ok != (err == nil) {
			t.Errorf("%s: err %v", tt.name, err)
		}
		if e, isAPI := apierr.As(err); err != nil && (!isAPI || e.Code != "invalid_cursor" || e.Status != 400) {
			t.Errorf("%s: %v, want 400 invalid_cursor", tt.name, err)
		}
	}
}

// TestSecretSharedAcrossProcesses: replicas with one CURSOR_SECRET read
// each other's cursors; another secret (or the random key of a process
// without one) does not.
func TestSecretSharedAcrossProcesses(t *testing.T) {
	before := current.Load()
	t.Cleanup(func() { current.Store(before) })
	if err := SetSecret("short"); err == nil {
		t.Fatal("a short secret must be refused")
	}
	a := strings.Repeat("a", MinSecretLen)
	if err := SetSecret(a); err != nil {
		t.Fatal(err)
	}
	cur := Encode(key{"smith", "p1"})
	current.Store(before) // a process without the secret
	var k key
	if DecodeString(cur, &k) == nil {
		t.Fatal("a process with another key read the cursor")
	}
	_ = SetSecret(strings.Repeat("b", MinSecretLen))
	if DecodeString(cur, &k) == nil {
		t.Fatal("another secret read the cursor")
	}
	_ = SetSecret(a) // another replica, same secret
	if err := DecodeString(cur, &k); err != nil || k != (key{"smith", "p1"}) {
		t.Fatalf("same secret: %v %+v", err, k)
	}
	// A NUL can never come from a row; a cursor holding one is refused.
	if DecodeString(Encode(map[string]string{"n": "a\x00b"}), &k) == nil {
		t.Fatal("a cursor with a NUL was accepted")
	}
}
