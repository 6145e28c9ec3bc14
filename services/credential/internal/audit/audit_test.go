package audit_test

import (
	"context"
	"testing"

	"github.com/provcred/credential/internal/audit"
	"github.com/provcred/credential/internal/testdb"
	"github.com/provcred/platform/logging"
)

// TestClientRequestIDKeptApart: the X-Request-Id a client chose (carried in
// the request's context by platform/server) is recorded next to the
// platform's own id, never in its place (migration 0009).
func TestClientRequestIDKeptApart(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.New(t)
	ctx := context.Background()
	tests := []struct {
		name, ours, client string
	}{
		{"with the client's id", "7f0c2a8e-1b7e-4f51-9a55-0d1c8b2e6f10", "client-order-42"},
		{"without one", "2b9d4c61-5e3a-4c1f-8d2e-6a7b9c0d1e2f", ""},
	}
	for _, tt := range tests {
		wctx := logging.WithRequestID(ctx, tt.ours)
		if tt.client != "" {
			wctx = logging.WithClientRequestID(wctx, tt.client)
		}
		if err := audit.Write(wctx, pool, audit.Entry{Actor: "key_1", Event: "test." + tt.name, Entity: "provider",
			EntityID: "p1", RequestID: tt.ours}); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := audit.Query(ctx, pool, audit.Filter{Actor: "key_1"}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]audit.Record{}
	for _, r := range rows {
		got[r.Event] = r
	}
	for _, tt := range tests {
		r := got["test."+tt.name]
		if r.RequestID != tt.ours || r.ClientRequestID != tt.client {
			t.Errorf("%s: request_id %q client_request_id %q, want %q and %q", tt.name, r.RequestID, r.ClientRequestID, tt.ours, tt.client)
		}
	}
}
