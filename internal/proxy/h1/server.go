// Package h1 is the gateway's HTTP/1.1 server. It serves the same http.Handler as net/http but
// spends far less per request: a connection keeps one http.Request, URL, header map and response
// writer for its whole life; a request's header block becomes one string that every header value
// is cut from; timeouts are enforced by one sweeper per server instead of a deadline (a runtime
// timer) per read; and there is no background read goroutine per request. HTTP/2 (ALPN "h2" on
// TLS, prior-knowledge h2c on cleartext) is handed to a net/http server, which stays the one
// HTTP/2 implementation.
//
// Hostile clients are bounded: head size and field count (431/414), request bodies that stall
// (BodyReadTimeout), connections at once (MaxConns, a shared ConnLimiter); what the server
// refuses without calling the handler is reported through OnReject.
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
	"syscall"
	"time"
)

// Defaults of the Server's limits.
const (
	// DefaultMaxHeaderBytes bounds the request line and header block: 60 KiB, Envoy's default
	// (net/http's 1 MiB let one client make the gateway hold and forward megabyte heads).
	DefaultMaxHeaderBytes = 60 << 10
	// DefaultMaxHeaders bounds the number of header fields of a request (Envoy's default): every
	// field costs a map entry here and again in every hop the request is forwarded to.
	DefaultMaxHeaders = 100
	// DefaultMaxURLBytes bounds the request target (answered 414 past it).
	DefaultMaxURLBytes = 16 << 10
	// DefaultBodyReadTimeout is how long a body read may wait for the client's next byte
	// (nginx's client_body_timeout): a client that declares a body and stops sending it would
	// otherwise hold its connection, and the upstream one it is forwarded on, forever.
	DefaultBodyReadTimeout = 60 * time.Second
	// DefaultIdleRest: see Server.IdleRest.
	DefaultIdleRest = time.Second
	// DefaultCrowd is how many cleartext connections may wait for their next request on a
	// goroutine of their own before the others rest at once instead of after IdleRest (see
	// Server.crowd). Past it a busy keep-alive client pays a Parker round trip per request;
	// below it, none.
	DefaultCrowd = 512
	// DefaultDrainQuiet is how long a Shutdown with DrainAccept waits with no connection busy
	// before it stops accepting.
	DefaultDrainQuiet = time.Second
)

// ErrBodyReadTimeout is what a request body's Read returns when the client sent no byte of it
// for BodyReadTimeout while the body was being read. The connection is closed after the
// handler returns. It is not a net.Error timeout: the upstream did not time out, the client
// stalled.
var ErrBodyReadTimeout = errors.New("h1: the client stopped sending the request body (body read timeout)")

// ConnServer serves whole connections of another protocol (HTTP/2) handed over by Server.
type ConnServer interface {
	// ServeConn serves nc until it ends, and closes it.
	ServeConn(nc net.Conn) error
	// Shutdown drains the connections it serves; Close closes them at once.
	Shutdown(ctx context.Context) error
	Close() error
}

// Limits are what a connection is allowed. A connection takes the limits in force when it
// is accepted and keeps them; Server.SetLimits changes them for connections accepted
// afterwards.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's head once its first byte arrived (and the
	// TLS handshake). IdleTimeout bounds the wait for the next request on a kept-alive
	// connection. Both are enforced to about a second; 0 is no bound.
	ReadHeaderTimeout, IdleTimeout time.Duration
	// IdleRest is how long a keep-alive connection waits for its next request before it
	// rests: its read buffer goes back to the pool and its goroutine ends, the socket waiting
	// in netpeek's Parker (~0.7 KiB in all in cleartext; TLS keeps its tls.Conn and buffers)
	// until bytes arrive. The sweeper wakes it with a read deadline, so the rest comes within
	// a sweep period after IdleRest (under TLS the read past the deadline is what proves the
	// TLS layer holds no decrypted bytes). DefaultIdleRest if 0; negative: never.
	IdleRest time.Duration
	// MaxHeaderBytes bounds the request line and headers, line endings included
	// (DefaultMaxHeaderBytes if 0). A longer head is answered 431 (414 when the request line
	// alone does not fit) and the connection closed.
	MaxHeaderBytes int
	// MaxHeaders bounds the number of header fields of a request (DefaultMaxHeaders if 0).
	// More are answered 431 and the connection closed.
	MaxHeaders int
	// MaxURLBytes bounds the request target (DefaultMaxURLBytes if 0). A longer one is
	// answered 414 and the connection closed.
	MaxURLBytes int
	// BodyReadTimeout bounds how long a read of the request body waits for the client's next
	// byte (DefaultBodyReadTimeout if 0, none if negative). Only a read that is blocked counts:
	// a handler busy elsewhere (waiting on an upstream, streaming a response) is not affected.
	// A stalled read returns ErrBodyReadTimeout and the connection is closed after the
	// handler. Enforced by the sweeper, to about a second.
	BodyReadTimeout time.Duration
}

