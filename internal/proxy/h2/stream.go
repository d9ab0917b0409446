package h2

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// stream is one request/response exchange. Its fields are guarded by the connection's mu,
// except req and w, which belong to the handler.
type stream struct {
	c  *conn
	id uint32

	sendWin, recvWin int32
	recvAck          int32 // consumed bytes not yet given back with WINDOW_UPDATE
	recvDone         bool  // the request ended (END_STREAM)
	sendDone         bool  // the response ended (END_STREAM sent)
	declared         int64 // content-length of the request (-1: none)
	received         int64 // request body bytes received
	err              error // why the stream was reset (nil while it is open)

	body   *requestBody
	req    *http.Request
	w      *responseWriter // &rw once the handler runs
	rw     responseWriter
	cancel context.CancelFunc
}

// abort ends the stream for its handler: body reads and writes fail with err, its context is
// cancelled. Under c.mu.
func (st *stream) abort(err error) {
	if st.err == nil {
		st.err = err
	}
	if st.body != nil {
		st.body.cond.Broadcast()
	}
	if st.cancel != nil {
		st.cancel()
	}
}

// newRequest builds the handler's request from a HEADERS frame, or says which stream error
// the request is (RFC 9113 §8.1.1, §8.2).
func (c *conn) newRequest(st *stream, f *http2.MetaHeadersFrame) (*http.Request, http2.ErrCode) {
	var method, path, scheme, authority, protocol string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":path":
			path = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		case ":protocol":
			protocol = hf.Value
		default:
			return nil, http2.ErrCodeProtocol
		}
	}
	if protocol != "" {
		return nil, http2.ErrCodeProtocol // extended CONNECT is not offered (no SETTINGS_ENABLE_CONNECT_PROTOCOL)
	}
	isConnect := method == "CONNECT"
	if isConnect {
		if path != "" || scheme != "" || authority == "" {
			return nil, http2.ErrCodeProtocol
		}
	} else if method == "" || path == "" || scheme == "" {
		return nil, http2.ErrCodeProtocol
	}
	regular := f.RegularFields()
	header := make(http.Header, len(regular))
	// One array holds the first value of every field (as net/http's readers do): a slice
	// per field was an allocation per header of every request.
	vals := make([]string, len(regular))
	var cookies []string
	for _, hf := range regular {
		switch hf.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return nil, http2.ErrCodeProtocol // connection-specific (RFC 9113 §8.2.2)
		case "te":
			if hf.Value != "trailers" {
				return nil, http2.ErrCodeProtocol
			}
		case "cookie":
			cookies = append(cookies, hf.Value) // joined below (§8.2.3)
			continue
		case "content-length":
			n, err := strconv.ParseInt(hf.Value, 10, 64)
			if err != nil || n < 0 || (st.declared >= 0 && st.declared != n) {
				return nil, http2.ErrCodeProtocol
			}
			st.declared = n
		}
		k := http.CanonicalHeaderKey(hf.Name)
		if vv, ok := header[k]; ok {
			header[k] = append(vv, hf.Value)
		} else {
			vals[0] = hf.Value
			header[k], vals = vals[:1:1], vals[1:]
		}
	}
	if len(cookies) > 0 {
		header["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if f.StreamEnded() && st.declared > 0 {
		return nil, http2.ErrCodeProtocol // content-length promises a body that is not coming
	}
	var u *url.URL
	var err error
	requestURI := path
	if isConnect {
		u = &url.URL{Host: authority}
		requestURI = authority
	} else if u, err = url.ParseRequestURI(path); err != nil {
		return nil, http2.ErrCodeProtocol
	}
	host := authority
	if host == "" {
		host = header.Get("Host")
	}
	ctx, cancel := context.WithCancel(c.base)
	st.cancel = cancel
	r := &http.Request{
		Method: method, URL: u, Proto: "HTTP/2.0", ProtoMajor: 2, Header: header, Host: host,
		RequestURI: requestURI, RemoteAddr: c.remote, TLS: c.tls, ContentLength: st.declared,
	}
	if vv := header["Trailer"]; len(vv) > 0 {
		r.Trailer = http.Header{}
		for _, v := range vv {
			for _, k := range strings.Split(v, ",") {
				if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" {
					r.Trailer[k] = nil
				}
			}
		}
	}
	if f.StreamEnded() {
		r.Body, r.ContentLength = http.NoBody, 0
	} else {
		st.body = &requestBody{st: st}
		st.body.cond.L = &c.mu
		r.Body = st.body
		if st.declared < 0 {
			r.ContentLength = -1
		}
		st.body.expectContinue = strings.EqualFold(header.Get("Expect"), "100-continue")
	}
	return r.WithContext(ctx), 0
}

