//go:build !unix

package upstream

import "net"

// alive cannot peek without blocking here; stale connections are caught by the resend.
func alive(net.Conn) bool { return true }
