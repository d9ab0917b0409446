package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"sync"
	"time"
)

// accessLogger writes one JSON object per request. Lines are assembled in a pooled buffer and
// written under a lock, so lines never interleave.
type accessLogger struct {
	mu  sync.Mutex
	w   *bufio.Writer
	out io.Writer
}

func newAccessLogger(w io.Writer) *accessLogger {
	if w == nil {
		return nil
	}
	return &accessLogger{w: bufio.NewWriterSize(w, 64<<10), out: w}
}

// accessRecord is one access-log line.
type accessRecord struct {
	Time          string  `json:"time"`
	RequestID     string  `json:"request_id"`
	ClientIP      string  `json:"client_ip"`
	Method        string  `json:"method"`
	Host          string  `json:"host"`
	Path          string  `json:"path"`
	Protocol      string  `json:"protocol"`
	Status        int     `json:"status"`
	BytesReceived int64   `json:"bytes_received"`
	BytesSent     int64   `json:"bytes_sent"`
	DurationMS    float64 `json:"duration_ms"`
	UpstreamMS    float64 `json:"upstream_ms,omitempty"`
	Route         string  `json:"route,omitempty"`
	Backend       string  `json:"backend,omitempty"`
	Upstream      string  `json:"upstream_address,omitempty"`
	Error         string  `json:"error,omitempty"`
	UserAgent     string  `json:"user_agent,omitempty"`
}

func (l *accessLogger) log(rec *accessRecord) {
	if l == nil {
		return
	}
	rec.Time = time.Now().UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	l.mu.Lock()
	l.w.Write(b)
	l.w.WriteByte('\n')
	// Flush per line keeps `tail -f` live; the buffer only saves syscalls within a line.
	l.w.Flush()
	l.mu.Unlock()
}