// requestBody is a request's body as the handler reads it: the DATA the reader buffered (at
// most a stream window), handed back to the peer as window once read.
type requestBody struct {
	st   *stream
	cond sync.Cond
	buf  bytes.Buffer
	eof  bool
	// discard: the handler is done or the stream ended; arriving data is dropped.
	discard        bool
	closed         bool
	expectContinue bool
	// A blocked Read waits until deadline (Limits.BodyReadTimeout); timer wakes it. timedOut
	// sticks: the body is cut, every later Read fails too.
	waiting, timedOut bool
	deadline          time.Time
	timer             *time.Timer
}

// ErrBodyReadTimeout is what a request body's Read returns when the client sent no DATA for
// Limits.BodyReadTimeout while the handler waited for it. When the handler's response ends,
// the rest of the request is refused (RST_STREAM).
var ErrBodyReadTimeout = errors.New("h2: the client stopped sending the request body (body read timeout)")

// wait blocks until DATA, the end of the body or a stream error arrives, or until the body
// read timeout passes (then timedOut). Under c.mu.
func (b *requestBody) wait(c *conn) {
	d := c.lim.BodyReadTimeout
	if d > 0 {
		b.deadline = time.Now().Add(d)
		if b.timer == nil {
			b.timer = time.AfterFunc(d, b.expire)
		} else {
			b.timer.Reset(d)
		}
	}
	b.waiting = true
	for b.buf.Len() == 0 && !b.eof && b.st.err == nil && !c.closed && !b.timedOut {
		b.cond.Wait()
	}
	b.waiting = false
	if b.timer != nil {
		b.timer.Stop()
	}
}

// expire is the body read timer: a Read still waiting past its deadline times out.
func (b *requestBody) expire() {
	c := b.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.waiting && !time.Now().Before(b.deadline) {
		b.timedOut = true
		b.cond.Broadcast()
	}
}

func (b *requestBody) Read(p []byte) (int, error) {
	c := b.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.expectContinue {
		b.expectContinue = false
		if w := b.st.w; w != nil && !w.wroteHeader && b.st.err == nil && !c.closed {
			// The client waits for this before sending the body.
			c.hbuf.Reset()
			_ = c.enc.WriteField(hpackField(":status", "100"))
			if err := c.writeHeaderBlock(b.st.id, c.hbuf.Bytes(), false); err == nil {
				_ = c.flushLocked()
			}
		}
	}
	if b.buf.Len() == 0 && !b.eof && b.st.err == nil && !c.closed && !b.timedOut {
		b.wait(c)
	}
	if b.buf.Len() > 0 {
		n, _ := b.buf.Read(p)
		if err := c.consumedLocked(b.st, int32(n)); err == nil && c.writers.Load() == 0 {
			// A WINDOW_UPDATE lets the client send more: it must not wait for a flush.
			_ = c.flushLocked()
		}
		return n, nil
	}
	if b.eof {
		return 0, io.EOF // request trailers, if any, are in the request's Trailer by now
	}
	if b.timedOut {
		return 0, ErrBodyReadTimeout
	}
	if b.st.err != nil {
		return 0, b.st.err
	}
	return 0, errConnClosed
}

// Close stops the body: data still arriving is dropped and its window given back.
func (b *requestBody) Close() error {
	c := b.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	b.closed = true
	if !b.eof {
		b.discard = true
		if n := int32(b.buf.Len()); n > 0 {
			b.buf.Reset()
			_ = c.consumedLocked(nil, n)
		}
	}
	return nil
}
