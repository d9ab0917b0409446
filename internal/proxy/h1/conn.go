package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"apoxy.dev/apoxy/internal/netpeek"
)

// conn is one client connection and everything reused across its requests.
type conn struct {
	srv *Server
	lim *Limits // taken when the connection was accepted
	// rwc is the connection requests are read from and answered on (the TLS one over raw).
	rwc net.Conn
	// raw is the accepted connection, set once: what the sweeper and Shutdown close or set a
	// deadline on, while serve may still be replacing rwc with its TLS layer.
	raw        net.Conn
	remoteAddr net.Addr
	tls        *tls.ConnectionState
	br         *bufio.Reader
	bw         *bufio.Writer
	state      atomic.Uint64
	// parked is set while the idle connection waits in netpeek's Parker, without a goroutine;
	// parkMu orders parking against closeRaw.
	parkMu sync.Mutex
	parked netpeek.Parked
	// waking: the sweeper set a read deadline to wake the idle connection to rest.
	waking bool

	// bodyReads counts body reads' starts and ends: odd while one is blocked (see sweepBody).
	bodyReads atomic.Uint64
	// expired says why the sweeper cut the connection's reads (expiredBody), 0 if it did not.
	expired atomic.Uint32
	// sweptReads and sweptAt are what the sweeper last saw of bodyReads, and when; only the
	// sweeper touches them.
	sweptReads uint64
	sweptAt    int64

	// x is what requests use, reused from one to the next; nil while the connection rests
	// (parked), so that an idle client costs little more than its socket. It is written
	// under parkMu (the sweeper reads an active connection's).
	x       *requestScratch
	pending []byte // body bytes held back until the response is committed
}

// requestScratch is the part of a connection its requests use: the head buffer, the request, its
// URL and header map, the response writer and its header map. A connection keeps it from one
// request to the next, and lets go of it when it rests; the next request after a rest gets a
// new one (never another connection's: a handler that broke the rule and kept r would
// otherwise see a stranger's request).
type requestScratch struct {
	// ctx is the requests' context, cancelled when the connection ends or the sweeper finds
	// the client gone while a request is served. A resting connection has none: it costs
	// ~100 B, and keeping the connection struct small keeps it in a size class that
	// requests' garbage does not share (10k idle clients: their conns packed in dense spans).
	ctx    context.Context
	cancel context.CancelFunc
	remote string // the client's address, the requests' RemoteAddr
	head   []byte // the request head as read (reused)
	req    http.Request
	url    url.URL
	header http.Header
	resp   response
	// resHeader is the response header map, cleared per request.
	resHeader http.Header
}

// newScratch readies what c's requests need.
func newScratch(c *conn) *requestScratch {
	x := &requestScratch{header: make(http.Header), resHeader: make(http.Header)}
	x.ctx, x.cancel = context.WithCancel(context.Background())
	if c.remoteAddr != nil {
		x.remote = c.remoteAddr.String()
	}
	x.req = *new(http.Request).WithContext(x.ctx)
	x.resp.c = c
	return x
}

// h2Preface is how a prior-knowledge HTTP/2 client opens a cleartext connection: it reads as
// a request line "PRI * HTTP/2.0" and an empty header block.
const h2PrefaceLine = "PRI * HTTP/2.0"

func (c *conn) serve() {
	if c.srv.TLSConfig != nil {
		tc := tls.Server(c.rwc, c.srv.tlsConfig())
		c.rwc = tc
		if d := c.lim.ReadHeaderTimeout; d > 0 {
			tc.SetDeadline(time.Now().Add(d))
		}
		// The handshake's deadline is set; Shutdown and Close close the socket under it.
		if err := tc.HandshakeContext(context.Background()); err != nil {
			c.end(false)
			return
		}
		tc.SetDeadline(time.Time{})
		st := tc.ConnectionState()
		c.tls = &st
		if st.NegotiatedProtocol == "h2" {
			c.end(c.srv.handoff(tc))
			return
		}
	}
	c.br = newReader(c.rwc)
	c.parkMu.Lock()
	c.restore()
	c.parkMu.Unlock()
	c.loop(false)
}

// end lets go of the connection: closed (unless hijacked), forgotten, its buffers pooled.
func (c *conn) end(hijacked bool) {
	if c.x != nil {
		c.x.cancel()
	}
	c.srv.forget(c)
	if !hijacked {
		c.rwc.Close()
		c.release()
	}
}

