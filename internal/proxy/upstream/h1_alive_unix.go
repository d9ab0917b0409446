//go:build unix

package upstream

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// alive reports whether an idle connection is still open: a non-blocking peek sees neither
// end-of-stream nor stray bytes (an idle HTTP/1.1 connection has nothing to read). Upstreams
// close idle connections on their own schedule (Node.js after 5 s), and a request sent on such
// a connection fails after its body may already have gone out.
func alive(nc net.Conn) bool {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	open := true
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr != nil:
			open = errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK)
		default:
			open = false // n == 0: closed; n > 0: bytes nobody asked for
			_ = n
		}
		return true
	})
	return err == nil && open
}
