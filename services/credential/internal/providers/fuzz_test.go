package providers

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/provcred/platform/apierr"
)

// FuzzProviderBody feeds arbitrary bodies to the request parser: it must
// answer with a 4xx API error or a provider that passes validation, never
// panic or produce anything else.
func FuzzProviderBody(f *testing.F) {
	f.Add([]byte(`{"npi":"1234567893","first_name":"Ann","last_name":"Lee","date_of_birth":"1970-01-31","licenses":[{"state":"CA","number":"A1","expires_on":"2030-01-01"}]}`))
	f.Add([]byte(`{"npi":1}`))
	f.Add([]byte(`{"date_of_birth":{}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"npi":"1234567893","first_name":"A","last_name":"B","licenses":[{"state":"CA","number":"1","type":"\u0000"}]}`))
	app := fiber.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		fctx := &fasthttp.RequestCtx{}
		fctx.Request.SetBody(body)
		c := app.AcquireCtx(fctx)
		defer app.ReleaseCtx(c)
		p, err := input(c)
		if err != nil {
			ae, ok := apierr.As(err)
			if !ok || ae.Status < 400 || ae.Status > 499 {
				t.Fatalf("non-4xx error %v", err)
			}
			return
		}
		if e := p.Validate(now); e != nil {
			t.Fatalf("accepted a provider that fails validation: %v", e)
		}
		// Whatever is accepted must be storable: PostgreSQL refuses NUL.
		if b, _ := json.Marshal(p); bytes.Contains(b, []byte(`\u0000`)) {
			t.Fatalf("accepted a NUL character: %s", b)
		}
	})
}
