package h1

import (
	"apoxy.dev/apoxy/internal/proxy/wire"

	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// bufferBeforeCommit is how much body a handler may write before the head goes out without a
// length: a response that ends within it gets a Content-Length instead of chunking (net/http
// does the same with 2 KiB).
const bufferBeforeCommit = 4096

// response is the http.ResponseWriter of one request; it lives in its conn and is reset for
// the next request.
type response struct {
	c   *conn
	req *http.Request
	// body is the request's body as the server framed it (nil: none), kept apart from
	// req.Body, which a handler may wrap or replace: what was left unread is drained (or
	// the connection closed) from this one, so a body the handler never read cannot be
	// parsed as the next request.
	body *body

	status        int
	wroteHeader   bool  // a final status was chosen
	committed     bool  // the head was written
	chunked       bool  // the body is chunked
	closeAfter    bool  // the connection ends with this response
	hijacked      bool  //
	contentLength int64 // declared length, -1 if none
	written       int64 // body bytes accepted
	err           error // a write to the client failed
}

func (w *response) reset(req *http.Request) {
	clear(w.c.x.resHeader)
	*w = response{c: w.c, req: req, contentLength: -1, closeAfter: req.Close}
	w.body, _ = req.Body.(*body)
	w.c.pending = w.c.pending[:0]
}

// Header returns the response header map (reused per connection).
func (w *response) Header() http.Header { return w.c.x.resHeader }

// WriteHeader sends an informational status at once, or picks the final one.
func (w *response) WriteHeader(code int) {
	if w.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("h1: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// 1xx (103 Early Hints, ...): the head goes out now; the final one follows.
		if w.err == nil {
			bw := w.c.bw
			writeStatusLine(bw, code)
			writeHeaderFields(bw, w.c.x.resHeader)
			bw.WriteString("\r\n")
			w.err = bw.Flush()
		}
		return
	}
	w.wroteHeader = true
	w.status = code
	if cl := w.c.x.resHeader["Content-Length"]; len(cl) > 0 {
		if n, ok := wire.ParseContentLength(strings.TrimSpace(cl[0])); ok {
			w.contentLength = n
		} else {
			delete(w.c.x.resHeader, "Content-Length")
		}
	}
}

// bodyAllowed reports whether the status lets the response carry a body (HEAD is handled
// where bytes are written).
func (w *response) bodyAllowed() bool {
	return !(w.status == http.StatusNoContent || w.status == http.StatusNotModified || w.status < 200)
}

// Write buffers or sends body bytes.
func (w *response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.contentLength >= 0 && w.written+int64(len(p)) > w.contentLength {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.committed {
		if w.contentLength < 0 && len(w.c.pending)+len(p) <= bufferBeforeCommit {
			if w.c.pending == nil {
				w.c.pending = getPending()
			}
			w.c.pending = append(w.c.pending, p...)
			return len(p), nil
		}
		w.commit(p)
		if w.err != nil {
			return 0, w.err
		}
	}
	w.writeBody(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// WriteString is Write without the conversion.
func (w *response) WriteString(s string) (int, error) {
	return w.Write([]byte(s))
}

// writeBody sends bytes after the head, framed as the head said.
func (w *response) writeBody(p []byte) {
	if len(p) == 0 || w.req.Method == http.MethodHead || w.err != nil {
		return
	}
	bw := w.c.bw
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, w.err = bw.WriteString("\r\n")
		return
	}
	_, w.err = bw.Write(p)
}

// commit writes the status line and header, choosing the framing. first is the body data
// about to be written (for content sniffing when no Content-Type was set).
func (w *response) commit(first []byte) {
	w.committed = true
	if w.body != nil && w.body.commitHead() {
		// The client holds its body back until told to send it: this is the connection's
		// last response.
		w.closeAfter = true
	}
	h := w.c.x.resHeader
	if w.bodyAllowed() {
		if _, ok := h["Content-Type"]; !ok && w.status != http.StatusSwitchingProtocols {
			data := first
			if len(w.c.pending) > 0 {
				data = w.c.pending
			}
			if len(data) > 0 {
				h["Content-Type"] = []string{http.DetectContentType(data)}
			}
		}
	}
	bw := w.c.bw
	writeStatusLine(bw, w.status)
	delete(h, "Transfer-Encoding")
	if c := h["Connection"]; len(c) > 0 && wire.HasToken(strings.Join(c, ","), "close") {
		w.closeAfter = true
	}
	if w.c.srv.shutdown.Load() {
		w.closeAfter = true // the server is going away: this is the connection's last response
	}
	writeHeaderFields(bw, h)
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.Write(httpDate())
		bw.WriteString("\r\n")
	}
	switch {
	case w.status == http.StatusSwitchingProtocols || !w.bodyAllowed():
	case w.contentLength >= 0:
	case w.req.ProtoMinor == 0 || w.req.Method == http.MethodHead:
		// HTTP/1.0 has no chunking: the body ends when the connection does.
		if w.req.Method != http.MethodHead {
			w.closeAfter = true
		}
	default:
		w.chunked = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if w.closeAfter {
		if _, ok := h["Connection"]; !ok {
			bw.WriteString("Connection: close\r\n")
		}
	} else if w.req.ProtoMinor == 0 {
		bw.WriteString("Connection: keep-alive\r\n")
	}
	_, w.err = bw.WriteString("\r\n")
	if len(w.c.pending) > 0 {
		p := w.c.pending
		w.c.pending = w.c.pending[:0]
		w.writeBody(p)
	}
}

// finish completes the response after the handler returned: a body held back gets its length,
// a chunked one its last chunk and trailers, and the buffer goes out.
func (w *response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	h := w.c.x.resHeader
	if !w.committed {
		_, trailers := h["Trailer"]
		if w.contentLength < 0 && w.bodyAllowed() && !trailers && (w.req.Method != http.MethodHead || len(w.c.pending) > 0) {
			w.contentLength = int64(len(w.c.pending))
			h["Content-Length"] = []string{strconv.Itoa(len(w.c.pending))}
		}
		w.commit(nil)
	}
	bw := w.c.bw
	if w.chunked && w.err == nil {
		bw.WriteString("0\r\n")
		writeTrailers(bw, h)
		bw.WriteString("\r\n")
	}
	if w.err == nil {
		w.err = bw.Flush()
	}
	if w.contentLength >= 0 && w.written != w.contentLength && w.req.Method != http.MethodHead && w.bodyAllowed() {
		w.closeAfter = true // the client is waiting for bytes that will not come
	}
	if w.body != nil && !w.body.drain() {
		w.closeAfter = true
	}
	if w.c.pending != nil {
		putPending(w.c.pending)
		w.c.pending = nil
	}
}

// pendingPool holds the buffers of bodies held back before commit (only while answering).
var pendingPool sync.Pool

func getPending() []byte {
	if b, ok := pendingPool.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, bufferBeforeCommit)
}

func putPending(b []byte) {
	pendingPool.Put(&b)
}

// writeTrailers writes the fields the response declared in its Trailer header, and those set
// under http.TrailerPrefix.
func writeTrailers(bw *bufio.Writer, h http.Header) {
	for _, decl := range h["Trailer"] {
		for name := range strings.SplitSeq(decl, ",") {
			name = http.CanonicalHeaderKey(strings.TrimSpace(name))
			for _, v := range h[name] {
				writeField(bw, name, v)
			}
		}
	}
	for k, vv := range h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, v := range vv {
				writeField(bw, name, v)
			}
		}
	}
}

