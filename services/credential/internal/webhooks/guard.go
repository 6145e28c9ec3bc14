package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrRefusedAddress is a delivery (or a webhook URL) refused because its
// host is, or resolves to, an address inside a private network.
var ErrRefusedAddress = errors.New("refused: the address is private, loopback or link-local")

// Guard keeps webhooks from being a way into the cluster: with
// AllowPrivate off, connections to internal addresses are refused. The
// check runs in the dialer's Control hook, on the address actually being
// connected to after DNS resolution, so a name that resolves to a public
// address when the webhook is created and to 10.0.0.1 at delivery time (DNS
// rebinding) is refused too. Deliveries use no proxy and follow no
// redirect, so the dialed address is always the receiver's.
type Guard struct {
	AllowPrivate bool
}

// refusedPrefixes are ranges that are not public unicast beyond what
// netip's predicates cover.
var refusedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT, often pod and node networks
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated
}

// nat64 is the well-known NAT64 prefix: its addresses reach the IPv4
// address in their last 32 bits, which is checked instead.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Allowed reports whether a connection to ip may be made.
func (g Guard) Allowed(ip netip.Addr) bool {
	if g.AllowPrivate {
		return true
	}
	ip = ip.Unmap()
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() {
		return false
	}
	for _, p := range refusedPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// control is the net.Dialer Control hook: address is the resolved ip:port.
func (g Guard) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w (%s)", ErrRefusedAddress, address)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !g.Allowed(ip) {
		return fmt.Errorf("%w (%s)", ErrRefusedAddress, host)
	}
	return nil
}

// Dialer is a dialer whose every connection passes the guard.
func (g Guard) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: g.control}
}

// Resolver looks up a host's addresses (net.DefaultResolver in service).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckHost refuses, when a webhook is created, a URL whose host is or
// resolves to a refused address; the dialer checks again at every delivery.
func (g Guard) CheckHost(ctx context.Context, r Resolver, u *url.URL) error {
	if g.AllowPrivate {
		return nil
	}
	host := strings.Trim(u.Hostname(), "[]")
	if ip, err := netip.ParseAddr(host); err == nil {
		if !g.Allowed(ip) {
			return ErrRefusedAddress
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("the host %q does not resolve", host)
	}
	for _, ip := range ips {
		if !g.Allowed(ip) {
			return ErrRefusedAddress
		}
	}
	return nil
}
