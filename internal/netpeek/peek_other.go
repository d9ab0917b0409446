//go:build !unix

package netpeek

import "net"

// Peek cannot look without blocking on this platform.
func Peek(net.Conn) State { return Unknown }

// Wait returns at once here: the caller's read does the waiting.
func Wait(net.Conn) error { return nil }
