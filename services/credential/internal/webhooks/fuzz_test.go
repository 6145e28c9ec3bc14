package webhooks

import (
	"net/url"
	"strings"
	"testing"

	"github.com/provcred/credential/internal/events"
)

// FuzzCreateRequest: whatever a client sends, validation either refuses it
// with a 422 naming a field or yields an absolute http(s) URL without
// credentials and only known, distinct, sorted event types.
func FuzzCreateRequest(f *testing.F) {
	f.Add("https://hooks.example.com/in", "license.expiring.v1", "ERP")
	f.Add("http://10.0.0.1:8080/x?y=1", "", "")
	f.Add("https://u:p@x/", "batch.completed.v1,batch.completed.v1", "\x00")
	f.Add("ftp://x", "nope", strings.Repeat("é", 600))
	f.Add("https://[::1]:0/", ",", "")
	f.Fuzz(func(t *testing.T, raw, types, desc string) {
		req := CreateRequest{URL: raw, Description: desc}
		if types != "" {
			req.EventTypes = strings.Split(types, ",")
		}
		u, err := req.Validate()
		if err != nil {
			return
		}
		back, perr := url.Parse(req.URL)
		if perr != nil || (back.Scheme != "http" && back.Scheme != "https") || back.Host == "" || back.User != nil ||
			u.Hostname() == "" {
			t.Fatalf("accepted %q", req.URL)
		}
		for i, typ := range req.EventTypes {
			if !events.Known(typ) || (i > 0 && req.EventTypes[i-1] >= typ) {
				t.Fatalf("event types %v", req.EventTypes)
			}
		}
	})
}
