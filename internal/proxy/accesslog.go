package proxy

import (
	"bufio"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"apoxy.dev/apoxy/internal/accesslog"
	"apoxy.dev/apoxy/internal/proxy/filter"
)

// flushDelay bounds how long an access-log line waits in the buffer: lines are batched into
// one write per interval under load (a write per request costs a syscall on the hot path),
// and `tail -f` still sees each line within this delay.
const flushDelay = 50 * time.Millisecond

// accessLogger writes one JSON object per request. Lines are encoded into a per-request
// buffer, then appended under a lock, so lines never interleave.
type accessLogger struct {
	mu      sync.Mutex
	w       *bufio.Writer
	pending bool // a flush is scheduled
}

func newAccessLogger(w io.Writer) *accessLogger {
	if w == nil {
		return nil
	}
	return &accessLogger{w: bufio.NewWriterSize(w, 64<<10)}
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
}

var lineBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (l *accessLogger) log(rec *accessRecord, now time.Time) {
	if l == nil {
		return
	}
	bp := lineBuffers.Get().(*[]byte)
	b := rec.appendJSON((*bp)[:0], now)
	l.mu.Lock()
	l.w.Write(b)
	if !l.pending {
		l.pending = true
		time.AfterFunc(flushDelay, l.Flush)
	}
	l.mu.Unlock()
	*bp = b
	lineBuffers.Put(bp)
}

// Flush writes out buffered lines.
func (l *accessLogger) Flush() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.w.Flush()
	l.pending = false
	l.mu.Unlock()
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
	for _, f := range [...]struct{ k, v string }{{"route", rec.Route}, {"backend", rec.Backend}, {"upstream_address", rec.Upstream}, {"error", rec.Error}, {"user_agent", rec.UserAgent}, {"ratelimit", rec.RateLimit}, {"auth", rec.Auth}} {
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
