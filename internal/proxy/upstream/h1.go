package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"apoxy.dev/apoxy/internal/netpeek"
	"apoxy.dev/apoxy/internal/proxy/wire"
)

// h1Client is the HTTP/1.1 client of plain and TLS (HTTP/1.1) backends. Unlike http.Transport
// it runs each exchange on the calling goroutine: the request is written straight into the
// connection's buffer and the response head read back by our own parser (readResponse, on
// internal/proxy/wire: RFC 9112 framing, a response framed two ways refused; fuzzed against
// http.ReadResponse), without per-connection read and write goroutines or
// channel hand-offs. Idle connections are kept per address, most recently used first.
type h1Client struct {
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	idleTimeout time.Duration
	maxIdle     int // per address

	// lim is the cluster's circuit breaker (nil: none): connections count against its
	// MaxConnections, requests wait for one as pending, MaxRequestsPerConnection caps reuse.
	lim *breaker

	mu     sync.Mutex
	idle   map[string][]*h1Conn
	closed bool
	// reaper closes connections idle past idleTimeout while nothing reuses them (armed
	// only while some connection is pooled: a quiet cluster keeps no timer).
	reaper      *time.Timer
	reaperArmed bool
}

type h1Conn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	addr   string
	idleAt time.Time
	reused bool
	head   []byte // the last response head read (reused)
	// The deadlines currently set on nc (a change is a runtime timer update, so unchanged
	// ones are not set again).
	rdl, wdl time.Time
	// requests sent on this connection (MaxRequestsPerConnection).
	requests int
	// lim counts this connection against the circuit breaker (nil: uncounted); released
	// makes the uncounting happen once.
	lim      *breakerState
	released atomic.Bool
}

// close closes the connection and uncounts it from the circuit breaker.
func (pc *h1Conn) close() {
	pc.nc.Close()
	if pc.lim != nil && pc.released.CompareAndSwap(false, true) {
		pc.lim.releaseConn()
	}
}

// armRead sets the read deadline for waiting on the upstream: a wake-up at most cancelCheck
// ahead (to look at the client's context), kept while it is at least half that away so busy
// connections re-arm it about twice a second rather than per exchange, and brought forward to
// the request deadline when that comes sooner.
func (pc *h1Conn) armRead(now, deadline time.Time, hasDeadline bool) {
	want := pc.rdl
	if want.IsZero() || want.Sub(now) < cancelCheck/2 {
		want = now.Add(cancelCheck)
	}
	if hasDeadline && deadline.Before(want) {
		want = deadline
	}
	if !want.Equal(pc.rdl) {
		pc.nc.SetReadDeadline(want)
		pc.rdl = want
	}
}

// setWrite sets the write deadline if it differs.
func (pc *h1Conn) setWrite(t time.Time) {
	if !t.Equal(pc.wdl) {
		pc.nc.SetWriteDeadline(t)
		pc.wdl = t
	}
}

// clearRead removes the read deadline (before a body streams on past the response head).
func (pc *h1Conn) clearRead() {
	if !pc.rdl.IsZero() {
		pc.nc.SetReadDeadline(time.Time{})
		pc.rdl = time.Time{}
	}
}

// errNotH1 marks requests this client does not carry (protocol upgrades).
var errNotH1 = errors.New("upstream: protocol upgrades need the full transport")

func newH1Client(dial func(ctx context.Context, network, addr string) (net.Conn, error), idleTimeout time.Duration) *h1Client {
	if idleTimeout <= 0 {
		idleTimeout = 90 * time.Second
	}
	return &h1Client{dial: dial, idleTimeout: idleTimeout, maxIdle: 1024, idle: map[string][]*h1Conn{}}
}

// limit puts the client under a circuit breaker (nil: none). Call before first use.
func (c *h1Client) limit(b *breaker) { c.lim = b }

