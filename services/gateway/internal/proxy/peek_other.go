//go:build !linux

package proxy

import "net"

// peeker is Linux-only; elsewhere a closed pooled connection is found when
// the request fails, and retried (staleTransport).
type peeker struct{}

func newPeeker(net.Conn) *peeker { return nil }

func (*peeker) peerClosed() bool { return false }
