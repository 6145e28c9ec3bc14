package reqtext

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/provcred/platform/apierr"
	"github.com/provcred/platform/page"
)

// app answers 200 "ok" on any path once Guard lets the request through, and
// renders apierr errors as the server does.
func app() *fiber.App {
	a := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		if e, ok := err.(*apierr.Error); ok {
			return c.Status(e.Status).JSON(e)
		}
		return c.Status(500).SendString(err.Error())
	}})
	a.Use(Guard)
	a.All("/*", func(c *fiber.Ctx) error { return c.SendString("ok") })
	return a
}

// raw sends a request line and headers byte for byte (net/http would
// refuse or escape the bytes under test) and returns status and body.
func raw(t *testing.T, a *fiber.App, target string, headers ...string) (int, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.Listener(ln) }()
	t.Cleanup(func() { _ = a.Shutdown() })
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	msg := "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	for _, h := range headers {
		msg += h + "\r\n"
	}
	if _, err := io.WriteString(conn, msg+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := readResponse(conn)
	if err != nil {
		t.Fatal(err)
	}
	return resp.status, resp.body
}

type response struct {
	status int
	body   string
}

func readResponse(r io.Reader) (response, error) {
	br := bufio.NewReader(r)
	line, err := br.ReadString('\n')
	if err != nil {
		return response{}, err
	}
	var out response
	if f := strings.Fields(line); len(f) >= 2 {
		out.status = atoi(f[1])
	}
	all, _ := io.ReadAll(br)
	if i := strings.Index(string(all), "\r\n\r\n"); i >= 0 {
		out.body = string(all[i+4:])
	}
	return out, nil
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestGuard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		target  string
		headers []string
		status  int
		detail  string // a fragment of the detail
	}{
		{"plain", "/providers?q=smith&state=CA", nil, 200, ""},
		{"utf8 query", "/providers?q=%C3%A9lodie", nil, 200, ""},
		{"escaped path bytes stay text", "/providers/%ff", nil, 200, ""},
		{"utf8 request id", "/logs", []string{"X-Request-Id: abc-é"}, 200, ""},
		{"invalid utf8 query value", "/providers?q=%ff", nil, 400, `query parameter "q"`},
		{"nul query value", "/logs?actor=a%00b", nil, 400, `query parameter "actor"`},
		{"invalid utf8 query key", "/logs?%ff=1", nil, 400, "query parameter"},
		{"raw byte in path", "/providers/a\xffb", nil, 400, "path"},
		{"raw byte in request id", "/providers/p1", []string{"X-Request-Id: a\xffb"}, 400, "X-Request-Id"},
		{"raw byte in file name", "/admin/imports/leie", []string{"X-File-Name: a\xffb"}, 400, "X-File-Name"},
		{"raw byte in idempotency key", "/batch-credential", []string{"Idempotency-Key: \xff"}, 400, "Idempotency-Key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := raw(t, app(), tt.target, tt.headers...)
			if status != tt.status {
				t.Fatalf("status %d, want %d; body %s", status, tt.status, body)
			}
			if tt.status == 200 {
				return
			}
			var e struct{ Code, Detail string }
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if e.Code != "bad_request" || !strings.Contains(e.Detail, tt.detail) {
				t.Errorf("got %+v, want bad_request mentioning %q", e, tt.detail)
			}
			if strings.ContainsRune(e.Detail, 0) || strings.Contains(e.Detail, "\xff") {
				t.Errorf("detail echoes the bad bytes: %q", e.Detail)
			}
		})
	}
}

func TestDecodeCursor(t *testing.T) {
	t.Parallel()
	a := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		e, _ := apierr.As(err)
		return c.Status(e.Status).SendString(e.Code)
	}})
	a.Get("/", func(c *fiber.Ctx) error {
		var k struct {
			L string `json:"l"`
		}
		ok, err := DecodeCursor(c, &k)
		if err != nil {
			return err
		}
		return c.SendString(fmt.Sprint(ok, " ", k.L))
	})
	tests := []struct{ cursor, want string }{
		{"", "false "},
		{page.Encode(map[string]string{"l": "smith"}), "true smith"},
		{page.Encode(map[string]string{"l": "a\x00b"}), "invalid_cursor"},
		{"%%%", "invalid_cursor"},
	}
	for _, tt := range tests {
		resp, err := a.Test(httptest.NewRequest("GET", "/?cursor="+url.QueryEscape(tt.cursor), nil))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != tt.want {
			t.Errorf("cursor %q: got %q, want %q", tt.cursor, b, tt.want)
		}
	}
}