// RoundTrip sends req (URL.Host is the address) and returns the response; its body returns the
// connection to the pool once read to the end.
func (c *h1Client) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Upgrade") != "" {
		return nil, errNotH1
	}
	for attempt := 0; ; attempt++ {
		pc, err := c.get(req.Context(), req.URL.Host)
		if err != nil {
			return nil, err
		}
		resp, err := c.exchange(pc, req)
		if err == nil {
			return resp, nil
		}
		// A pooled connection the upstream closed while idle fails before any response byte:
		// send again on a fresh one when the body (if any) has not been consumed.
		if pc.reused && attempt == 0 && ConnectionBroken(err) && (req.Body == nil || req.Body == http.NoBody) && req.Context().Err() == nil {
			continue
		}
		return nil, err
	}
}

// ConnectionBroken reports errors meaning the connection ended under the exchange (closed,
// reset, cut short) rather than an answer or a timeout.
func ConnectionBroken(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}

// get returns an idle connection to addr or dials one (under a connection limit, possibly
// after waiting for one).
func (c *h1Client) get(ctx context.Context, addr string) (*h1Conn, error) {
	if pc := c.takeIdle(addr); pc != nil {
		return pc, nil
	}
	if c.lim != nil {
		return c.getLimited(ctx, addr)
	}
	return c.dialConn(ctx, addr, nil)
}

// takeIdle returns the most recently used idle connection to addr that is still usable, or
// nil.
func (c *h1Client) takeIdle(addr string) *h1Conn {
	now := time.Now()
	c.mu.Lock()
	for list := c.idle[addr]; len(list) > 0; list = c.idle[addr] {
		pc := list[len(list)-1]
		c.idle[addr] = list[:len(list)-1]
		idle := now.Sub(pc.idleAt)
		if idle > c.idleTimeout {
			go pc.close()
			continue
		}
		// A connection idle for a while may have been closed by the upstream: check before
		// use (one non-blocking peek; busy connections skip it).
		if idle > probeAfter && !alive(pc.nc) {
			go pc.close()
			continue
		}
		c.mu.Unlock()
		pc.reused = true
		return pc
	}
	c.mu.Unlock()
	return nil
}

// dialConn opens a connection to addr, counted against lim when not nil (the count was
// taken by the caller and is returned if the dial fails).
func (c *h1Client) dialConn(ctx context.Context, addr string, lim *breakerState) (*h1Conn, error) {
	nc, err := c.dial(ctx, "tcp", addr)
	if err != nil {
		if lim != nil {
			lim.releaseConn()
		}
		return nil, err
	}
	return &h1Conn{nc: nc, br: bufio.NewReaderSize(nc, 8<<10), bw: bufio.NewWriterSize(nc, 8<<10), addr: addr, lim: lim}, nil
}

// getLimited returns a connection to addr under the circuit breaker: a new one while the
// cluster has fewer than MaxConnections open, else (after closing an idle connection to
// another endpoint, if there is one) it waits as a pending request for a connection to be
// released or returned idle, up to MaxPendingRequests waiting, until ctx ends.
func (c *h1Client) getLimited(ctx context.Context, addr string) (*h1Conn, error) {
	st := c.lim.st
	pending := false
	defer func() {
		if pending {
			st.pending.Add(-1)
		}
	}()
	var timeout <-chan time.Time
	for {
		if st.acquireConn(c.lim.maxConns) {
			return c.dialConn(ctx, addr, st)
		}
		if c.closeIdleOther(addr) {
			continue
		}
		if !pending {
			if n := st.pending.Add(1); c.lim.maxPending > 0 && n > c.lim.maxPending {
				st.pending.Add(-1)
				st.pendingOverflows.Add(1)
				return nil, ErrOverloaded
			}
			pending = true
		}
		wake := st.waitChan()
		// Look once more now that a release will close wake.
		if pc := c.takeIdle(addr); pc != nil {
			return pc, nil
		}
		if st.conns.Load() < c.lim.maxConns || c.hasIdle() {
			continue
		}
		if timeout == nil {
			if dl, ok := ctx.Deadline(); ok {
				// The proxy's request contexts carry their deadline without a timer of
				// their own (deadlineCtx): waiting needs one.
				t := time.NewTimer(time.Until(dl))
				defer t.Stop()
				timeout = t.C
			}
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout:
			return nil, context.DeadlineExceeded
		}
		if pc := c.takeIdle(addr); pc != nil {
			return pc, nil
		}
	}
}

