//go:build !linux

package proxy

import "net"

// peerClosed is Linux-only; elsewhere a closed pooled connection is found
// when the request fails, and retried (staleTransport).
func peerClosed(net.Conn) bool { return false }
