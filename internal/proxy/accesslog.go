package proxy

import (
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"apoxy.dev/apoxy/internal/accesslog"
	"apoxy.dev/apoxy/internal/proxy/filter"
)

// accessLogger writes each exchange's line to the server's access log (stdout or a file,
// through a Writer that never blocks requests on it) and to the tenant's stream (`apoxy
// logs`), after the exchange's telemetry settings decided it is logged.
type accessLogger struct {
	w *accesslog.Writer // nil: no server access log
}

func newAccessLogger(w io.Writer, dropped func()) *accessLogger {
	l := &accessLogger{}
	if w != nil {
		l.w = accesslog.NewWriter(w, accesslog.WriterOptions{OnDrop: dropped})
	}
	return l
}

// accessRecord is one access-log line.
type accessRecord struct {
	RequestID     string
	ClientIP      string
	Method        string
	Host          string
	Path          string
	Protocol      string
	Status        int
	BytesReceived int64
	BytesSent     int64
	DurationMS    float64
	UpstreamMS    float64
	Route         string
	Backend       string
	Upstream      string
	Error         string
	UserAgent     string
	// Flags are Envoy-style response flags (RL, UO, DI...); RateLimit the rate limiter's
	// decision when a rule applied.
	Flags     filter.Flags
	RateLimit string
	// Auth is the auth phases' decision: who authenticated the client, or what refused it.
	Auth string
	// TraceID is the request's trace ("" when not traced).
	TraceID string
	// tel is the telemetry of the route that served the exchange (nil: none matched); not
	// part of the line.
	tel *telemetryState
}

var lineBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// log writes the exchange's line if its route's telemetry settings (nil: the defaults) keep it.
func (l *accessLogger) log(rec *accessRecord, now time.Time, d time.Duration) {
	ts := rec.tel
	if !ts.keeps(rec.Status, d) {
		return
	}
	bp := lineBuffers.Get().(*[]byte)
	b := rec.appendJSON((*bp)[:0], now)
	if l.w != nil {
		l.w.Write(b)
	}
	if ts != nil && ts.stream != nil {
		ts.stream.Add(accesslog.Entry{Time: now, Route: rec.Route, Status: rec.Status, Line: b})
	}
	*bp = b
	lineBuffers.Put(bp)
}

// Flush writes out buffered lines.
func (l *accessLogger) Flush() {
	if l.w != nil {
		l.w.Flush()
	}
}

// Close flushes and stops the writer.
func (l *accessLogger) Close() {
	if l.w != nil {
		l.w.Close()
	}
}

// appendJSON encodes the record as one JSON line (fields in a fixed order; optional ones
// only when set).
func (rec *accessRecord) appendJSON(b []byte, now time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = appendTime(b, now)
	b = append(b, '"')
	b = appendField(b, "request_id", rec.RequestID)
	b = appendField(b, "client_ip", rec.ClientIP)
	b = appendField(b, "method", rec.Method)
	b = appendField(b, "host", rec.Host)
	b = appendField(b, "path", rec.Path)
	b = appendField(b, "protocol", rec.Protocol)
	if rec.Status != 0 { // TCP, TLS and UDP lines have none
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(rec.Status), 10)
	}
	b = append(b, `,"bytes_received":`...)
	b = strconv.AppendInt(b, rec.BytesReceived, 10)
	b = append(b, `,"bytes_sent":`...)
	b = strconv.AppendInt(b, rec.BytesSent, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, rec.DurationMS, 'f', -1, 64)
	if rec.UpstreamMS != 0 {
		b = append(b, `,"upstream_ms":`...)
		b = strconv.AppendFloat(b, rec.UpstreamMS, 'f', -1, 64)
	}
	for _, f := range [...]struct{ k, v string }{{"route", rec.Route}, {"backend", rec.Backend}, {"upstream_address", rec.Upstream}, {"error", rec.Error}, {"user_agent", rec.UserAgent}, {"ratelimit", rec.RateLimit}, {"auth", rec.Auth}, {"trace_id", rec.TraceID}} {
		if f.v != "" {
			b = appendField(b, f.k, f.v)
		}
	}
	if rec.Flags != 0 {
		b = append(b, `,"response_flags":"`...)
		b = rec.Flags.Append(b)
		b = append(b, '"')
	}
	return append(b, '}', '\n')
}

// secondPrefix caches "2006-01-02T15:04:05." for the current second: formatting a date per
// line was a visible share of the request path.
var secondPrefix atomic.Pointer[struct {
	unix   int64
	prefix []byte
}]

// appendTime appends t in UTC as RFC 3339 with microseconds ("2026-01-02T03:04:05.000006Z").
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	sec := t.Unix()
	p := secondPrefix.Load()
	if p == nil || p.unix != sec {
		p = &struct {
			unix   int64
			prefix []byte
		}{sec, t.AppendFormat(nil, "2006-01-02T15:04:05.")}
		secondPrefix.Store(p)
	}
	b = append(b, p.prefix...)
	us := t.Nanosecond() / 1000
	for div := 100000; div > 0; div /= 10 {
		b = append(b, byte('0'+us/div%10))
	}
	return append(b, 'Z')
}

func appendField(b []byte, key, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return accesslog.AppendJSONString(b, v)
}
