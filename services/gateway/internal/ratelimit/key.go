package ratelimit

import "net/netip"

// ClientKey is the limiter key of a client address: the address itself for
// IPv4, its /64 for IPv6. One IPv6 subscriber gets a whole /64 (RFC 6177)
// and can pick any of its 2^64 addresses per request, so per-address keys
// would not limit it at all.
func ClientKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, err := a.WithZone("").Prefix(64)
		if err == nil {
			return p.String()
		}
	}
	return a.String()
}