// Flush sends the head and what the body has so far.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush for http.ResponseController.
func (w *response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(nil)
	}
	if w.err == nil {
		w.err = w.c.bw.Flush()
	}
	return w.err
}

// Hijack hands the connection over (WebSocket and other upgrades).
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader && !w.committed {
		w.commit(nil)
	}
	if w.committed && w.err == nil {
		w.err = w.c.bw.Flush()
	}
	w.hijacked = true
	nc, rw := w.c.hijack()
	return nc, rw, nil
}

// SetReadDeadline and SetWriteDeadline serve http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error  { return w.c.rwc.SetReadDeadline(t) }
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// EnableFullDuplex serves http.ResponseController: reading the body while writing the
// response always works here.
func (w *response) EnableFullDuplex() error { return nil }

// writeHeaderFields writes every field of h; keys with no values are skipped (a nil
// Content-Type only stops sniffing).
func writeHeaderFields(bw *bufio.Writer, h http.Header) {
	for k, vv := range h {
		if k == "Trailer" || strings.HasPrefix(k, http.TrailerPrefix) {
			if k == "Trailer" {
				for _, v := range vv {
					writeField(bw, k, v)
				}
			}
			continue
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
}

// writeField writes "name: value"; line breaks in a value (which would split the response)
// become spaces, as net/http does.
func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(v)
	}
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// statusLines holds "HTTP/1.1 <code> <text>\r\n" for every code with a name.
var statusLines = func() (lines [600]string) {
	for code := range lines {
		if text := http.StatusText(code); text != "" {
			lines[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
		}
	}
	return lines
}()

func writeStatusLine(bw *bufio.Writer, code int) {
	if code < len(statusLines) && statusLines[code] != "" {
		bw.WriteString(statusLines[code])
		return
	}
	bw.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " status code " + strconv.Itoa(code) + "\r\n")
}

// dateCache holds the Date header value of the current second.
type dateValue struct {
	sec int64
	b   []byte
}

var dateCache atomic.Pointer[dateValue]

func httpDate() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &dateValue{sec: sec, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.b
}