// resolved returns l with every default filled in: what a connection reads.
func (l Limits) resolved() *Limits {
	if l.IdleRest == 0 {
		l.IdleRest = DefaultIdleRest
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = DefaultMaxHeaders
	}
	if l.MaxURLBytes <= 0 {
		l.MaxURLBytes = DefaultMaxURLBytes
	}
	if l.BodyReadTimeout == 0 {
		l.BodyReadTimeout = DefaultBodyReadTimeout
	}
	return &l
}

// SetLimits changes the limits of connections accepted from now on; open ones keep theirs.
// It is how a configuration change reaches a running listener without dropping a connection.
func (s *Server) SetLimits(l Limits) { s.lim.Store(l.resolved()) }

// limits are the resolved limits a new connection takes.
func (s *Server) limits() *Limits {
	if l := s.lim.Load(); l != nil {
		return l
	}
	s.lim.CompareAndSwap(nil, s.Limits.resolved())
	return s.lim.Load()
}

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
	// H2Conns, when set, serves the HTTP/2 connections instead of H2: each is handed to its
	// ServeConn directly (no in-memory listener), and it is shut down and closed with this
	// server.
	H2Conns ConnServer
	// Limits are the connections' limits until SetLimits replaces them; set them before the
	// first Serve.
	Limits
	// MaxConns bounds this server's open client connections, over all its listeners (0: no
	// limit). Connections handed to H2 or hijacked count until they are closed. A connection
	// past the limit is accepted and closed at once (cleartext ones get a bare 503 first), so
	// the kernel's backlog does not fill up; OnReject hears of it. With a limit (this or
	// Limiter), connections are wrapped to give their place back when closed: a hijacker gets
	// the wrapper (which keeps CloseWrite and SyscallConn), not a *net.TCPConn.
	MaxConns int
	// Limiter, when set, is a connection budget shared with other servers (one per listener,
	// say), enforced like MaxConns; a connection takes a place in both.
	Limiter *ConnLimiter
	// OnReject, when set, hears of every request the server answers itself with an error
	// status (400, 408, 414, 417, 431, 501, 505) and of every connection it refuses (503), with
	// a Reject* reason: these never reach the handler, so without it the access log and
	// metrics would not see malformed or smuggling attempts, slow clients or floods. It is
	// called from connection goroutines, concurrently, and must not block.
	OnReject func(remote net.Addr, status int, reason string)
	// DrainAccept makes Shutdown keep the listeners accepting while it drains: every
	// connection, new or already open, gets one more request at most, answered with
	// "Connection: close"; idle keep-alive connections are closed. The listeners close (and
	// connections that have still not sent a request with them) once no connection has been
	// busy for DrainQuiet (DefaultDrainQuiet if 0), or when Shutdown's context ends; a
	// connection that has not sent a request yet counts as busy for DrainQuiet after it was
	// accepted. Clients (and load balancers still sending to this instance) keep being
	// served while they move away, instead of being refused. TLS connections are offered no
	// "h2" during the drain (the HTTP/2 server is shut down at once), so they speak HTTP/1.1.
	// Without it, the listeners close as soon as Shutdown starts. A listener whose port is
	// about to be bound again should not drain this way.
	DrainAccept bool
	// DrainQuiet is how long a DrainAccept Shutdown waits with no connection busy before it
	// closes the listeners (DefaultDrainQuiet if 0): traffic that keeps coming keeps the drain
	// going until Shutdown's context ends.
	DrainQuiet time.Duration
	// Log receives handler panics and accept errors.
	Log *slog.Logger

	lim       atomic.Pointer[Limits] // resolved; what new connections take
	mu        sync.Mutex
	conns     map[*conn]struct{}
	listeners map[net.Listener]struct{}
	stopped   bool // the listeners were closed: no new connection is taken
	h2ln      *handoffListener
	shutdown  atomic.Bool
	nconns    atomic.Int64
	own       *ConnLimiter // MaxConns
	drainTLS  *tls.Config  // TLSConfig without "h2", for connections accepted while draining
	leanIdle  bool         // tests: idle connections always give their buffers back
	noPark    bool         // tests: idle connections keep their goroutine (netpeek.Wait)
	sweeping  bool
	// waiting counts the connections waiting for a request's first byte on their goroutine.
	// When crowd (DefaultCrowd if 0) of them wait, the next to wait rests at once: 10k
	// clients connecting within IdleRest would otherwise hold 10k goroutines until the
	// sweeper rests them, their stacks (8 KiB each) while they wait and their g structs
	// (~450 B each, which the Go runtime never frees) for the life of the process.
	waiting atomic.Int64
	crowd   int64
	// sweepEvery is the sweeper's period (a second if 0; tests shorten it).
	sweepEvery time.Duration
	done       chan struct{}
	doneClosed bool
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
	if s.MaxConns > 0 && s.own == nil {
		s.own = NewConnLimiter(s.MaxConns)
	}
	limited := s.limited()
	if s.H2 != nil && s.H2Conns == nil && s.h2ln == nil {
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
		if limited {
			if !s.admit() {
				s.refuse(nc)
				continue
			}
			nc = s.counted(nc)
		}
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
	ra := nc.RemoteAddr()
	c := &conn{srv: s, lim: s.limits(), rwc: nc, raw: nc, remoteAddr: ra}
	c.setState(stateNew)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
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

// sweep enforces the idle, header and body read timeouts, and cancels the context of a request
// whose client closed its connection while the request is still being served (the upstream
// client checks its context while it waits). It runs until Close, or until Shutdown returns.
func (s *Server) sweep() {
	every := s.sweepEvery
	if every <= 0 {
		every = time.Second
	}
	tick := time.NewTicker(every)
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
			age, lim := time.Duration(now-since), c.lim
			switch st {
			case stateIdle, stateNew:
				if lim.IdleTimeout > 0 && age > lim.IdleTimeout && c.state.CompareAndSwap(packState(st, since), packState(stateClosed, since)) {
					c.closeRaw()
				} else if st == stateIdle && lim.IdleRest >= 0 && age > lim.IdleRest && !s.noPark {
					c.wake()
				}
			case stateHeader:
				// The connection reads "closed" after this, which is how it knows to report
				// the timeout.
				if lim.ReadHeaderTimeout > 0 && age > lim.ReadHeaderTimeout && c.state.CompareAndSwap(packState(stateHeader, since), packState(stateClosed, since)) {
					c.closeRaw()
				}
			case stateActive:
				if lim.BodyReadTimeout > 0 {
					c.sweepBody(now, lim.BodyReadTimeout)
				}
				if age > every {
					c.cancelIfGone()
				}
			}
		}
		clear(batch)
	}
}

