package server

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// connLimiter caps the connections one client address holds open at once
// (an IPv6 client per /64, which one subscriber gets whole). Without it one
// address could hold thousands of idle sockets (3000 were accepted), each
// a file descriptor and a fasthttp worker's buffers.
type connLimiter struct {
	net.Listener
	max     int
	exempt  func(netip.Addr) bool
	refused prometheus.Counter

	mu   sync.Mutex
	open map[netip.Addr]int
}

// refusal is what a connection over the cap gets before it is closed.
const refusal = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: 97\r\n\r\n" +
	`{"code":"too_many_connections","detail":"This address has too many connections open to the API."}`

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, ok := connKey(c.RemoteAddr())
		if !ok || (l.exempt != nil && l.exempt(key)) {
			return c, nil
		}
		l.mu.Lock()
		n := l.open[key]
		if n >= l.max {
			l.mu.Unlock()
			l.refused.Inc()
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = c.Write([]byte(refusal))
			_ = c.Close()
			continue
		}
		l.open[key] = n + 1
		l.mu.Unlock()
		return &limitedConn{Conn: c, release: func() { l.release(key) }}, nil
	}
}

func (l *connLimiter) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] <= 1 {
		delete(l.open, key)
		return
	}
	l.open[key]--
}

// connKey is the address a connection counts against: IPv4 as is, IPv6 by /64.
func connKey(a net.Addr) (netip.Addr, bool) {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return netip.Addr{}, false
	}
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.WithZone("").Prefix(64); err == nil {
			return p.Addr(), true
		}
	}
	return ip, true
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
