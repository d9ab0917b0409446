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
	// DefaultBodyReadTimeout is how long a request body read may wait for the client's next
	// DATA frame (as HTTP/1.1's, nginx's client_body_timeout).
	DefaultBodyReadTimeout = 60 * time.Second
	// DefaultMaxQueuedStreams is how many streams may wait for a handler slot, as a multiple of
	// MaxConcurrentStreams: a peer that resets streams as fast as it opens them (rapid reset)
	// fills the queue while the handlers of its reset streams still run, and is told
	// ENHANCE_YOUR_CALM.
	DefaultMaxQueuedStreams = 4
	// DefaultMaxStreamErrors is how many stream errors a peer may cause per second before the
	// connection is closed with ENHANCE_YOUR_CALM.
	DefaultMaxStreamErrors = 200
)

// Limits are what a connection is allowed: the SETTINGS the server advertises and the
// timeouts it enforces. Zero fields take the Default* values. A connection takes the limits
// in force when it opens and keeps them for its life (its peer was told them in SETTINGS);
// Server.SetLimits changes them for connections opened afterwards.
type Limits struct {
	// MaxConcurrentStreams is the SETTINGS_MAX_CONCURRENT_STREAMS advertised and the number of
	// handlers that run at once per connection.
	MaxConcurrentStreams uint32
	// InitialWindowSize is each stream's receive window; ConnWindowSize the connection's
	// (at least 65535).
	InitialWindowSize, ConnWindowSize int32
	// MaxHeaderListSize bounds a request's header block (decoded); more is answered 431.
	MaxHeaderListSize uint32
	// MaxReadFrameSize is the largest frame accepted (SETTINGS_MAX_FRAME_SIZE, 16 KiB..16 MiB).
	MaxReadFrameSize uint32
	// IdleTimeout closes a connection without open streams for this long (GOAWAY first);
	// negative: never.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the wait for the client's preface and first SETTINGS.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds each write to the socket: a peer that stops reading loses its
	// connection instead of pinning it.
	WriteTimeout time.Duration
	// BodyReadTimeout bounds how long a handler's read of the request body waits for the
	// client's next DATA (negative: no bound). A stalled read returns ErrBodyReadTimeout and
	// the stream is reset (CANCEL): a client that declares a body and stops sending it would
	// otherwise hold a stream slot, and the upstream request it feeds, for as long as the
	// connection lives.
	BodyReadTimeout time.Duration
	// MaxQueuedStreams and MaxStreamErrors: see DefaultMaxQueuedStreams, DefaultMaxStreamErrors.
	MaxQueuedStreams, MaxStreamErrors int
	// IdleRest is how long a connection without streams stays awake before it rests: its
	// reader goroutine ends, its buffers, Framer and HPACK encoder go, and its socket waits in
	// netpeek's Parker (≈1.5 KiB in all in cleartext; TLS keeps its tls.Conn and buffers)
	// until the next frame arrives. Waking
	// costs a few microseconds, so connections in use never rest. Negative: never.
	IdleRest time.Duration
}

// resolved returns l with every default filled in and every value in range: what a
// connection reads (MaxQueuedStreams becomes a number of streams, not a multiple).
func (l Limits) resolved() *Limits {
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if l.InitialWindowSize <= 0 {
		l.InitialWindowSize = DefaultInitialWindowSize
	}
	if l.ConnWindowSize <= 0 {
		l.ConnWindowSize = DefaultConnWindowSize
	}
	l.ConnWindowSize = max(l.ConnWindowSize, 65535)
	if l.MaxHeaderListSize == 0 {
		l.MaxHeaderListSize = DefaultMaxHeaderListSize
	}
	if l.MaxReadFrameSize < 16384 || l.MaxReadFrameSize > 1<<24-1 {
		l.MaxReadFrameSize = DefaultMaxReadFrameSize
	}
	l.IdleTimeout = orDuration(l.IdleTimeout, DefaultIdleTimeout)
	l.HandshakeTimeout = orDuration(l.HandshakeTimeout, DefaultHandshakeTimeout)
	l.WriteTimeout = orDuration(l.WriteTimeout, DefaultWriteTimeout)
	l.BodyReadTimeout = orDuration(l.BodyReadTimeout, DefaultBodyReadTimeout)
	l.IdleRest = orDuration(l.IdleRest, DefaultIdleRest)
	if l.MaxQueuedStreams <= 0 {
		l.MaxQueuedStreams = DefaultMaxQueuedStreams
	}
	l.MaxQueuedStreams *= int(l.MaxConcurrentStreams)
	if l.MaxStreamErrors <= 0 {
		l.MaxStreamErrors = DefaultMaxStreamErrors
	}
	return &l
}

// Server serves HTTP/2 connections handed to ServeConn.
type Server struct {
	// Handler answers every request.
	Handler http.Handler
	// Limits are the connections' limits until SetLimits replaces them; set them before the
	// first ServeConn.
	Limits
	// BaseContext, if set, is the parent context of every request of a connection.
	BaseContext func(net.Conn) context.Context
	// Log receives handler panics and protocol errors worth a look (debug level).
	Log *slog.Logger

	lim      atomic.Pointer[Limits] // resolved; what new connections take
	mu       sync.Mutex
	conns    map[*conn]struct{}
	nconns   atomic.Int64
	shutdown atomic.Bool
	idle     chan struct{} // closed when the last connection ends during Shutdown
}

// SetLimits changes the limits of connections opened from now on; open ones keep theirs. It
// is how a configuration change reaches a running listener without dropping a connection.
func (s *Server) SetLimits(l Limits) { s.lim.Store(l.resolved()) }

// limits are the resolved limits a new connection takes.
func (s *Server) limits() *Limits {
	if l := s.lim.Load(); l != nil {
		return l
	}
	s.lim.CompareAndSwap(nil, s.Limits.resolved())
	return s.lim.Load()
}

func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
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