// sweepBody cuts a body read that has waited for the client past the timeout. A body read
// makes c.bodyReads odd while it runs; the sweeper remembers the value it last saw and since
// when: the same odd value for longer than the timeout is a read that got nothing all that
// time. Setting a read deadline in the past wakes it, and the body turns the error into
// ErrBodyReadTimeout. The stall is measured from the first sweep that saw it, so the timeout
// is enforced to within a sweep period, without a timer per read.
func (c *conn) sweepBody(now int64, timeout time.Duration) {
	v := c.bodyReads.Load()
	if v&1 == 0 || v != c.sweptReads {
		c.sweptReads, c.sweptAt = v, now
		return
	}
	if time.Duration(now-c.sweptAt) > timeout && c.expired.CompareAndSwap(0, expiredBody) {
		c.raw.SetReadDeadline(time.Now())
	}
}

// Shutdown drains the server: idle connections are closed, active ones finish their request
// (answered with "Connection: close") and are closed. It returns once no connection is left,
// or with ctx's error when ctx ends first (the connections still open are left to finish).
// The listeners close at once; with DrainAccept they keep accepting until the drain goes
// quiet (see DrainAccept).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown.Store(true)
	accepting := s.DrainAccept && !s.stopped
	if !accepting {
		s.stopListeners()
	}
	h2, h2ln, h2c := s.H2, s.h2ln, s.H2Conns
	s.mu.Unlock()
	defer s.stopSweeper()
	var h2err chan error
	switch {
	case h2c != nil:
		h2err = make(chan error, 1)
		go func() { h2err <- h2c.Shutdown(ctx) }()
	case h2 != nil && h2ln != nil:
		h2ln.Close()
		h2err = make(chan error, 1)
		go func() { h2err <- h2.Shutdown(ctx) }()
	}
	quiet := s.DrainQuiet
	if quiet <= 0 {
		quiet = DefaultDrainQuiet
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var quietSince time.Time // when the last connection went away, while accepting
	for {
		// While accepting, a connection that has not sent a request yet is left to send one
		// (it may have just been accepted), and waited for while younger than quiet.
		var spareNew time.Duration
		if accepting {
			spareNew = quiet
		}
		busy := s.closeIdle(spareNew)
		if accepting {
			switch {
			case busy:
				quietSince = time.Time{}
			case quietSince.IsZero():
				quietSince = time.Now()
			case time.Since(quietSince) >= quiet:
				s.mu.Lock()
				s.stopListeners()
				s.mu.Unlock()
				accepting = false
				continue // a connection accepted meanwhile is still waited for
			}
		} else if !busy {
			break
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.stopListeners()
			s.mu.Unlock()
			return ctx.Err()
		case <-tick.C:
		}
	}
	if h2err != nil {
		return <-h2err
	}
	return nil
}

