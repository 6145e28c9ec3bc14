package openapi

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func TestHandlerServesPagesAndAssets(t *testing.T) {
	app := fiber.New()
	New().Routes(app)
	tests := []struct {
		path, ctype, csp string
		status           int
		body             string
	}{
		{"/openapi.json", "application/json", "", 200, `"openapi": "3.1.0"`},
		{"/docs", "text/html; charset=utf-8", "script-src 'self';", 200, "swagger-ui-bundle.js"},
		{"/redoc", "text/html; charset=utf-8", "script-src 'self';", 200, "redoc.standalone.js"},
		{"/docs/assets/swagger-ui/swagger-ui-bundle.js", "text/javascript; charset=utf-8", "", 200, "SwaggerUIBundle"},
		{"/docs/assets/swagger-ui/swagger-ui.css", "text/css; charset=utf-8", "", 200, ".swagger-ui"},
		{"/docs/assets/redoc/redoc.standalone.js", "text/javascript; charset=utf-8", "", 200, "spec-url"},
		{"/docs/assets/docs.js", "text/javascript; charset=utf-8", "", 200, "SwaggerUIBundle({"},
		{"/docs/assets/redoc/LICENSE", "text/plain; charset=utf-8", "", 200, "MIT License"},
		{"/docs/assets/nope.js", "", "", 404, ""},
		{"/docs/assets/../openapi.go", "", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := app.Test(httptest.NewRequest("GET", tt.path, nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if tt.status != 200 {
				return
			}
			if got := resp.Header.Get("Content-Type"); got != tt.ctype {
				t.Errorf("Content-Type %q, want %q", got, tt.ctype)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, tt.csp) || (tt.csp != "" && (!strings.Contains(csp, "connect-src 'self'") || strings.Contains(csp, "unsafe-eval") ||
				strings.Contains(csp, "script-src 'self' 'unsafe-inline'"))) {
				t.Errorf("CSP %q", csp)
			}
			if !strings.Contains(string(b), tt.body) {
				t.Errorf("body does not hold %q", tt.body)
			}
		})
	}
}
