package ratelimit

import (
	"net/netip"
	"strings"
)

// ClientIP finds the client's address. X-Forwarded-For is believed only as
// far as it was written by trusted proxies: starting from the peer that
// connected to us, while that hop is trusted, step one entry left in the
// X-Forwarded-For chain (walked right to left, across every header
// instance in order). The first untrusted hop is the client. A malformed
// entry stops the walk at the last good hop, so a client cannot hide behind
// garbage. With no trusted proxies the peer address is the client.
func ClientIP(peer netip.Addr, xff []string, trusted []netip.Prefix) netip.Addr {
	peer = peer.Unmap()
	if len(trusted) == 0 || !isTrusted(peer, trusted) {
		return peer
	}
	hops := splitXFF(xff)
	cur := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return cur
		}
		cur = a
		if !isTrusted(cur, trusted) {
			return cur
		}
	}
	// Every hop was a trusted proxy: the leftmost one is as close to the
	// client as we can know.
	return cur
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// splitXFF flattens header instances ("a, b" and "c") into [a b c].
func splitXFF(xff []string) []string {
	var out []string
	for _, h := range xff {
		for _, part := range strings.Split(h, ",") {
			out = append(out, strings.TrimSpace(part))
		}
	}
	return out
}

// parseHop reads an address, tolerating the forms proxies write:
// "1.2.3.4", "1.2.3.4:5678", "2001:db8::1", "[2001:db8::1]:443".
func parseHop(s string) (netip.Addr, bool) {
	if s == "" || len(s) > 64 {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Addr().Zone() != "" {
			return netip.Addr{}, false
		}
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
