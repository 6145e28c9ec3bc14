package ratelimit

import (
	"net/netip"
	"strings"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		peer    string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"no proxies configured: XFF ignored", "203.0.113.9", []string{"1.1.1.1"}, nil, "203.0.113.9"},
		{"untrusted peer: XFF ignored", "203.0.113.9", []string{"1.1.1.1"}, trusted, "203.0.113.9"},
		{"one trusted proxy", "10.0.0.5", []string{"198.51.100.7"}, trusted, "198.51.100.7"},
		{"spoofed left entries skipped", "10.0.0.5", []string{"6.6.6.6, 198.51.100.7, 10.1.1.1"}, trusted, "198.51.100.7"},
		{"multiple header instances", "10.0.0.5", []string{"6.6.6.6", "198.51.100.7", "10.2.2.2"}, trusted, "198.51.100.7"},
		{"all trusted: leftmost", "10.0.0.5", []string{"10.9.9.9, 10.1.1.1"}, trusted, "10.9.9.9"},
		{"no XFF from trusted peer", "10.0.0.5", nil, trusted, "10.0.0.5"},
		{"garbage stops walk", "10.0.0.5", []string{"198.51.100.7, nonsense"}, trusted, "10.0.0.5"},
		{"garbage after client kept", "10.0.0.5", []string{"nonsense, 198.51.100.7"}, trusted, "198.51.100.7"},
		{"empty entry stops walk", "10.0.0.5", []string{"198.51.100.7,,10.1.1.1"}, trusted, "10.1.1.1"},
		{"port form", "10.0.0.5", []string{"198.51.100.7:4711"}, trusted, "198.51.100.7"},
		{"ipv6", "fd00::1", []string{"2001:db8::7"}, trusted, "2001:db8::7"},
		{"ipv6 bracketed with port", "fd00::1", []string{"[2001:db8::7]:443"}, trusted, "2001:db8::7"},
		{"v4-mapped peer", "::ffff:10.0.0.5", []string{"198.51.100.7"}, trusted, "198.51.100.7"},
		{"zone rejected", "10.0.0.5", []string{"fe80::1%eth0"}, trusted, "10.0.0.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ClientIP(netip.MustParseAddr(tt.peer), tt.xff, tt.trusted)
			if got.String() != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.5", "1.2.3.4, 10.1.1.1")
	f.Add("10.0.0.5", "[::1]:80,,x")
	f.Add("203.0.113.1", "")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		p, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		got := ClientIP(p, []string{xff}, trusted)
		if !got.IsValid() {
			t.Fatalf("invalid result for %q %q", peer, xff)
		}
		// The answer is the peer or an address the headers really name.
		if got != p.Unmap() && !strings.Contains(xff, strings.Trim(got.String(), "[]")) &&
			!strings.Contains(strings.ToLower(xff), got.String()) {
			// v4-in-v6 forms may be written differently; accept when unmapped equal.
			found := false
			for _, h := range splitXFF([]string{xff}) {
				if a, ok := parseHop(h); ok && a == got {
					found = true
				}
			}
			if !found {
				t.Fatalf("ClientIP(%q,%q) = %s, not in the input", peer, xff, got)
			}
		}
		// An untrusted peer is always the answer.
		if !isTrusted(p.Unmap(), trusted) && got != p.Unmap() {
			t.Fatalf("untrusted peer %s overridden by XFF: %s", p, got)
		}
	})
}
