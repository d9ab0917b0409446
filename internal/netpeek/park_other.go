//go:build !linux

package netpeek

import (
	"errors"
	"net"
)

// Parker parks nothing on this platform: Park returns the zero Parked and the caller waits on a goroutine
// of its own (see Wait).
type Parker struct{}

// Parked is the ticket of one parked connection: only the zero Parked here.
type Parked struct{}

// Resumer is what a parked connection is given back to.
type Resumer interface {
	// Resume runs on a new goroutine: err is nil when the connection has bytes to read (or
	// its peer closed it), ErrCancelled after Cancel.
	Resume(err error)
}

// DefaultParker is the process's Parker.
var DefaultParker = &Parker{}

// ErrCancelled is what a connection's callback gets when it was unparked by Cancel.
var ErrCancelled = errors.New("netpeek: park cancelled")

// Park cannot park here: the zero Parked.
func (p *Parker) Park(net.Conn, Resumer) Parked { return Parked{} }

// Cancel is never reached here.
func (e Parked) Cancel() bool { return false }

// Valid is always false here.
func (e Parked) Valid() bool { return false }

// Len is 0.
func (p *Parker) Len() int { return 0 }