// loop serves the connection's requests until it ends, or parks it while it is idle.
func (c *conn) loop(resumed bool) {
	hijacked, parked := false, false
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			buf := make([]byte, 16<<10)
			buf = buf[:runtime.Stack(buf, false)]
			c.srv.logf("panic serving request", "remote", c.remoteAddr, "panic", fmt.Sprint(p), "stack", string(buf))
		} else if parked {
			return // c.Resume goes on with it
		}
		c.end(hijacked)
	}()
	for {
		// Wait for the first byte of the next request, then read its head. A connection
		// idle for IdleRest is woken here by the sweeper (a read deadline, see wake) to rest:
		// it gives its read buffer back and, where it can, its goroutine too. 10k idle
		// keep-alive clients then hold neither buffers nor stacks.
		// When many connections wait already (crowded), it rests at once. A TLS connection
		// may hold decrypted bytes our reader has not seen: it is woken as the sweeper would
		// (the read below returns them, or times out and the connection rests).
		if c.br.Buffered() == 0 && !resumed && (c.srv.leanIdle || c.lim.IdleRest >= 0 && c.srv.crowded()) {
			if c.tls != nil {
				c.wake()
			} else {
				if parked = c.waitIdle(); parked {
					return
				}
				if c.br == nil {
					return
				}
			}
		}
		resumed = false
		c.srv.waiting.Add(1)
		_, err := c.br.Peek(1)
		c.srv.waiting.Add(-1)
		c.parkMu.Lock()
		woken := c.waking
		c.waking = false
		if woken {
			c.rwc.SetReadDeadline(time.Time{})
		}
		live := err == nil && c.setState(stateHeader)
		c.parkMu.Unlock()
		if woken && err != nil && isTimeout(err) && c.br.Buffered() == 0 {
			if parked = c.waitIdle(); parked {
				return
			}
			if c.br == nil {
				return
			}
			continue
		}
		if !live {
			return
		}
		req, perr := c.readRequest()
		if perr != nil {
			if perr.h2 && c.srv.TLSConfig == nil {
				// Prior-knowledge h2c: the HTTP/2 server reads the preface again, and
				// whatever followed it; this connection's buffers go back to their pools.
				rest, _ := c.br.Peek(c.br.Buffered())
				nc := &prefixConn{Conn: c.rwc, prefix: append(append(make([]byte, 0, len(c.x.head)+len(rest)), c.x.head...), rest...)}
				c.release()
				if c.srv.handoff(nc) {
					hijacked = true
				} else {
					c.srv.reject(c.remoteAddr, perr.code, perr.reason)
				}
				return
			}
			if perr.code != 0 {
				c.srv.reject(c.remoteAddr, perr.code, perr.reason)
				if !perr.silent {
					c.writeError(perr)
				}
			} else if st, _ := c.loadState(); st == stateClosed {
				// Only the sweeper closes a connection reading a head: it took too long.
				c.srv.reject(c.remoteAddr, http.StatusRequestTimeout, RejectHeaderTimeout)
			}
			return
		}
		c.setState(stateActive)
		if c.bw == nil {
			c.bw = newWriter(c.rwc)
		}
		w := &c.x.resp
		w.reset(req)
		c.srv.Handler.ServeHTTP(w, req)
		if w.hijacked {
			hijacked = true
			return
		}
		w.finish()
		if w.err != nil || w.closeAfter || c.srv.shutdown.Load() || c.expired.Load() != 0 {
			return
		}
		// The writer is only needed while answering.
		c.bw.Reset(nil)
		bufioWriters.Put(c.bw)
		c.bw = nil
		if x := c.x; cap(x.head) > smallHead || len(x.header) > smallHeader || len(x.resHeader) > smallHeader {
			c.shrink()
		}
		if !c.setState(stateIdle) {
			return
		}
	}
}

// cancelIfGone is the sweeper's: it cancels the context of the request an active connection
// serves when its client has closed the connection.
func (c *conn) cancelIfGone() {
	c.parkMu.Lock()
	x := c.x
	c.parkMu.Unlock()
	if x != nil && x.ctx.Err() == nil && peerClosed(c.raw) {
		x.cancel()
	}
}

// crowded says whether so many connections wait for a request on their goroutine that the
// next one to wait rests at once (see Server.waiting).
func (s *Server) crowded() bool {
	crowd := s.crowd
	if crowd == 0 {
		crowd = DefaultCrowd
	}
	return !s.noPark && s.waiting.Load() >= crowd
}

// waitIdle waits for the next request without the read buffer, and parked (true) without the
// goroutine either; c.br is nil after it when the connection ended.
func (c *conn) waitIdle() bool {
	bufioReaders.Put(c.br)
	c.br = nil
	if c.park() {
		return true
	}
	if netpeek.Wait(c.rwc) == nil {
		c.br = newReader(c.rwc)
	}
	return false
}

