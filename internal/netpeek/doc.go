// Package netpeek tells, without reading or blocking, whether a connection has bytes waiting or
// was closed by its peer. The proxy uses it to skip upstream connections closed while idle and
// to notice clients that went away while their request is still waiting on an upstream.
package netpeek

// State is what a peek saw.
type State int

const (
	// Unknown: the connection cannot be peeked (not a socket, or an unsupported platform).
	Unknown State = iota
	// Empty: open, nothing to read.
	Empty
	// Data: bytes are waiting.
	Data
	// Closed: the peer closed the connection (or it failed).
	Closed
)
