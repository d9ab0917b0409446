//go:build !unix

package netpeek

import "net"

// Peek cannot look without blocking on this platform.
func Peek(net.Conn) State { return Unknown }
