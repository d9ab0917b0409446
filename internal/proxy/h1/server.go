// Package h1 is the gateway's HTTP/1.1 server. It serves the same http.Handler as net/http but
// spends far less per request: a connection keeps one http.Request, URL, header map and response
// writer for its whole life; a request's header block becomes one string that every header value
// is cut from; timeouts are enforced by one sweeper per server instead of a deadline (a runtime
// timer) per read; and there is no background read goroutine per request. HTTP/2 (ALPN "h2" on
// TLS, prior-knowledge h2c on cleartext) is handed to a net/http server, which stays the one
// HTTP/2 implementation.
//
// The handler must not keep the *http.Request, its header map or URL after ServeHTTP returns:
// they are reused by the next request on the connection (copies made with Clone are fine).
package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"apoxy.dev/apoxy/internal/netpeek"
)

// DefaultMaxHeaderBytes bounds the request line and header block (net/http's default).
const DefaultMaxHeaderBytes = 1 << 20

// Server serves HTTP/1.1 (and hands HTTP/2 to H2) on listeners given to Serve.
type Server struct {
	// Handler answers every HTTP/1.1 request.
	Handler http.Handler
	// TLSConfig, when set, makes every accepted connection TLS. NextProtos should offer "h2"
	// and "http/1.1".
	TLSConfig *tls.Config
	// H2 serves connections that speak HTTP/2: TLS connections that negotiated "h2" and
	// cleartext ones that open with the HTTP/2 preface. nil answers them 505 / closes them.
	// Its Handler and protocol settings are the caller's; it is fed through an in-memory
	// listener, and shut down with this server.
	H2 *http.Server
	// ReadHeaderTimeout bounds reading a request's head once its first byte arrived (and the
	// TLS handshake). IdleTimeout bounds the wait for the next request on a kept-alive
	// connection. Both are enforced to about a second.
	ReadHeaderTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers (DefaultMaxHeaderBytes if 0).
	MaxHeaderBytes int
	// Log receives handler panics and accept errors.
	Log *slog.Logger

	mu        sync.Mutex
	conns     map[*conn]struct{}
	listeners map[net.Listener]struct{}
	h2ln      *handoffListener
	shutdown  atomic.Bool
	nconns    atomic.Int64
	leanIdle  bool // tests: idle connections always give their buffers back
	sweeping  bool
	done      chan struct{}
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

// Serve accepts connections on ln until the server is shut down.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
		s.listeners = map[net.Listener]struct{}{}
		s.done = make(chan struct{})
	}
	s.listeners[ln] = struct{}{}
	if s.H2 != nil && s.h2ln == nil {
		s.h2ln = newHandoffListener(ln.Addr())
		go func() { _ = s.H2.Serve(s.h2ln) }()
	}
	if !s.sweeping {
		s.sweeping = true
		go s.sweep()
	}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logf("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := s.newConn(nc)
		if c == nil {
			nc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

func (s *Server) logf(msg string, args ...any) {
	if s.Log != nil {
		s.Log.Debug(msg, args...)
	}
}

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{srv: s, rwc: nc, remote: nc.RemoteAddr().String()}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.setState(stateIdle)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return nil
	}
	s.conns[c] = struct{}{}
	s.nconns.Add(1)
	return c
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.nconns.Add(-1)
	}
	s.mu.Unlock()
}

// sweep enforces the idle and header timeouts, and cancels the context of a request whose
// client closed its connection while the request is still being served (the upstream client
// checks its context while it waits).
func (s *Server) sweep() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var batch []*conn
	for {
		select {
		case <-s.done:
			return
		case <-tick.C:
		}
		now := monotime()
		batch = batch[:0]
		s.mu.Lock()
		for c := range s.conns {
			batch = append(batch, c)
		}
		s.mu.Unlock()
		for _, c := range batch {
			st, since := c.loadState()
			age := time.Duration(now - since)
			switch st {
			case stateIdle:
				if s.IdleTimeout > 0 && age > s.IdleTimeout && c.state.CompareAndSwap(packState(stateIdle, since), packState(stateClosed, since)) {
					c.rwc.Close()
				}
			case stateHeader:
				if s.ReadHeaderTimeout > 0 && age > s.ReadHeaderTimeout {
					c.rwc.Close()
				}
			case stateActive:
				if age > time.Second && c.ctx.Err() == nil && netpeek.Peek(c.rwc) == netpeek.Closed {
					c.cancel()
				}
			}
		}
		clear(batch)
	}
}

// Shutdown stops accepting, closes idle connections, lets active ones finish their request
// (then closes them) and waits for them until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first := !s.shutdown.Swap(true)
	for ln := range s.listeners {
		ln.Close()
	}
	h2, h2ln := s.H2, s.h2ln
	if first && s.done != nil {
		close(s.done)
	}
	s.mu.Unlock()
	var h2err chan error
	if h2 != nil && h2ln != nil {
		h2ln.Close()
		h2err = make(chan error, 1)
		go func() { h2err <- h2.Shutdown(ctx) }()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	if h2err != nil {
		return <-h2err
	}
	return nil
}

// closeIdle closes connections waiting for a request and reports whether none are left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		st, since := c.loadState()
		if st == stateIdle && c.state.CompareAndSwap(packState(stateIdle, since), packState(stateClosed, since)) {
			c.rwc.Close()
		}
	}
	return len(s.conns) == 0
}

// Close closes every listener and connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	first := !s.shutdown.Swap(true)
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.rwc.Close()
	}
	if first && s.done != nil {
		close(s.done)
	}
	h2, h2ln := s.H2, s.h2ln
	s.mu.Unlock()
	if h2 != nil && h2ln != nil {
		h2ln.Close()
		return h2.Close()
	}
	return nil
}

// handoff gives a connection to the HTTP/2 server.
func (s *Server) handoff(nc net.Conn) bool {
	if s.h2ln == nil {
		return false
	}
	return s.h2ln.give(nc)
}

// handoffListener feeds the HTTP/2 server the connections this server hands it.
type handoffListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *handoffListener) give(nc net.Conn) bool {
	select {
	case l.ch <- nc:
		return true
	case <-l.closed:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.ch:
		return nc, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// prefixConn replays bytes already read from a connection before reading the rest.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Connection states, packed with the time they were entered into one atomic word.
const (
	stateIdle   = iota // waiting for a request's first byte
	stateHeader        // reading a request head
	stateActive        // serving a request
	stateHijacked
	stateClosed
)

// epoch anchors monotime: nanoseconds on the monotonic clock, small enough to pack.
var epoch = time.Now()

func monotime() int64 { return int64(time.Since(epoch)) }

func packState(st int, since int64) uint64 { return uint64(since)<<3 | uint64(st) }

func (c *conn) loadState() (int, int64) {
	v := c.state.Load()
	return int(v & 7), int64(v >> 3)
}

// setState enters st now; false if the sweeper or Shutdown closed the connection first.
func (c *conn) setState(st int) bool {
	for {
		old := c.state.Load()
		if old&7 == stateClosed {
			return false
		}
		if c.state.CompareAndSwap(old, packState(st, monotime())) {
			return true
		}
	}
}

var bufioReaders, bufioWriters sync.Pool

func newReader(r io.Reader) *bufio.Reader {
	if br, ok := bufioReaders.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, 4096)
}

func newWriter(w io.Writer) *bufio.Writer {
	if bw, ok := bufioWriters.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, 4096)
}
