package filter

import (
	"compress/gzip"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"apoxy.dev/apoxy/internal/ir"
)

// defaultCompressible are the media types compressed unless a filter lists its own.
var defaultCompressible = []string{
	"text/html", "text/plain", "text/css", "text/javascript", "text/xml", "text/csv", "text/event-stream",
	"application/javascript", "application/json", "application/xml", "application/xhtml+xml",
	"application/rss+xml", "application/atom+xml", "application/wasm", "application/x-javascript",
	"image/svg+xml",
}

// compression encodes responses the client accepts (on by default on every route; an
// HTTPRouteFilter tunes or disables it). A later compression stage (a backendRef's) replaces
// an earlier one's settings rather than encoding twice.
type compression struct{ cfg *ir.Compression }

func newCompression(f *ir.Filter, _ *ir.Route, _ *Env) (Stage, error) {
	if f.Compression == nil {
		return nil, errors.New("compression is not set")
	}
	return &compression{f.Compression}, nil
}

// Contained: Serve works on the request's goroutine and keeps nothing of it.
func (*compression) Contained() {}

func (s *compression) Serve(x *Exchange) bool {
	if cw, ok := x.W.(*compressWriter); ok && cw.x == x {
		cw.cfg, cw.encoding = s.cfg, ""
		if !s.cfg.Disabled {
			cw.encoding = negotiate(x.Req.Header.Get("Accept-Encoding"), s.cfg.Algorithms)
		}
		return false
	}
	if s.cfg.Disabled {
		return false
	}
	if cw := newCompressWriter(x, s.cfg); cw != nil {
		x.W = cw
		x.Defer(cw)
	}
	return false
}

// compressWriter encodes the response with the best algorithm the client accepts, when the
// upstream did not encode it, the type is compressible and the body is at least the minimum
// (decided from Content-Length, or from the first bytes when the length is unknown).
type compressWriter struct {
	http.ResponseWriter
	x        *Exchange
	cfg      *ir.Compression
	encoding string // chosen from Accept-Encoding; "" = never compress
	code     int
	state    compressState
	enc      io.WriteCloser
	pending  []byte // held back while undecided
}

type compressState int

const (
	stateNoHeader  compressState = iota // WriteHeader not called yet
	stateUndecided                      // length unknown, fewer than MinContentLength bytes seen
	statePass                           // headers sent, body passes through
	stateCompress                       // headers sent, body encoded
)

// It returns nil when the client accepts none of the configured encodings: the response
// then passes untouched (no wrapper on the hot path of clients that never compress).
func newCompressWriter(x *Exchange, cfg *ir.Compression) *compressWriter {
	enc := negotiate(x.Req.Header.Get("Accept-Encoding"), cfg.Algorithms)
	if enc == "" {
		return nil
	}
	return &compressWriter{ResponseWriter: x.W, x: x, cfg: cfg, encoding: enc}
}

// negotiate picks the first of our algorithms (in preference order) the client accepts with
// q > 0.
func negotiate(accept string, algorithms []string) string {
	if accept == "" {
		return ""
	}
	accepted := map[string]bool{}
	for _, part := range strings.Split(accept, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				continue
			}
		}
		accepted[strings.ToLower(strings.TrimSpace(name))] = true
	}
	for _, a := range algorithms {
		if accepted[a] || accepted["*"] {
			return a
		}
	}
	return ""
}

func (c *compressWriter) WriteHeader(code int) {
	if code < 200 && code != http.StatusSwitchingProtocols {
		c.ResponseWriter.WriteHeader(code) // 1xx informational responses pass
		return
	}
	if c.state != stateNoHeader {
		return
	}
	h := c.Header()
	code = c.x.ResponseHead(h, code) // the response stages edit the head before it is judged
	c.code = code
	if c.encoding == "" || code == http.StatusNoContent || code == http.StatusNotModified || code == http.StatusSwitchingProtocols ||
		h.Get("Content-Encoding") != "" || !c.compressible(h.Get("Content-Type")) || strings.Contains(h.Get("Cache-Control"), "no-transform") {
		c.pass()
		return
	}
	h.Add("Vary", "Accept-Encoding")
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.Atoi(cl); err != nil || n < c.cfg.MinContentLength {
			c.pass()
		} else {
			c.compress()
		}
		return
	}
	c.state = stateUndecided
}

func (c *compressWriter) compressible(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	list := c.cfg.ContentTypes
	if len(list) == 0 {
		list = defaultCompressible
	}
	return slices.Contains(list, mt)
}

func (c *compressWriter) pass() {
	c.state = statePass
	c.ResponseWriter.WriteHeader(c.code)
	if len(c.pending) > 0 {
		c.ResponseWriter.Write(c.pending)
		c.pending = nil
	}
}

func (c *compressWriter) compress() {
	c.state = stateCompress
	h := c.Header()
	h.Del("Content-Length")
	h.Set("Content-Encoding", c.encoding)
	if etag := h.Get("ETag"); etag != "" && !strings.HasPrefix(etag, "W/") {
		h.Set("ETag", "W/"+etag)
	}
	c.ResponseWriter.WriteHeader(c.code)
	switch c.encoding {
	case "gzip":
		c.enc, _ = gzip.NewWriterLevel(c.ResponseWriter, gzip.DefaultCompression)
	case "br":
		c.enc = brotli.NewWriterLevel(c.ResponseWriter, 4)
	default: // zstd
		c.enc, _ = zstd.NewWriter(c.ResponseWriter, zstd.WithEncoderLevel(zstd.SpeedFastest))
	}
	if len(c.pending) > 0 {
		c.enc.Write(c.pending)
		c.pending = nil
	}
}

func (c *compressWriter) Write(b []byte) (int, error) {
	if c.state == stateNoHeader {
		c.WriteHeader(http.StatusOK)
	}
	switch c.state {
	case stateUndecided:
		c.pending = append(c.pending, b...)
		if len(c.pending) >= c.cfg.MinContentLength {
			c.compress()
		}
		return len(b), nil
	case stateCompress:
		return c.enc.Write(b)
	}
	return c.ResponseWriter.Write(b)
}

// Flush pushes encoded bytes out; a flush while undecided means an interactive stream
// (server-sent events), so compression starts at once.
func (c *compressWriter) Flush() {
	switch c.state {
	case stateNoHeader:
		c.WriteHeader(http.StatusOK)
		if c.state == stateUndecided {
			c.compress()
		}
	case stateUndecided:
		c.compress()
	}
	if f, ok := c.enc.(interface{ Flush() error }); ok {
		f.Flush()
	}
	_ = http.NewResponseController(c.ResponseWriter).Flush()
}

// Close finishes the encoding; a body of unknown length shorter than the minimum is sent as is.
func (c *compressWriter) Close() error {
	switch c.state {
	case stateUndecided:
		c.Header().Del("Vary")
		c.pass()
	case stateCompress:
		return c.enc.Close()
	}
	return nil
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (c *compressWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
