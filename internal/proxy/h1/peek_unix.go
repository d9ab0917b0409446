//go:build unix

package h1

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// peerClosed reports whether the client closed (or reset) nc, looking without consuming and
// without waiting. Unlike netpeek.Peek it goes through RawConn.Control, which does not take the
// connection's read lock: netpeek's RawConn.Read waits for a body read blocked on the same
// connection, and the sweeper, which peeks at every active connection, would stall behind one
// client that stopped sending its body (and with it every timeout of the server).
func peerClosed(nc net.Conn) bool {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	err = rc.Control(func(fd uintptr) {
		var buf [1]byte
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr != nil:
			closed = !errors.Is(rerr, syscall.EAGAIN) && !errors.Is(rerr, syscall.EWOULDBLOCK) && !errors.Is(rerr, syscall.EINTR)
		default:
			closed = n == 0
		}
	})
	return err != nil || closed
}
