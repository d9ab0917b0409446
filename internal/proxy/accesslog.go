package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"apoxy.dev/apoxy/internal/ir"

	"apoxy.dev/apoxy/internal/accesslog"
	"apoxy.dev/apoxy/internal/proxy/filter"
)

// accessLogger writes each exchange's line to the server's access log (stdout or a file,
// through a Writer that never blocks requests on it) and to the tenant's stream (`apoxy
// logs`), after the exchange's telemetry settings decided it is logged. Lines are formatted
// by the route's Gateway's format (its Proxy's spec.telemetry.accessLogs; the default JSON
// line without one); the server's own log may force its format (server).
type accessLogger struct {
	w *accesslog.Writer // nil: no server access log
	// def formats exchanges of routes without telemetry settings; server, when set, formats
	// every line the server's log gets (apoxy --access-log-format).
	def, server *accesslog.Format
	// pipes take the lines of Gateways whose Proxy has a collector pipeline (nil: none).
	pipes Pipelines
}

// defaultFormat is the default JSON line.
var defaultFormat = func() *accesslog.Format {
	f, err := accesslog.ParseJSON(defaultJSONFields(nil), accesslog.JSONOptions{})
	if err != nil {
		panic(err)
	}
	return f
}()

// defaultJSONFields are the default line's fields, with a Proxy's json additions: a key it
// sets replaces the default's operator (in place), a new key is added (in key order), a key
// set to "" is removed.
func defaultJSONFields(extra map[string]string) []accesslog.JSONField {
	fields := append(accesslog.DefaultJSON(), accesslog.JSONField{Key: "trace_id", Format: "%TRACE_ID%", Empty: accesslog.EmptyOmit})
	if len(extra) == 0 {
		return fields
	}
	out := fields[:0:0]
	for _, f := range fields {
		if v, ok := extra[f.Key]; ok {
			if v == "" {
				continue
			}
			f.Format, f.Empty = v, accesslog.EmptyNull
		}
		out = append(out, f)
	}
	for _, f := range accesslog.JSONFieldsFromMap(extra) {
		if f.Format != "" && !slices.ContainsFunc(fields, func(d accesslog.JSONField) bool { return d.Key == f.Key }) {
			out = append(out, f)
		}
	}
	return out
}

// compileFormat builds a telemetry entry's line format.
func compileFormat(al ir.AccessLog) (*accesslog.Format, error) {
	if al.Format != "" {
		return accesslog.ParseText(al.Format)
	}
	if len(al.JSON) == 0 {
		return defaultFormat, nil
	}
	return accesslog.ParseJSON(defaultJSONFields(al.JSON), accesslog.JSONOptions{})
}

// serverFormat compiles the server log's own format ("" none: each Gateway's).
func serverFormat(spec string, log *slog.Logger) *accesslog.Format {
	switch spec {
	case "":
		return nil
	case "json":
		return defaultFormat
	}
	f, err := accesslog.ParseText(spec)
	if err != nil {
		log.Error("access-log format refused; each Gateway's format is used", "err", err)
		return nil
	}
	return f
}

func newAccessLogger(w io.Writer, server *accesslog.Format, dropped func()) *accessLogger {
	l := &accessLogger{def: defaultFormat, server: server}
	if w != nil {
		l.w = accesslog.NewWriter(w, accesslog.WriterOptions{OnDrop: dropped})
	}
	return l
}

// accessRecord is what an exchange leaves for its access-log line.
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
	// Function is the edge function revision that filtered or answered the exchange
	// (function@revision), FunctionError why it failed.
	Function, FunctionError string
	// TraceID is the request's trace ("" when not traced).
	TraceID string
	// tel is the telemetry of the route that served the exchange (nil: none matched); not
	// part of the line.
	tel *telemetryState
	// req and resp are the HTTP request (its headers as filters left them) and the response
	// head, for the format's header operators (nil for L4 and refused requests); remote is
	// the client's address and port, sni the TLS server name.
	req    *http.Request
	resp   http.Header
	remote netip.AddrPort
	sni    string
	// cap is what the exchange's content log captured (nil: none).
	cap  *capture
	meta [4]accesslog.Metadata
}

