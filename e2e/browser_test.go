package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/provcred/platform/pgtest"
	"github.com/provcred/platform/proctest"
)

// chromium finds the browser: CHROMIUM, else Debian's package.
func chromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestDocsInBrowser opens /docs in headless Chromium as a person would:
// authorize with a key, run GET /providers with "Try it out", and see a 200
// with the providers; then the /redoc reference renders. Neither page may
// trip its Content-Security-Policy. Screenshots go to testdata/out.
func TestDocsInBrowser(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the services and a browser")
	}
	browser := chromium()
	if browser == "" {
		t.Skip("no Chromium installed (Debian package chromium; `make browser` installs it): the /docs browser test cannot run")
	}
	bin := build(t)
	readerKey, readerEntry := keygen(t, bin, "browser-reader", "reader")
	adminKey, adminEntry := keygen(t, bin, "browser-admin", "admin")
	credential := start(t, bin, "credential", map[string]string{"DATABASE_URL": pgtest.NewDatabase(t)})
	credential.WaitReady(t, 60*time.Second)
	gateway := start(t, bin, "gateway", map[string]string{
		"CREDENTIAL_URL": credential.URL, "STATS_URL": "http://" + proctest.FreeAddr(t), "CHAT_URL": "http://" + proctest.FreeAddr(t),
		"API_KEYS": readerEntry + "," + adminEntry,
	})
	gateway.WaitReady(t, 30*time.Second)
	c := newClient(t, gateway.URL, 30*time.Second)
	for _, id := range []string{"provider_browser_001", "provider_browser_002"} {
		p := map[string]any{"id": id, "npi": "1234567893", "first_name": "Ada", "last_name": "Lovelace"}
		if id == "provider_browser_002" {
			p["npi"], p["first_name"], p["last_name"] = "1245319599", "Grace", "Hopper"
		}
		if r := c.do("POST", "/providers", adminKey, p); r.status != 201 {
			t.Fatalf("create %s: %d %s", id, r.status, r.raw)
		}
	}

	out := filepath.Join("testdata", "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(browser),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1600),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// Generous: on a loaded machine parsing Swagger UI and rendering the
	// whole document takes minutes.
	ctx, cancel = context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()

	// Every browser log entry and console message, to catch CSP refusals.
	var mu sync.Mutex
	var console []string
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *log.EventEntryAdded:
			console = append(console, string(ev.Entry.Level)+": "+ev.Entry.Text)
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
			}
			console = append(console, string(ev.Type)+": "+strings.Join(parts, " "))
		case *runtime.EventExceptionThrown:
			console = append(console, "exception: "+(&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
		}
	}); err != nil {
		t.Fatalf("start Chromium (%s): %v", browser, err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("Chromium: %v", err)
	}
	logs := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(console, "\n")
	}
	cspRefusals := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, l := range console {
			if strings.Contains(l, "Content Security Policy") || strings.HasPrefix(l, "exception:") {
				out = append(out, l)
			}
		}
		return out
	}
	screenshot := func(name string, full bool) {
		shoot := chromedp.CaptureScreenshot() // the window
		if full {
			shoot = chromedp.FullScreenshot(100) // the whole page; 100: PNG
		}
		shot, err := chromedp.Run(ctx, shoot)
		if err != nil {
			t.Logf("screenshot %s: %v", name, err)
			return
		}
		p := filepath.Join(out, name)
		if err := os.WriteFile(p, shot, 0o644); err == nil {
			abs, _ := filepath.Abs(p)
			t.Logf("screenshot: %s", abs)
		}
	}

	const op = "#operations-providers-listProviders"
	err := chromedp.Do(ctx,
		chromedp.Navigate(gateway.URL+"/docs#/providers/listProviders"),
		chromedp.WaitVisible(`.swagger-ui .information-container`),
		// Authorize once with the key.
		chromedp.Click(`.swagger-ui .auth-wrapper .btn.authorize`),
		chromedp.WaitVisible(`.swagger-ui .modal-ux .auth-container input`),
		chromedp.SendKeys(`.swagger-ui .modal-ux .auth-container input`, readerKey),
		chromedp.Click(`.swagger-ui .modal-ux .auth-btn-wrapper .btn.modal-btn.auth.authorize`),
		chromedp.Click(`.swagger-ui .modal-ux .btn-done`),
		// The deep link opened GET /providers; try it out is on: execute.
		chromedp.WaitVisible(op+` .btn.execute`),
		chromedp.Click(op+` .btn.execute`),
		chromedp.WaitVisible(op+` .live-responses-table .response .response-col_status`),
		chromedp.ScrollIntoView(op+` .live-responses-table`),
	)
	if err != nil {
		screenshot("docs.png", true)
		t.Fatalf("/docs: %v\nconsole:\n%s", err, logs())
	}
	status, err := chromedp.Run(ctx, chromedp.Text(op+` .live-responses-table .response .response-col_status`))
	if err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(op+` .live-responses-table .response .response-col_description pre`))
	if err != nil {
		t.Fatal(err)
	}
	screenshot("docs.png", true)
	if strings.TrimSpace(status) != "200" || !strings.Contains(body, "provider_browser_001") || !strings.Contains(body, "provider_browser_002") {
		t.Errorf("GET /providers from the page: status %q, body %.500s", status, body)
	}
	if r := cspRefusals(); len(r) > 0 {
		t.Errorf("/docs: %s", strings.Join(r, "\n"))
	}

	err = chromedp.Do(ctx,
		chromedp.Navigate(gateway.URL+"/redoc"),
		chromedp.WaitVisible(`.api-content h1`),
		chromedp.WaitVisible(`[data-section-id="operation/listProviders"]`),
	)
	screenshot("redoc.png", false)
	if err != nil {
		t.Fatalf("/redoc: %v\nconsole:\n%s", err, logs())
	}
	title, err := chromedp.Run(ctx, chromedp.Text(`.api-content h1`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(title, "Provider credentialing API") {
		t.Errorf("/redoc title %q", title)
	}
	if r := cspRefusals(); len(r) > 0 {
		t.Errorf("/redoc: %s", strings.Join(r, "\n"))
	}
}
