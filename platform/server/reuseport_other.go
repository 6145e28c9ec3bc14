//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package server

import (
	"errors"
	"syscall"
)

func reusePortControl(string, string, syscall.RawConn) error {
	return errors.New("SO_REUSEPORT is not supported on this system")
}