// fill turns the record into the formatter's input.
func (rec *accessRecord) fill(out *accesslog.Record, start time.Time, d time.Duration) {
	*out = accesslog.Record{Start: start, Method: rec.Method, Authority: rec.Host, Path: rec.Path, Protocol: rec.Protocol,
		Status: rec.Status, Flags: rec.Flags, Duration: d, RequestDuration: -1, ResponseDuration: -1, ResponseTxDuration: -1,
		BytesReceived: rec.BytesReceived, BytesSent: rec.BytesSent, UpstreamHost: rec.Upstream, UpstreamCluster: rec.Backend,
		RouteName: rec.Route, TraceID: rec.TraceID, Error: rec.Error, ServerName: rec.sni, DownstreamRemote: rec.remote,
		UpstreamDuration: time.Duration(rec.UpstreamMS * float64(time.Millisecond))}
	if !out.DownstreamRemote.IsValid() && rec.ClientIP != "" {
		if a, err := netip.ParseAddr(rec.ClientIP); err == nil {
			out.DownstreamRemote = netip.AddrPortFrom(a, 0)
		}
	}
	if rec.req == nil && out.ServerName == "" && rec.Protocol == "TLS" {
		out.ServerName = rec.Host // a TLS connection's host is its server name
	}
	if rec.Flags&(filter.FlagUpstreamConnectFailure) != 0 {
		out.UpstreamTransportFailureReason = rec.Error
	}
	if r := rec.req; r != nil {
		out.ReqHeader, out.RespHeader, out.Trailer = r.Header, rec.resp, nil
		if r.TLS != nil {
			out.Scheme = "https"
		} else {
			out.Scheme = "http"
		}
	}
	n := 0
	if rec.RateLimit != "" {
		rec.meta[n] = accesslog.Metadata{Namespace: accesslog.MetaRateLimit, Key: accesslog.MetaDecision, Value: rec.RateLimit}
		n++
	}
	if rec.Auth != "" {
		rec.meta[n] = accesslog.Metadata{Namespace: accesslog.MetaAuth, Key: accesslog.MetaDecision, Value: rec.Auth}
		n++
	}
	if rec.Function != "" {
		rec.meta[n] = accesslog.Metadata{Namespace: accesslog.MetaFunction, Key: accesslog.MetaRevision, Value: rec.Function}
		n++
		if rec.FunctionError != "" {
			rec.meta[n] = accesslog.Metadata{Namespace: accesslog.MetaFunction, Key: accesslog.MetaError, Value: rec.FunctionError}
			n++
		}
	}
	out.Metadata = rec.meta[:n]
}

var lineBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// log writes the exchange's line if its route's telemetry settings (nil: the defaults) keep it.
func (l *accessLogger) log(rec *accessRecord, now time.Time, d time.Duration) {
	ts := rec.tel
	if !ts.keeps(rec.Status, d) {
		return
	}
	f := l.def
	if ts != nil && ts.format != nil {
		f = ts.format
	}
	var r accesslog.Record
	rec.fill(&r, now, d)
	bp := lineBuffers.Get().(*[]byte)
	b := f.Append((*bp)[:0], &r)
	if l.w != nil {
		if l.server == nil || l.server == f {
			l.w.Write(b)
		} else {
			n := len(b)
			b = l.server.Append(b, &r)
			l.w.Write(b[n:])
			b = b[:n]
		}
	}
	l.toTenant(ts, rec, now, "access", b)
	if rec.cap != nil { // the content line follows its access line, wherever it goes
		n := len(b)
		b = appendContentLine(b, rec.cap, rec, now)
		if l.w != nil {
			l.w.Write(b[n:])
		}
		l.toTenant(ts, rec, now, "content", b[n:])
	}
	*bp = b
	lineBuffers.Put(bp)
}

// toTenant hands a line to the project's stream and its Proxy's collector pipeline.
func (l *accessLogger) toTenant(ts *telemetryState, rec *accessRecord, now time.Time, typ string, line []byte) {
	if ts == nil {
		return
	}
	if ts.stream != nil {
		ts.stream.Add(accesslog.Entry{Time: now, Route: rec.Route, Function: functionName(rec.Function), Status: rec.Status, Line: line})
	}
	if ts.pipeline != "" && l.pipes != nil {
		l.pipes.Log(ts.pipeline, LogLine{Type: typ, Project: ts.project, Gateway: ts.gateway, Route: rec.Route, Status: rec.Status, TraceID: rec.TraceID, Time: now, Line: line})
	}
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

// functionName is the function part of "namespace/name@revision" (the stream's entries are
// kept by function, whatever revision served).
func functionName(label string) string {
	for i := len(label) - 1; i >= 0; i-- {
		if label[i] == '@' {
			return label[:i]
		}
	}
	return label
}
