//go:build unix

package netpeek

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// Peek looks at a connection without consuming or blocking: whether bytes are waiting, the peer
// has closed it, or neither.
func Peek(nc net.Conn) State {
	rc, err := rawConn(nc)
	if rc == nil {
		if err != nil {
			return Closed
		}
		return Unknown
	}
	var buf [1]byte
	st := Unknown
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr != nil && (errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK)):
			st = Empty
		case rerr != nil || n == 0:
			st = Closed
		default:
			st = Data
		}
		return true
	})
	if err != nil {
		return Closed
	}
	return st
}

// Wait blocks until the connection has bytes to read or is closed, without reading them and
// without a buffer: an idle connection waits here holding no memory of its own.
func Wait(nc net.Conn) error {
	rc, err := rawConn(nc)
	if rc == nil {
		return err
	}
	var buf [1]byte
	return rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return !(errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK))
	})
}

// rawConn is the socket under nc (under TLS too); nil and no error when there is none.
func rawConn(nc net.Conn) (syscall.RawConn, error) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, nil
	}
	return sc.SyscallConn()
}
