//go:build !unix

package h1

import "net"

// peerClosed cannot look at the socket here: a client that leaves is noticed when its
// connection is next read or written.
func peerClosed(net.Conn) bool { return false }
