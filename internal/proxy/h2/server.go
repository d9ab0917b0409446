// Package h2 is Apoxy's HTTP/2 server (RFC 9113), on golang.org/x/net/http2's Framer and hpack.
//
// One goroutine per connection reads frames through a buffered reader and answers the
// connection's control frames itself; each request runs the handler on a goroutine of its own
// (at most MaxConcurrentStreams per connection, a bounded queue behind them). Writes go into
// the connection's buffered writer under its lock and reach the socket in groups: the reader
// flushes when it has consumed every frame that had arrived, a stream flushes when no other
// stream is waiting to write. That, not a goroutine and a write per frame, is what makes this
// server cheaper than net/http's (see ../shared/reference/http2-spike.md).
//
// The defences net/http's server has are kept: the Framer's frame-size, header-list and
// CONTINUATION checks, HPACK limits, a cap on running and queued handlers (rapid reset,
// CVE-2023-44487), a cap on the stream errors a peer may provoke ("MadeYouReset"), write
// deadlines (a peer that does not read cannot pin a connection), idle and handshake timeouts,
// and GOAWAY with a graceful drain on Shutdown.
package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Server's limits (production values; every one is configurable).
const (
	DefaultMaxConcurrentStreams = 250
	DefaultInitialWindowSize    = 1 << 20 // per stream, what we advertise
	DefaultConnWindowSize       = 4 << 20 // the connection's receive window
	DefaultMaxHeaderListSize    = 64 << 10
	DefaultMaxReadFrameSize     = 16 << 10
	DefaultIdleTimeout          = 120 * time.Second
	DefaultHandshakeTimeout     = 10 * time.Second
	DefaultWriteTimeout         = 30 * time.Second
	DefaultIdleRest             = time.Second
	// DefaultMaxQueuedStreams is how many streams may wait for a handler slot, as a multiple of
	// MaxConcurrentStreams: a peer that resets streams as fast as it opens them (rapid reset)
	// fills the queue while the handlers of its reset streams still run, and is told
	// ENHANCE_YOUR_CALM.
	DefaultMaxQueuedStreams = 4
	// DefaultMaxStreamErrors is how many stream errors a peer may cause per second before the
	// connection is closed with ENHANCE_YOUR_CALM.
	DefaultMaxStreamErrors = 200
)

// Server serves HTTP/2 connections handed to ServeConn.
type Server struct {
	// Handler answers every request.
	Handler http.Handler
	// MaxConcurrentStreams is the SETTINGS_MAX_CONCURRENT_STREAMS advertised and the number of
	// handlers that run at once per connection.
	MaxConcurrentStreams uint32
	// InitialWindowSize is each stream's receive window; ConnWindowSize the connection's.
	InitialWindowSize, ConnWindowSize int32
	// MaxHeaderListSize bounds a request's header block (decoded); more is answered 431.
	MaxHeaderListSize uint32
	// MaxReadFrameSize is the largest frame accepted (SETTINGS_MAX_FRAME_SIZE).
	MaxReadFrameSize uint32
	// IdleTimeout closes a connection without open streams for this long (GOAWAY first).
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the wait for the client's preface and first SETTINGS.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds each write to the socket: a peer that stops reading loses its
	// connection instead of pinning it.
	WriteTimeout time.Duration
	// MaxQueuedStreams and MaxStreamErrors: see DefaultMaxQueuedStreams, DefaultMaxStreamErrors.
	MaxQueuedStreams, MaxStreamErrors int
	// IdleRest is how long a cleartext connection without streams stays awake before it
	// rests: its reader goroutine ends, its buffers, Framer and HPACK encoder go, and its
	// socket waits in netpeek's Parker (≈1.5 KiB in all) until the next frame arrives. Waking
	// costs a few microseconds, so connections in use never rest. Negative: never.
	IdleRest time.Duration
	// BaseContext, if set, is the parent context of every request of a connection.
	BaseContext func(net.Conn) context.Context
	// Log receives handler panics and protocol errors worth a look (debug level).
	Log *slog.Logger

	mu       sync.Mutex
	conns    map[*conn]struct{}
	nconns   atomic.Int64
	shutdown atomic.Bool
	idle     chan struct{} // closed when the last connection ends during Shutdown
}

func (s *Server) maxStreams() uint32 {
	if s.MaxConcurrentStreams == 0 {
		return DefaultMaxConcurrentStreams
	}
	return s.MaxConcurrentStreams
}

func (s *Server) streamWindow() int32 {
	if s.InitialWindowSize <= 0 {
		return DefaultInitialWindowSize
	}
	return s.InitialWindowSize
}

func (s *Server) connWindow() int32 {
	if s.ConnWindowSize <= 0 {
		return DefaultConnWindowSize
	}
	return max(s.ConnWindowSize, 65535)
}

func (s *Server) maxHeaderList() uint32 {
	if s.MaxHeaderListSize == 0 {
		return DefaultMaxHeaderListSize
	}
	return s.MaxHeaderListSize
}

func (s *Server) maxFrame() uint32 {
	if s.MaxReadFrameSize < 16384 || s.MaxReadFrameSize > 1<<24-1 {
		return DefaultMaxReadFrameSize
	}
	return s.MaxReadFrameSize
}

func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func (s *Server) maxQueued() int {
	if s.MaxQueuedStreams <= 0 {
		return DefaultMaxQueuedStreams * int(s.maxStreams())
	}
	return s.MaxQueuedStreams * int(s.maxStreams())
}

func (s *Server) maxStreamErrors() int {
	if s.MaxStreamErrors <= 0 {
		return DefaultMaxStreamErrors
	}
	return s.MaxStreamErrors
}

func (s *Server) logger() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

// ErrServerClosed is returned by ServeConn after Shutdown.
var ErrServerClosed = errors.New("h2: server closed")

// ServeConn serves one connection that speaks HTTP/2: a TLS connection that negotiated "h2"
// (its ConnectionState becomes each request's TLS), or a cleartext one whose next bytes are the
// client preface. It returns when the connection ends, and closes it.
func (s *Server) ServeConn(nc net.Conn) error {
	if s.shutdown.Load() {
		nc.Close()
		return ErrServerClosed
	}
	c := newConn(s, nc)
	if tc, ok := nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
		st := tc.ConnectionState()
		c.tls = &st
	}
	s.mu.Lock()
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.nconns.Add(1)
	s.mu.Unlock()
	return c.serve()
}

// forget removes an ended connection from the server's set.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	s.nconns.Add(-1)
	if len(s.conns) == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

func (s *Server) idleRest() time.Duration {
	if s.IdleRest == 0 {
		return DefaultIdleRest
	}
	return s.IdleRest
}

// Shutdown stops taking connections and drains the open ones: each is sent GOAWAY, finishes
// the streams it had started, and closes. When ctx ends first, the rest are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	s.mu.Lock()
	var idle chan struct{}
	if len(s.conns) > 0 {
		idle = make(chan struct{})
		s.idle = idle
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.goAway()
	}
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.close()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// Close closes every connection at once.
func (s *Server) Close() error {
	s.shutdown.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.close()
	}
	return nil
}

// close closes the connection from outside its goroutine; a parked one is unparked first, so
// its socket leaves the Parker's set before the close and a goroutine comes back to end it.
func (c *conn) close() {
	c.mu.Lock()
	c.unparkLocked()
	c.closed = true
	c.mu.Unlock()
	c.nc.Close()
}
