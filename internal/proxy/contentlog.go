package proxy

import (
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"apoxy.dev/apoxy/internal/accesslog"
	"apoxy.dev/apoxy/internal/ir"
)

// contentLog is a Gateway's compiled content-log settings (Proxy spec.telemetry.contentLogs):
// which exchanges' bodies are captured, how much, and which header values never appear.
type contentLog struct {
	req, resp bool
	max       int
	types     []string // "type/subtype" or "type/*", lower case
	paths     []string
	redact    map[string]bool // canonical header names
}

func newContentLog(c *ir.ContentLog) *contentLog {
	if c == nil || (!c.Request && !c.Response) {
		return nil
	}
	cl := &contentLog{req: c.Request, resp: c.Response, max: c.MaxBodyBytes, paths: c.Paths, redact: map[string]bool{}}
	if cl.max <= 0 {
		cl.max = 4096
	}
	for _, t := range c.ContentTypes {
		cl.types = append(cl.types, strings.ToLower(t))
	}
	for _, h := range c.RedactHeaders {
		cl.redact[http.CanonicalHeaderKey(h)] = true
	}
	return cl
}

// wantsPath says whether an exchange on path is captured.
func (cl *contentLog) wantsPath(path string) bool {
	return len(cl.paths) == 0 || slices.ContainsFunc(cl.paths, func(p string) bool { return strings.HasPrefix(path, p) })
}

// wantsType says whether a body of this Content-Type is captured. Streams (server-sent
// events, gRPC) never are: capturing never holds a byte back, but their bodies are not
// content to log.
func (cl *contentLog) wantsType(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt == "text/event-stream" || strings.HasPrefix(mt, "application/grpc") {
		return false
	}
	major, _, _ := strings.Cut(mt, "/")
	for _, t := range cl.types {
		if t == mt || (strings.HasSuffix(t, "/*") && t[:len(t)-2] == major) {
			return true
		}
	}
	return false
}

// capture holds what one exchange's bodies showed, up to the limit: bytes are copied as
// they pass, never held back.
type capture struct {
	cl                  *contentLog
	req, resp           []byte
	reqTrunc, respTrunc bool
	reqOn, respOn       bool
}

func (c *capture) add(dst *[]byte, trunc *bool, p []byte) {
	room := c.cl.max - len(*dst)
	if len(p) > room {
		p, *trunc = p[:max(room, 0)], true
	}
	*dst = append(*dst, p...)
}

// captureWriter copies the first bytes of a response body into its capture, deciding by the
// response head (its Content-Type, and no Content-Encoding: a body the upstream compressed is
// not text to log).
type captureWriter struct {
	http.ResponseWriter
	c *capture
}

func (w *captureWriter) WriteHeader(code int) {
	h := w.Header()
	w.c.respOn = w.c.cl.resp && h.Get("Content-Encoding") == "" && w.c.cl.wantsType(h.Get("Content-Type"))
	w.ResponseWriter.WriteHeader(code)
}

func (w *captureWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if w.c.respOn && n > 0 {
		w.c.add(&w.c.resp, &w.c.respTrunc, p[:n])
	}
	return n, err
}

// Flush passes a flush on (streams).
func (w *captureWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the writers below.
func (w *captureWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// appendContentLine appends the exchange's content-log line: one JSON object with the same
// request_id, trace_id and route as its access-log line, the headers (redacted) and the
// captured bodies.
func appendContentLine(b []byte, c *capture, rec *accessRecord, now time.Time) []byte {
	b = append(b, `{"type":"content","time":`...)
	b = accesslog.AppendJSONString(b, now.UTC().Format(time.RFC3339Nano))
	var reqID string
	if rec.req != nil {
		reqID = rec.req.Header.Get("X-Request-Id")
	}
	for _, f := range [...]struct{ k, v string }{{"request_id", reqID}, {"trace_id", rec.TraceID}, {"route", rec.Route}, {"method", rec.Method}, {"path", rec.Path}} {
		if f.v != "" {
			b = append(b, ',', '"')
			b = append(b, f.k...)
			b = append(b, '"', ':')
			b = accesslog.AppendJSONString(b, f.v)
		}
	}
	b = append(b, `,"request":{"headers":`...)
	var reqH http.Header
	if rec.req != nil {
		reqH = rec.req.Header
	}
	b = appendHeaders(b, reqH, c.cl.redact)
	if c.reqOn {
		b = appendBody(b, c.req, c.reqTrunc)
	}
	b = append(b, `},"response":{"status":`...)
	b = strconv.AppendInt(b, int64(rec.Status), 10)
	b = append(b, `,"headers":`...)
	b = appendHeaders(b, rec.resp, c.cl.redact)
	if c.respOn {
		b = appendBody(b, c.resp, c.respTrunc)
	}
	return append(b, '}', '}', '\n')
}

func appendBody(b, body []byte, trunc bool) []byte {
	b = append(b, `,"body":`...)
	b = accesslog.AppendJSONString(b, string(body))
	if trunc {
		b = append(b, `,"body_truncated":true`...)
	}
	return b
}

// appendHeaders writes headers as a JSON object (values joined with ", "), sorted by name,
// redacted ones as "[redacted]".
func appendHeaders(b []byte, h http.Header, redact map[string]bool) []byte {
	keys := make([]string, 0, len(h))
	for k, v := range h {
		if len(v) > 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = accesslog.AppendJSONString(b, k)
		b = append(b, ':')
		if redact[http.CanonicalHeaderKey(k)] {
			b = append(b, `"[redacted]"`...)
		} else {
			b = accesslog.AppendJSONString(b, strings.Join(h[k], ", "))
		}
	}
	return append(b, '}')
}
