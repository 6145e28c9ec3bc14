package proxy

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLimitReader(t *testing.T) {
	tests := []struct {
		size, limit int64
		wantErr     bool
	}{
		{0, 10, false}, {9, 10, false}, {10, 10, false}, {11, 10, true}, {1 << 20, 1000, true},
	}
	for _, tt := range tests {
		r := &clientBody{r: &limitReader{r: strings.NewReader(strings.Repeat("x", int(tt.size))), left: tt.limit}}
		n, err := io.Copy(io.Discard, r)
		if tt.wantErr {
			if !errors.Is(err, errUploadTooLarge) || !errors.Is(r.err, errUploadTooLarge) {
				t.Errorf("size %d limit %d: err %v, recorded %v", tt.size, tt.limit, err, r.err)
			}
			if n > tt.limit {
				t.Errorf("size %d limit %d: passed %d bytes", tt.size, tt.limit, n)
			}
			continue
		}
		if err != nil || n != tt.size || r.err != nil {
			t.Errorf("size %d limit %d: n=%d err=%v recorded=%v", tt.size, tt.limit, n, err, r.err)
		}
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "::", "http://"} {
		if _, err := New(Options{Name: "x", BaseURL: u}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}