// closeIdleOther closes the oldest idle connection of another endpoint than addr to make room
// under the connection limit; false when none is idle.
func (c *h1Client) closeIdleOther(addr string) bool {
	c.mu.Lock()
	var victim *h1Conn
	for other, list := range c.idle {
		if other != addr && len(list) > 0 {
			victim = list[0]
			c.idle[other] = list[1:]
			break
		}
	}
	c.mu.Unlock()
	if victim == nil {
		return false
	}
	victim.close()
	return true
}

// hasIdle reports whether a connection is idle (to any endpoint: one to the wanted endpoint
// can be taken, one to another closed).
func (c *h1Client) hasIdle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, list := range c.idle {
		if len(list) > 0 {
			return true
		}
	}
	return false
}

// put returns a connection whose last exchange ended cleanly.
func (c *h1Client) put(pc *h1Conn) {
	pc.idleAt = time.Now()
	c.mu.Lock()
	list := c.idle[pc.addr]
	if c.closed || len(list) >= c.maxIdle {
		c.mu.Unlock()
		pc.close()
		return
	}
	// The oldest idle connections sit at the front: drop those past the idle timeout.
	n := 0
	for n < len(list) && pc.idleAt.Sub(list[n].idleAt) > c.idleTimeout {
		list[n].close()
		n++
	}
	c.idle[pc.addr] = append(list[n:], pc)
	if !c.reaperArmed {
		c.reaperArmed = true
		if c.reaper == nil {
			c.reaper = time.AfterFunc(c.idleTimeout, c.reap)
		} else {
			c.reaper.Reset(c.idleTimeout)
		}
	}
	c.mu.Unlock()
	if c.lim != nil {
		c.lim.st.notify() // a pending request for this endpoint can take it
	}
}

// reap closes the pooled connections idle past idleTimeout and re-arms for the next one to
// expire, if any remain.
func (c *h1Client) reap() {
	now := time.Now()
	var expired []*h1Conn
	c.mu.Lock()
	var next time.Time
	for addr, list := range c.idle {
		n := 0
		for n < len(list) && now.Sub(list[n].idleAt) >= c.idleTimeout {
			expired = append(expired, list[n])
			n++
		}
		if n == len(list) {
			delete(c.idle, addr)
			continue
		}
		c.idle[addr] = list[n:]
		if first := list[n].idleAt; next.IsZero() || first.Before(next) {
			next = first
		}
	}
	c.reaperArmed = !next.IsZero() && !c.closed
	if c.reaperArmed {
		c.reaper.Reset(next.Add(c.idleTimeout).Sub(now))
	}
	c.mu.Unlock()
	for _, pc := range expired {
		pc.close()
	}
}

