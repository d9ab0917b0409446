package h2

import (
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// chunkSize is how much response body a stream buffers before it frames it: the handler's
// small writes become one DATA frame, a 32 KiB copy buffer two.
const chunkSize = 32 << 10

// responseWriter is a stream's http.ResponseWriter (and http.Flusher).
type responseWriter struct {
	st          *stream
	header      http.Header
	status      int
	wroteHeader bool // the handler decided the status
	sentHeader  bool // HEADERS went out
	isHead      bool
	buf         []byte
	// pooled is buf's backing array when it came from bodyBufs: given back when the
	// response ends (what the handler wrote was copied into frames by then).
	pooled   *[]byte
	written  int64
	finished bool
}

// bodyBufs hold small response bodies until they are framed: most answers (and the bodies
// proxied in one read) fit, and a buffer per response was a tenth of the bytes a proxied
// request allocated.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, pooledBody); return &b }}

const pooledBody = 2 << 10

// release gives the pooled body buffer back. The response is over: nothing frames w.buf
// after this.
func (w *responseWriter) release() {
	if w.pooled != nil {
		*w.pooled = (*w.pooled)[:0]
		bodyBufs.Put(w.pooled)
		w.pooled = nil
	}
	w.buf = nil
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader || w.finished {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	if code < 100 || code > 999 {
		panic("h2: invalid WriteHeader code " + strconv.Itoa(code))
	}
	w.wroteHeader, w.status = true, code
	w.isHead = w.st.req.Method == http.MethodHead
}

// informational sends a 1xx answer (103 Early Hints with the header's fields) at once.
func (w *responseWriter) informational(code int) {
	c := w.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.st.err != nil || c.closed {
		return
	}
	c.hbuf.Reset()
	_ = c.enc.WriteField(hpackField(":status", statusText(code)))
	w.encodeFields(false)
	if c.writeHeaderBlock(w.st.id, c.hbuf.Bytes(), false) == nil {
		_ = c.flushLocked()
	}
}

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified && (status < 100 || status > 199)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.finished {
		return 0, errStreamClosed
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.isHead {
		return len(p), nil
	}
	if len(w.buf)+len(p) > chunkSize && len(w.buf) > 0 {
		if err := w.send(false, false); err != nil {
			return 0, err
		}
	}
	if len(p) > chunkSize {
		w.buf = p // framed at once, not copied
		if err := w.send(false, false); err != nil {
			return 0, err
		}
		w.buf = nil
		return len(p), nil
	}
	if w.buf == nil {
		if len(p) <= pooledBody {
			if w.pooled == nil {
				w.pooled = bodyBufs.Get().(*[]byte)
			}
			w.buf = (*w.pooled)[:0]
		} else {
			w.buf = make([]byte, 0, min(chunkSize, len(p)))
		}
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *responseWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// Flush sends what was written so far.
func (w *responseWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = w.send(false, true)
}

// FlushError is Flush for http.ResponseController, with its error.
func (w *responseWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.send(false, true)
}

// SetReadDeadline and SetWriteDeadline satisfy http.ResponseController; a stream's deadlines
// are the connection's (write timeouts apply per write to the socket).
func (w *responseWriter) SetReadDeadline(time.Time) error  { return nil }
func (w *responseWriter) SetWriteDeadline(time.Time) error { return nil }

// EnableFullDuplex: HTTP/2 streams always are.
func (w *responseWriter) EnableFullDuplex() error { return nil }

// finish ends the response after the handler returned.
func (w *responseWriter) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sentHeader && !w.isHead && bodyAllowed(w.status) && !w.hasTrailers() {
		if _, ok := w.header["Content-Length"]; !ok {
			w.header["Content-Length"] = []string{strconv.Itoa(len(w.buf))}
		}
	}
	_ = w.send(true, false)
	w.finished = true
	w.release()
	st, c := w.st, w.st.c
	c.mu.Lock()
	if st.body != nil {
		st.body.closed = true
	}
	if !st.recvDone && c.streams[st.id] == st {
		// The response is complete before the request: stop the rest (RFC 9113 §8.1).
		c.closeStream(st)
		if c.fr.WriteRSTStream(st.id, http2.ErrCodeNo) == nil && c.writers.Load() == 0 {
			_ = c.flushLocked()
		}
	}
	c.mu.Unlock()
}

// abort resets the stream after a handler panic (or http.ErrAbortHandler).
func (w *responseWriter) abort() {
	w.finished = true
	w.release()
	st, c := w.st, w.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams[st.id] == st {
		_ = c.resetStream(st.id, http2.ErrCodeInternal, false)
		_ = c.flushLocked()
	}
}

func (w *responseWriter) hasTrailers() bool {
	if len(w.header["Trailer"]) > 0 {
		return true
	}
	for k := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// send writes the header (once) and the buffered body as the flow-control windows allow;
// end finishes the stream (with trailers, if any), flush makes sure it reaches the socket.
func (w *responseWriter) send(end, flush bool) error {
	st, c := w.st, w.st.c
	c.writers.Add(1)
	c.mu.Lock()
	err := w.sendLocked(end)
	if end && err == nil {
		st.sendDone = true
		if st.recvDone {
			c.closeStream(st)
		}
	}
	last := c.writers.Add(-1) == 0
	if last && !flush && c.bw != nil && c.bw.Buffered() < bufSize/2 {
		// Group commit: the last writer flushes for everyone before it. It first gives
		// other goroutines a turn: streams whose upstreams answered in the same moment
		// write theirs, and one write carries them all (the last of them flushes then).
		c.mu.Unlock()
		runtime.Gosched()
		c.mu.Lock()
		last = c.writers.Load() == 0
	}
	if last || flush {
		if ferr := c.flushLocked(); err == nil {
			err = ferr
		}
	}
	c.mu.Unlock()
	return err
}

func (w *responseWriter) sendLocked(end bool) error {
	st, c := w.st, w.st.c
	if st.err != nil {
		return st.err
	}
	if c.closed {
		return errConnClosed
	}
	trailers := end && w.hasTrailers()
	if len(w.buf) > int(bufSize) {
		// Frames past the connection's buffer reach the socket from here.
		c.armWriteLocked()
	}
	if !w.sentHeader {
		w.sentHeader = true
		c.hbuf.Reset()
		_ = c.enc.WriteField(hpackField(":status", statusText(w.status)))
		if _, ok := w.header["Content-Type"]; !ok && len(w.buf) > 0 && bodyAllowed(w.status) {
			w.header["Content-Type"] = []string{http.DetectContentType(w.buf)}
		}
		w.encodeFields(false)
		if _, ok := w.header["Date"]; !ok {
			_ = c.enc.WriteField(hpackField("date", date()))
		}
		ends := end && len(w.buf) == 0 && !trailers
		if err := c.writeHeaderBlock(st.id, c.hbuf.Bytes(), ends); err != nil {
			return err
		}
		if ends {
			return nil
		}
	}
	wroteEnd := false
	for len(w.buf) > 0 {
		n := min(int32(len(w.buf)), c.sendWin, st.sendWin, int32(c.peerMax))
		if n <= 0 {
			// Out of window: let the peer have what is buffered, then wait for a
			// WINDOW_UPDATE (not counted as a writer meanwhile, so others flush).
			if err := c.flushLocked(); err != nil {
				return err
			}
			c.writers.Add(-1)
			c.cond.Wait()
			c.writers.Add(1)
			c.armWriteLocked() // the wait for window may have outlasted the deadline
			if st.err != nil {
				return st.err
			}
			if c.closed {
				return errConnClosed
			}
			continue
		}
		last := end && int(n) == len(w.buf) && !trailers
		if err := c.fr.WriteData(st.id, last, w.buf[:n]); err != nil {
			return err
		}
		wroteEnd = last
		c.sendWin -= n
		st.sendWin -= n
		w.buf = w.buf[n:]
	}
	w.buf = w.buf[:0]
	switch {
	case trailers:
		c.hbuf.Reset()
		w.encodeFields(true)
		return c.writeHeaderBlock(st.id, c.hbuf.Bytes(), true)
	case end && !wroteEnd:
		// Everything was sent before: END_STREAM goes on an empty DATA frame.
		return c.fr.WriteData(st.id, true, nil)
	}
	return nil
}

// encodeFields encodes the header (or, with trailers, the trailer fields) into c.hbuf.
func (w *responseWriter) encodeFields(trailers bool) {
	c := w.st.c
	if trailers {
		for _, v := range w.header["Trailer"] {
			for _, k := range strings.Split(v, ",") {
				k = http.CanonicalHeaderKey(strings.TrimSpace(k))
				for _, vv := range w.header[k] {
					_ = c.enc.WriteField(hpackField(strings.ToLower(k), vv))
				}
			}
		}
		for k, vv := range w.header {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
				for _, v := range vv {
					_ = c.enc.WriteField(hpackField(strings.ToLower(name), v))
				}
			}
		}
		return
	}
	declared := w.header["Trailer"]
	for k, vv := range w.header {
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te":
			continue
		}
		if strings.HasPrefix(k, http.TrailerPrefix) || (len(declared) > 0 && isDeclared(declared, k)) {
			continue
		}
		name := lowerName(k)
		for _, v := range vv {
			_ = c.enc.WriteField(hpackField(name, v))
		}
	}
}

func isDeclared(declared []string, k string) bool {
	for _, v := range declared {
		for _, d := range strings.Split(v, ",") {
			if http.CanonicalHeaderKey(strings.TrimSpace(d)) == k {
				return true
			}
		}
	}
	return false
}

func hpackField(name, value string) hpack.HeaderField {
	return hpack.HeaderField{Name: name, Value: value}
}

// commonLower maps the canonical names of common response headers to their wire form without
// an allocation.
var commonLower = map[string]string{}

func init() {
	for _, k := range []string{"Content-Type", "Content-Length", "Content-Encoding", "Cache-Control", "Date", "Etag",
		"Last-Modified", "Location", "Server", "Set-Cookie", "Vary", "Via", "X-Request-Id", "Access-Control-Allow-Origin",
		"Strict-Transport-Security", "Alt-Svc", "Grpc-Status", "Grpc-Message", "Grpc-Encoding", "Trailer", "Age", "Expires",
		"Accept-Ranges", "Content-Range", "Www-Authenticate", "Retry-After", "Link", "X-Content-Type-Options"} {
		commonLower[k] = strings.ToLower(k)
	}
}

func lowerName(k string) string {
	if l, ok := commonLower[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

var statusTexts [600]string

func init() {
	for i := 100; i < len(statusTexts); i++ {
		statusTexts[i] = strconv.Itoa(i)
	}
}

func statusText(code int) string {
	if code >= 100 && code < len(statusTexts) {
		return statusTexts[code]
	}
	return strconv.Itoa(code)
}

// The Date header, formatted once a second.
var dateCache atomic.Pointer[dateEntry]

type dateEntry struct {
	sec int64
	s   string
}

func date() string {
	now := time.Now()
	if e := dateCache.Load(); e != nil && e.sec == now.Unix() {
		return e.s
	}
	e := &dateEntry{sec: now.Unix(), s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(e)
	return e.s
}
