package proxy

import (
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// dialer bounds the TCP connect: fasthttp's default dial may wait for the
// whole request timeout on an unroutable host; a dead service should fail
// in well under a second on a refused port, and at worst connectTimeout.
func dialer(connectTimeout time.Duration) fasthttp.DialFunc {
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	return func(addr string) (net.Conn, error) { return d.Dial("tcp", addr) }
}
