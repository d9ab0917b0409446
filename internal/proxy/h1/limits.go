package h1

import (
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"
)

// Reasons passed to Server.OnReject: stable tokens, fit for a metric label. Each comes with
// the status the server answered (or, where it could not answer, the status that describes the
// event).
const (
	// RejectConnLimit (503): MaxConns or the shared Limiter was exhausted; the new connection
	// was closed without reading it (cleartext ones first get a bare 503).
	RejectConnLimit = "connection_limit"
	// RejectHeaderTooLarge (431): the request head was longer than MaxHeaderBytes.
	RejectHeaderTooLarge = "header_too_large"
	// RejectTooManyHeaders (431): the request had more than MaxHeaders header fields.
	RejectTooManyHeaders = "too_many_headers"
	// RejectURITooLong (414): the request target was longer than MaxURLBytes, or the request
	// line alone did not fit in MaxHeaderBytes.
	RejectURITooLong = "uri_too_long"
	// RejectBadRequest (400): a malformed request, or one another hop could read differently
	// (conflicting lengths, Content-Length with Transfer-Encoding, bad Host, ...).
	RejectBadRequest = "bad_request"
	// RejectTransferEncoding (501): a Transfer-Encoding other than a single "chunked".
	RejectTransferEncoding = "unsupported_transfer_encoding"
	// RejectVersion (505): an HTTP version other than 1.x (or the HTTP/2 preface when H2 cannot
	// take the connection).
	RejectVersion = "unsupported_version"
	// RejectExpect (417): an Expect other than 100-continue.
	RejectExpect = "unsupported_expect"
	// RejectHeaderTimeout (408): the request head did not arrive within ReadHeaderTimeout; the
	// connection was closed without an answer.
	RejectHeaderTimeout = "header_timeout"
	// RejectBodyTimeout (408): the client sent no body byte for BodyReadTimeout while the
	// handler was reading the body; the handler got ErrBodyReadTimeout and answers itself.
	RejectBodyTimeout = "body_timeout"
)

// ConnLimiter is a budget of open connections that several Servers (one per listener) can
// share, so that the process as a whole holds at most so many client connections. It is safe
// for concurrent use.
type ConnLimiter struct {
	max   int64
	inUse atomic.Int64
}

// NewConnLimiter returns a limiter allowing n connections at once; n <= 0 means no limit (the
// limiter then only counts).
func NewConnLimiter(n int) *ConnLimiter {
	return &ConnLimiter{max: int64(n)}
}

// Acquire takes one connection from the budget; false (and nothing taken) when it is spent.
func (l *ConnLimiter) Acquire() bool {
	if l.max <= 0 {
		l.inUse.Add(1)
		return true
	}
	for {
		n := l.inUse.Load()
		if n >= l.max {
			return false
		}
		if l.inUse.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release gives back a connection taken by a successful Acquire.
func (l *ConnLimiter) Release() { l.inUse.Add(-1) }

// InUse is the number of connections currently taken.
func (l *ConnLimiter) InUse() int { return int(l.inUse.Load()) }

// Limit is the size of the budget (<= 0: unlimited).
func (l *ConnLimiter) Limit() int { return int(l.max) }

// limited reports whether accepted connections are counted against a budget.
func (s *Server) limited() bool { return s.own != nil || s.Limiter != nil }

// admit takes a connection from the server's own budget and the shared one; false when either
// is spent (then neither is taken).
func (s *Server) admit() bool {
	if s.own != nil && !s.own.Acquire() {
		return false
	}
	if s.Limiter != nil && !s.Limiter.Acquire() {
		if s.own != nil {
			s.own.Release()
		}
		return false
	}
	return true
}

func (s *Server) releaseConn() {
	if s.own != nil {
		s.own.Release()
	}
	if s.Limiter != nil {
		s.Limiter.Release()
	}
}

// refusal is the whole answer to a connection over the limit.
var refusal = []byte("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")

// refuse closes a connection over the limit at once: the accept loop goes on, so the kernel's
// backlog keeps draining. A cleartext client first gets a 503 (written to a fresh socket, so it
// does not block; the deadline is a safeguard); a TLS one is just closed.
func (s *Server) refuse(nc net.Conn) {
	remote := nc.RemoteAddr()
	if s.TLSConfig == nil {
		nc.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		nc.Write(refusal)
	}
	nc.Close()
	s.reject(remote, http.StatusServiceUnavailable, RejectConnLimit)
}

// reject reports a request or connection the server refused itself.
func (s *Server) reject(remote net.Addr, status int, reason string) {
	if s.OnReject != nil {
		s.OnReject(remote, status, reason)
	}
	if s.Log != nil {
		s.logf("request or connection rejected", "remote", remote, "status", status, "reason", reason)
	}
}

// counted wraps an admitted connection so that closing it, whoever does (this server, the
// HTTP/2 server it was handed to, or a handler that hijacked it), gives its place back once.
func (s *Server) counted(nc net.Conn) net.Conn {
	if _, ok := nc.(sockConn); ok {
		return &countedSockConn{countedConn{Conn: nc, s: s}}
	}
	return &countedConn{Conn: nc, s: s}
}

type countedConn struct {
	net.Conn
	s        *Server
	released atomic.Bool
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	if c.released.CompareAndSwap(false, true) {
		c.s.releaseConn()
	}
	return err
}

// sockConn is what a TCP (or unix) connection offers beyond net.Conn that the server uses: the
// half-close that lets an error answer be read, and the socket netpeek looks at.
type sockConn interface {
	CloseWrite() error
	syscall.Conn
}

// countedSockConn is a countedConn that keeps CloseWrite and SyscallConn reachable.
type countedSockConn struct{ countedConn }

func (c *countedSockConn) CloseWrite() error { return c.Conn.(sockConn).CloseWrite() }

func (c *countedSockConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(sockConn).SyscallConn()
}
