package proxy

import (
	"net"
	"syscall"
)

// peerClosed looks, without blocking, for an end of stream, a reset or
// stray bytes on an idle connection; any of them means it must not carry a
// request. One recvfrom(MSG_PEEK|MSG_DONTWAIT) per reused connection.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	var buf [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch rerr {
		case syscall.EAGAIN, syscall.EINTR:
			// Nothing to read: the connection is open and quiet.
		default:
			// nil: an end of stream (0 bytes) or bytes nobody asked for;
			// else a reset or another socket error.
			closed = true
		}
		return true // never wait for readiness
	})
	return closed || err != nil
}
