package page

import (
	"encoding/json"
	"io"
	"net/http/httptest"
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
