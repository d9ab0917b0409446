//go:build !linux

package netpeek

import (
	"errors"
	"net"
)

// Parker parks nothing on this platform: Park returns nil and the caller waits on a goroutine
// of its own (see Wait).
type Parker struct{}

// Parked is never returned here.
type Parked struct{ fn func(error) }

// DefaultParker is the process's Parker.
var DefaultParker = &Parker{}

// ErrCancelled is what a connection's callback gets when it was unparked by Cancel.
var ErrCancelled = errors.New("netpeek: park cancelled")

// Park cannot park here: nil.
func (p *Parker) Park(net.Conn, func(error)) *Parked { return nil }

// Cancel is never reached here.
func (e *Parked) Cancel() bool { return false }

// Len is 0.
func (p *Parker) Len() int { return 0 }