// stopListeners closes the listeners: no connection is taken after it. s.mu is held.
func (s *Server) stopListeners() {
	s.stopped = true
	for ln := range s.listeners {
		ln.Close()
	}
}

// stopSweeper ends the sweeper goroutine.
func (s *Server) stopSweeper() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil && !s.doneClosed {
		s.doneClosed = true
		close(s.done)
	}
}

// closeIdle closes the connections waiting for a request and reports whether any connection
// is left to wait for. With spareNew > 0, connections that have not sent a request yet are
// spared, and waited for only while younger than spareNew.
func (s *Server) closeIdle(spareNew time.Duration) (busy bool) {
	now := monotime()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		st, since := c.loadState()
		switch {
		case st == stateIdle || st == stateNew && spareNew <= 0:
			if c.state.CompareAndSwap(packState(st, since), packState(stateClosed, since)) {
				c.closeRaw()
			}
			busy = true // until its goroutine has let go of it
		case st == stateNew:
			busy = busy || time.Duration(now-since) < spareNew
		default:
			busy = true
		}
	}
	return busy
}

// Close closes every listener and connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.shutdown.Store(true)
	s.stopListeners()
	for c := range s.conns {
		c.closeRaw()
	}
	h2, h2ln, h2c := s.H2, s.h2ln, s.H2Conns
	s.mu.Unlock()
	s.stopSweeper()
	if h2c != nil {
		return h2c.Close()
	}
	if h2 != nil && h2ln != nil {
		h2ln.Close()
		return h2.Close()
	}
	return nil
}

// tlsConfig is the TLS configuration for a new connection: while draining, one without "h2"
// in ALPN, since the HTTP/2 server no longer takes connections.
func (s *Server) tlsConfig() *tls.Config {
	if !s.shutdown.Load() {
		return s.TLSConfig
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drainTLS == nil {
		d := s.TLSConfig.Clone()
		d.NextProtos = withoutH2(d.NextProtos)
		if get := s.TLSConfig.GetConfigForClient; get != nil {
			d.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
				cfg, err := get(hello)
				if cfg == nil || err != nil {
					return cfg, err // nil: d, without "h2", is used
				}
				cfg = cfg.Clone()
				cfg.NextProtos = withoutH2(cfg.NextProtos)
				return cfg, nil
			}
		}
		s.drainTLS = d
	}
	return s.drainTLS
}

func withoutH2(protos []string) []string {
	out := make([]string, 0, len(protos))
	for _, p := range protos {
		if p != "h2" {
			out = append(out, p)
		}
	}
	return out
}

// handoff gives a connection to the HTTP/2 server.
func (s *Server) handoff(nc net.Conn) bool {
	if s.H2Conns != nil {
		if s.shutdown.Load() {
			return false
		}
		go func() { _ = s.H2Conns.ServeConn(nc) }()
		return true
	}
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
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		if c.prefix = c.prefix[n:]; len(c.prefix) == 0 {
			c.prefix = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// Buffered is how many replayed bytes are left to read: with none, the socket itself may be
// waited on (an idle HTTP/2 connection parks it, see netpeek.Parker).
func (c *prefixConn) Buffered() int { return len(c.prefix) }

// SyscallConn is the socket's, for netpeek.
func (c *prefixConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// Connection states, packed with the time they were entered into one atomic word.
const (
	stateIdle   = iota // waiting for the first byte of the next request
	stateHeader        // reading a request head
	stateActive        // serving a request
	stateHijacked
	stateClosed
	stateNew // accepted, no request yet (TLS handshake, first byte): idle, but spared for a while by a DrainAccept Shutdown
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
