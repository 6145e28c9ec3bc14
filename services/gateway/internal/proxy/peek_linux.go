package proxy

import (
	"net"
	"syscall"
)

// peeker looks, without blocking, for an end of stream, a reset or stray
// bytes on an idle connection; any of them means it must not carry a
// request. One recvfrom(MSG_PEEK|MSG_DONTWAIT) per reuse; built once per
// connection so a check allocates nothing.
type peeker struct {
	raw    syscall.RawConn
	buf    [1]byte
	closed bool
	fn     func(fd uintptr) bool
}

func newPeeker(c net.Conn) *peeker {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &peeker{raw: raw}
	p.fn = func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: nothing to read, the connection is open and quiet. nil:
		// an end of stream (0 bytes) or bytes nobody asked for; else a
		// reset or another socket error.
		p.closed = err != syscall.EAGAIN && err != syscall.EINTR
		return true // never wait for readiness
	}
	return p
}

// peerClosed reports whether the peer closed (or broke) the connection.
func (p *peeker) peerClosed() bool {
	if p == nil {
		return false
	}
	if err := p.raw.Read(p.fn); err != nil {
		return true
	}
	return p.closed
}
