package app

import (
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/provcred/gateway/internal/routes"
)

// FuzzForwardedPathRoutesAlike: any path the gateway lets through must
// route, once forwarded in the form the proxy sends, to the same entry of
// the route table, so the role checked is the role of what the upstream
// serves.
func FuzzForwardedPathRoutesAlike(f *testing.F) {
	app := fiber.New()
	app.Use(canonicalPath)
	for _, rt := range routes.Table {
		for _, m := range rt.Methods {
			app.Add(m, rt.Path, func(c *fiber.Ctx) error { return c.SendString(rt.Path) })
		}
	}
	h := app.Handler()
	route := func(method, uri string) (int, string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(uri)
		h(&ctx)
		return ctx.Response.StatusCode(), string(ctx.Response.Body())
	}
	for _, s := range []string{"/results/..%2Fadmin%2Fimports", "/results/../admin/imports", "/batch/b1%2Fx",
		"/providers/John%20Smith", "/stats/%2e%2e/admin", "/providers/p1/./x", "/results//p1", "/Results/P1/",
		"/providers/%2Fimport", "/credential/%2e%2e"} {
		f.Add(uint8(0), s)
		f.Add(uint8(1), s)
	}
	methods := []string{"GET", "POST", "DELETE", "PUT", "HEAD"}
	f.Fuzz(func(t *testing.T, mi uint8, path string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?# \t\r\n") {
			return
		}
		method := methods[int(mi)%len(methods)]
		status, r := route(method, path)
		if status != 200 {
			return
		}
		var u fasthttp.URI
		if err := u.Parse(nil, []byte(path)); err != nil {
			return
		}
		fwd := string(u.RequestURI())
		if st, r2 := route(method, fwd); st != 200 || r2 != r {
			t.Fatalf("%s %q routes to %s but is forwarded as %q, which routes to %d %s", method, path, r, fwd, st, r2)
		}
	})
}