// wake is the sweeper's: a connection idle for IdleRest, waiting for the next request's first
// byte, is woken (a read deadline now) to rest.
func (c *conn) wake() {
	c.parkMu.Lock()
	defer c.parkMu.Unlock()
	if st, _ := c.loadState(); st == stateIdle && !c.waking && !c.parked.Valid() {
		c.waking = true
		c.raw.SetReadDeadline(time.Now())
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// park hands the idle connection to netpeek's Parker: the goroutine ends, and c.Resume starts
// a new one when the next request's first bytes arrive. False when it cannot be parked (the
// caller waits on its own goroutine) or was closed meanwhile.
func (c *conn) park() bool {
	c.parkMu.Lock()
	defer c.parkMu.Unlock()
	if st, _ := c.loadState(); st == stateClosed || c.srv.noPark {
		return false
	}
	c.rest()
	c.parked = netpeek.DefaultParker.Park(c.rwc, c)
	if !c.parked.Valid() {
		c.restore()
		return false
	}
	return true
}

// Resume (netpeek.Resumer) carries a parked connection on: bytes arrived, or (err) closeRaw unparked it to
// close it.
func (c *conn) Resume(err error) {
	c.parkMu.Lock()
	c.parked = netpeek.Parked{}
	if err == nil {
		c.restore()
	}
	c.parkMu.Unlock()
	if err != nil {
		c.end(false)
		return
	}
	c.br = newReader(c.rwc)
	// The loop's first wait takes the bytes that woke it (and, if the sweeper woke it again
	// meanwhile, rests again: a read past a deadline fails even with bytes waiting).
	c.loop(true)
}

// closeRaw closes the connection from outside its goroutine (the sweeper, Shutdown, Close). A
// parked connection is unparked first, so that its socket leaves the Parker's set before the
// close and a goroutine comes back to let go of it.
func (c *conn) closeRaw() {
	c.parkMu.Lock()
	if c.parked.Valid() {
		c.parked.Cancel()
		c.parked = netpeek.Parked{}
	}
	c.raw.Close()
	c.parkMu.Unlock()
}

// A connection whose request head outgrew smallHead bytes, or whose request or response had
// more than smallHeader fields, drops what the request grew before it waits for the next one:
// a connection idling for minutes must not keep a 60 KiB head (twice: the buffer and the
// string cut from it) or a map sized for a hundred fields because of one big request.
const (
	smallHead   = 4 << 10
	smallHeader = 32
)

// shrink lets go of the last request's head buffer, of its head string (every string of the
// request is cut from it) and of the grown header maps.
func (c *conn) shrink() {
	c.parkMu.Lock()
	c.rest()
	c.restore()
	c.parkMu.Unlock()
}

// rest drops everything the last request left on the connection, for a long wait: its
// exchange (head, request, header maps, context) and held-back body buffer. The caller holds
// parkMu.
func (c *conn) rest() {
	c.x = nil
	if c.pending != nil {
		putPending(c.pending)
		c.pending = nil
	}
}

// restore makes what rest dropped, before the next request. The caller holds parkMu.
func (c *conn) restore() {
	if c.x == nil {
		c.x = newScratch(c)
	}
}

// release returns the buffers to their pools.
func (c *conn) release() {
	if c.br != nil {
		c.br.Reset(nil)
		bufioReaders.Put(c.br)
		c.br = nil
	}
	if c.bw != nil {
		c.bw.Reset(nil)
		bufioWriters.Put(c.bw)
		c.bw = nil
	}
}

// hijack hands the connection to the handler.
func (c *conn) hijack() (net.Conn, *bufio.ReadWriter) {
	c.setState(stateHijacked)
	c.srv.forget(c)
	return c.rwc, bufio.NewReadWriter(c.br, c.bw)
}

// writeError answers a request that could not be read, as net/http does, and the connection
// is closed after it.
func (c *conn) writeError(e *requestError) {
	text := http.StatusText(e.code)
	if c.bw == nil {
		c.bw = newWriter(c.rwc)
	}
	body := fmt.Sprintf("%d %s", e.code, text)
	if e.msg != "" {
		body += ": " + e.msg
	}
	fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", e.code, text, len(body), body)
	c.bw.Flush()
	if tc, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		// Let the client read the answer before the close resets the connection.
		tc.CloseWrite()
		c.rwc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, io.LimitReader(c.rwc, 256<<10))
	}
}

// requestError is why a request could not be read: code is the status to answer (0: just
// close), reason what OnReject is told; h2 marks the HTTP/2 preface.
type requestError struct {
	code   int
	msg    string
	reason string // for OnReject
	h2     bool
	// silent: the bytes are not HTTP at all (no HTTP/ version): the connection is closed
	// without an answer, which such a peer could not read anyway (h2spec 3.5: a bad HTTP/2
	// preface on a cleartext port must see the connection closed).
	silent bool
}

func badRequest(msg string) *requestError {
	return &requestError{code: http.StatusBadRequest, msg: msg, reason: RejectBadRequest}
}
