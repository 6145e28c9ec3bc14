package proxy

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// dialer bounds the TCP connect: fasthttp's default dial may wait for the
// whole request timeout on an unroutable host; a dead service should fail
// in well under a second on a refused port, and at worst connectTimeout.
// Every connection is a trackedConn, so a request that fails on a reused
// connection before any answer can be told apart (see staleTransport).
func dialer(connectTimeout time.Duration) fasthttp.DialFunc {
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	return func(addr string) (net.Conn, error) {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		return newTrackedConn(c), nil
	}
}

// errPeerClosed is what a write on a pooled connection returns when the
// upstream had already closed it while it sat idle (a drained or restarted
// service): nothing was sent.
var errPeerClosed = errors.New("pooled connection was closed by the upstream while idle")

// trackedConn knows, for the request it is carrying, whether the connection
// had carried one before and whether any byte of the answer arrived. A
// connection is used by one request at a time (fasthttp's pool hands it
// over under a lock), so the fields need no lock of their own.
type trackedConn struct {
	net.Conn
	addr trackedAddr
	peek *peeker

	requests int   // requests started on this connection
	reading  bool  // the last call was a Read: the next Write starts a request
	answered int64 // bytes of the current request's answer read so far
}

func newTrackedConn(c net.Conn) *trackedConn {
	tc := &trackedConn{Conn: c, peek: newPeeker(c)}
	tc.addr = trackedAddr{Addr: c.RemoteAddr(), conn: tc}
	return tc
}

func (c *trackedConn) Write(p []byte) (int, error) {
	if c.requests == 0 || c.reading {
		c.requests++
		c.reading = false
		c.answered = 0
		// A reused connection is checked before the request goes out: a
		// drained upstream closed it, and its FIN (or RST) is already here.
		if c.requests > 1 && c.peek.peerClosed() {
			return 0, errPeerClosed
		}
	}
	return c.Conn.Write(p)
}

func (c *trackedConn) Read(p []byte) (int, error) {
	c.reading = true
	n, err := c.Conn.Read(p)
	c.answered += int64(n)
	return n, err
}

// RemoteAddr lets staleTransport find the connection a failed request used:
// fasthttp stores it in the Response (Response.RemoteAddr).
func (c *trackedConn) RemoteAddr() net.Addr { return &c.addr }

// unanswered reports whether the current request was sent on a reused
// connection and got no byte back: an upstream that closes a keep-alive
// connection does so between requests, so it never read this one (a
// draining fasthttp server drops a request that arrives on a connection it
// is closing, unread). It may be sent again, whatever its method.
func (c *trackedConn) unanswered() bool { return c.requests > 1 && c.answered == 0 }

type trackedAddr struct {
	net.Addr
	conn *trackedConn
}

// staleConnError is a request's failure on a reused connection before any
// byte of the answer arrived.
type staleConnError struct {
	err    error
	client *fasthttp.HostClient // whose idle connections are suspect
}

func (e *staleConnError) Error() string { return "reused connection: " + e.err.Error() }
func (e *staleConnError) Unwrap() error { return e.err }

// isStale reports whether err is a staleConnError (retry it on a new
// connection; not the upstream's failure).
func isStale(err error) bool {
	var s *staleConnError
	return errors.As(err, &s)
}

// staleTransport is fasthttp's DefaultTransport, marking a failure on a
// reused connection before any answer byte as stale. A timeout is never
// stale: the upstream may be working on the request.
type staleTransport struct{}

func (staleTransport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (bool, error) {
	retry, err := fasthttp.DefaultTransport.RoundTrip(hc, req, resp)
	if err == nil {
		return retry, nil
	}
	if a, ok := resp.RemoteAddr().(*trackedAddr); ok && a.conn.unanswered() && !isTimeout(err) {
		if err == io.EOF {
			err = fasthttp.ErrConnectionClosed
		}
		return true, &staleConnError{err: err, client: hc}
	}
	return retry, err
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.Is(err, fasthttp.ErrTimeout) || (errors.As(err, &ne) && ne.Timeout())
}