// CloseIdleConnections closes every pooled connection and stops pooling.
func (c *h1Client) CloseIdleConnections() {
	c.mu.Lock()
	c.closed = true
	idle := c.idle
	c.idle = map[string][]*h1Conn{}
	c.mu.Unlock()
	for _, list := range idle {
		for _, pc := range list {
			pc.close()
		}
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// probeAfter is how long a connection may sit idle before reuse checks that it is still open.
const probeAfter = 250 * time.Millisecond

// exchange writes req on pc and reads the response head. The request context's deadline is
// set on the connection; its cancellation (the client went away) is noticed while waiting for
// the response within cancelCheck, without a watcher per request.
func (c *h1Client) exchange(pc *h1Conn, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	deadline, hasDeadline := ctx.Deadline()
	fail := func(err error) (*http.Response, error) {
		pc.close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && hasDeadline {
			return nil, context.DeadlineExceeded
		}
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	// A request head that fits the socket buffer is written without blocking: only requests
	// with a body (or a large head) need the request deadline on the write.
	if hasDeadline && (req.Body != nil && req.Body != http.NoBody || len(req.Header) > 64) {
		pc.setWrite(deadline)
	} else {
		pc.setWrite(time.Time{})
	}
	w := waiter{ctx: ctx, pc: pc, deadline: deadline, hasDeadline: hasDeadline}
	// The circuit breaker's MaxRequestsPerConnection: the last request says so and the
	// connection closes after its response.
	pc.requests++
	last := c.lim != nil && c.lim.maxPerConn > 0 && pc.requests >= c.lim.maxPerConn
	if err := writeRequest(pc.bw, req, last); err != nil {
		// An upstream may answer before it has read the whole body (413, 401, a redirect) and
		// close: that answer is the response, not a failed exchange.
		if resp := c.earlyResponse(pc, req); resp != nil {
			return resp, nil
		}
		return fail(err)
	}
	pc.armRead(time.Now(), deadline, hasDeadline)
	if err := w.await(); err != nil {
		return fail(err)
	}
	var resp *http.Response
	for {
		var err error
		resp, err = readResponse(pc, req, &w)
		if err != nil {
			return fail(err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		// 1xx informational (100 Continue, 103 Early Hints): the final response follows.
		if err := w.await(); err != nil {
			return fail(err)
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return fail(errNotH1)
	}
	b := resp.Body.(*h1Body)
	b.c, b.keep = c, b.keep && !resp.Close && !req.Close && !last
	// The deadline bounds the response head; the body may stream on. A body already read
	// into the buffer needs no change.
	if b.chunked || b.remaining < 0 || b.remaining > int64(pc.br.Buffered()) {
		pc.clearRead()
	}
	return resp, nil
}

// earlyResponse reads a final response the upstream already sent when writing the request
// failed, if there is one (within a short wait); the connection is not reused after it.
func (c *h1Client) earlyResponse(pc *h1Conn, req *http.Request) *http.Response {
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	pc.rdl = time.Now().Add(250 * time.Millisecond)
	pc.nc.SetReadDeadline(pc.rdl)
	for {
		resp, err := readResponse(pc, req, nil)
		if err != nil {
			return nil
		}
		if resp.StatusCode >= 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			pc.clearRead()
			b := resp.Body.(*h1Body)
			b.c, b.keep, resp.Close = c, false, true
			return resp
		}
	}
}

// waiter waits on an upstream's answer while watching the request's context and deadline.
type waiter struct {
	ctx         context.Context
	pc          *h1Conn
	deadline    time.Time
	hasDeadline bool
}

// await waits until the response starts arriving (or the deadline passes), looking at the
// context at every wake-up: a peek that times out consumes nothing, so waiting resumes.
func (w *waiter) await() error {
	for {
		_, err := w.pc.br.Peek(1)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || !w.again() {
			return err
		}
	}
}

// again re-arms the read deadline after a wake-up; false once the context ended or the
// request deadline passed.
func (w *waiter) again() bool {
	if w.ctx.Err() != nil {
		return false
	}
	now := time.Now()
	if w.hasDeadline && !now.Before(w.deadline) {
		return false
	}
	w.pc.armRead(now, w.deadline, w.hasDeadline)
	return true
}

// maxResponseHead bounds a response's status line and header block.
const maxResponseHead = 1 << 20

// readResponse reads a response head and frames its body as RFC 9112 §6.3 (and
// http.ReadResponse) do, with every string of the head cut from one allocation.
func readResponse(pc *h1Conn, req *http.Request, w *waiter) (*http.Response, error) {
	var err error
	pc.head = pc.head[:0]
	for {
		pc.head, err = wire.ReadHead(pc.br, pc.head, maxResponseHead)
		// A wake-up deadline in the middle of the head: read on.
		if err == nil || w == nil || !errors.Is(err, os.ErrDeadlineExceeded) || !w.again() {
			break
		}
	}
	if err != nil {
		if err == io.EOF && len(pc.head) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line, block := wire.StartLine(string(pc.head))
	proto, status, ok := strings.Cut(line, " ")
	major, minor, vok := http.ParseHTTPVersion(proto)
	if !ok || !vok || major != 1 {
		return nil, fmt.Errorf("upstream: malformed status line %q", line)
	}
	status = strings.TrimLeft(status, " ")
	code, _, _ := strings.Cut(status, " ")
	n, err := strconv.Atoi(code)
	if len(code) != 3 || err != nil || n < 100 {
		return nil, fmt.Errorf("upstream: malformed status code %q", code)
	}
	both := &struct { // the response and its body reader in one allocation
		resp http.Response
		body h1Body
	}{}
	resp := &both.resp
	*resp = http.Response{Status: status, StatusCode: n, Proto: proto, ProtoMajor: major, ProtoMinor: minor, Request: req}
	values := wire.NewValues(block)
	h := make(http.Header, cap(values))
	var cl string
	nCL := 0
	var te, connection string
	nTE := 0
	f := wire.Fields{Block: block}
	for f.Next() {
		switch f.Key {
		case "Content-Length":
			if nCL++; nCL > 1 && f.Value != cl {
				return nil, fmt.Errorf("upstream: conflicting Content-Length headers %q and %q", cl, f.Value)
			}
			cl = f.Value
		case "Transfer-Encoding":
			nTE++
			te = f.Value
		case "Connection":
			if connection != "" {
				connection += ","
			}
			connection += f.Value
		}
		values.Add(h, f.Key, f.Value)
	}
	if f.Err != nil {
		return nil, fmt.Errorf("upstream: %w", f.Err)
	}
	resp.Header = h
	resp.Close = minor == 0 && !wire.HasToken(connection, "keep-alive") || wire.HasToken(connection, "close")

	length := int64(-1)
	if nCL > 0 {
		l, ok := wire.ParseContentLength(strings.TrimSpace(cl))
		if !ok {
			return nil, fmt.Errorf("upstream: bad Content-Length %q", cl)
		}
		length = l
	}
	chunked := false
	if nTE > 0 {
		if nTE > 1 || !strings.EqualFold(strings.TrimSpace(te), "chunked") {
			return nil, fmt.Errorf("upstream: unsupported transfer encoding %q", te)
		}
		if minor == 0 {
			return nil, errors.New("upstream: Transfer-Encoding in an HTTP/1.0 response") // RFC 9112 §6.1
		}
		if nCL > 0 {
			// As nginx: a message framed two ways is refused rather than guessed at.
			return nil, errors.New("upstream: response has both Content-Length and Transfer-Encoding")
		}
		chunked = true
	}
	b := &both.body
	b.pc, b.keep, b.remaining = pc, true, length
	switch {
	case n < 200:
		resp.ContentLength, resp.Body = -1, http.NoBody
		return resp, nil
	case req.Method == http.MethodHead:
		resp.ContentLength, b.remaining = length, 0
	case n == http.StatusNoContent || n == http.StatusNotModified:
		resp.ContentLength, b.remaining = 0, 0
	case chunked:
		resp.ContentLength = -1
		b.cr.Reset(pc.br)
		b.chunked = true
		if decl := h["Trailer"]; len(decl) > 0 {
			resp.Trailer = http.Header{}
			for _, d := range decl {
				for name := range strings.SplitSeq(d, ",") {
					if name = strings.TrimSpace(name); name != "" {
						resp.Trailer[http.CanonicalHeaderKey(name)] = nil
					}
				}
			}
		}
		b.cr.OnTrailer = func(k, v string) {
			if resp.Trailer == nil {
				resp.Trailer = http.Header{}
			}
			resp.Trailer[k] = append(resp.Trailer[k], v)
		}
	case length < 0:
		// Neither length nor chunking: the body ends when the upstream closes.
		resp.ContentLength, resp.Close = -1, true
	default:
		resp.ContentLength = length
	}
	resp.Body = b
	return resp, nil
}

// cancelCheck is how often a request waiting for its response head checks its context.
const cancelCheck = time.Second

// h1Body reads a response body straight from the connection (Content-Length bytes, chunked,
// or until the upstream closes) and hands the connection back when the body has been read to
// the end; an abandoned body closes it (the rest would have to be read first).
type h1Body struct {
	pc        *h1Conn
	c         *h1Client
	remaining int64 // Content-Length bytes left; -1: until close
	chunked   bool
	cr        wire.ChunkedReader
	keep      bool
	done      bool
	aborted   atomic.Bool
}

// Abort interrupts a body read blocked on the upstream (safe from another goroutine, e.g. when
// the client of a long stream goes away); the connection is then not reused.
func (b *h1Body) Abort() {
	b.aborted.Store(true)
	b.pc.nc.SetDeadline(aLongTimeAgo)
}

func (b *h1Body) Read(p []byte) (n int, err error) {
	if b.done {
		return 0, io.EOF
	}
	switch {
	case b.chunked:
		n, err = b.cr.Read(p)
	case b.remaining == 0:
		err = io.EOF
	case b.remaining > 0:
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		n, err = b.pc.br.Read(p)
		b.remaining -= int64(n)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		} else if err == nil && b.remaining == 0 {
			err = io.EOF
		}
	default:
		b.keep = false
		n, err = b.pc.br.Read(p)
	}
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

func (b *h1Body) Close() error {
	b.finish(false)
	return nil
}

func (b *h1Body) finish(clean bool) {
	if b.done {
		return
	}
	b.done = true
	if b.c != nil && clean && b.keep && !b.aborted.Load() && b.pc.br.Buffered() == 0 {
		b.c.put(b.pc)
		return
	}
	b.pc.close()
}

// writeRequest writes req in HTTP/1.1 wire form: the request line, Host, the header fields
// (hop-by-hop ones are the caller's business), the framing and the body. closeConn asks for
// "Connection: close" (as req.Close does).
func writeRequest(w *bufio.Writer, req *http.Request, closeConn bool) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	target := req.URL.RequestURI()
	if req.Method == http.MethodConnect || strings.ContainsAny(host, "\r\n") || strings.ContainsAny(target, " \r\n") {
		return fmt.Errorf("upstream: cannot send %s %q to host %q", req.Method, target, host)
	}
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(target)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	for k, vv := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Expect":
			continue
		}
		for _, v := range vv {
			if v == "" && k == "User-Agent" {
				continue // an empty User-Agent means send none
			}
			if strings.ContainsAny(v, "\r\n") || strings.ContainsAny(k, " :\r\n") {
				return fmt.Errorf("upstream: invalid header field %q", k)
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	body := req.Body
	if body == http.NoBody {
		body = nil
	}
	chunked := false
	switch {
	case req.ContentLength > 0 || (req.ContentLength == 0 && body == nil && methodWantsLength(req.Method)):
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(max(req.ContentLength, 0), 10))
		w.WriteString("\r\n")
	case req.ContentLength < 0 && body != nil:
		chunked = true
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if req.Close || closeConn {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	if body != nil {
		var err error
		if chunked {
			err = writeChunked(w, body)
		} else if req.ContentLength > 0 {
			var n int64
			n, err = io.Copy(w, io.LimitReader(body, req.ContentLength))
			if err == nil && n < req.ContentLength {
				err = io.ErrUnexpectedEOF
			}
		}
		body.Close()
		if err != nil {
			return err
		}
	}
	return w.Flush()
}

func methodWantsLength(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

func writeChunked(w *bufio.Writer, body io.Reader) error {
	buf := make([]byte, 16<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			w.WriteString(strconv.FormatInt(int64(n), 16))
			w.WriteString("\r\n")
			w.Write(buf[:n])
			w.WriteString("\r\n")
			// Stream what arrives (an upload of unknown length may be interactive).
			if ferr := w.Flush(); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			_, werr := w.WriteString("0\r\n\r\n")
			return werr
		}
		if err != nil {
			return err
		}
	}
}

// alive reports whether an idle connection is still open: a non-blocking peek sees neither
// end-of-stream nor stray bytes (an idle HTTP/1.1 connection has nothing to read). Upstreams
// close idle connections on their own schedule (Node.js after 5 s), and a request sent on such
// a connection fails after its body may already have gone out.
func alive(nc net.Conn) bool {
	st := netpeek.Peek(nc)
	return st == netpeek.Empty || st == netpeek.Unknown
}
