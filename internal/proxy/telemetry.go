package proxy

import (
	"math/rand/v2"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"apoxy.dev/apoxy/internal/accesslog"
	"apoxy.dev/apoxy/internal/ir"
)

// telemetryState is one Snapshot.Telemetry entry (a Gateway's telemetry) compiled for the
// request path: which exchanges are logged, and the tenant's stream they go to. Route
// handlers and L4 routes hold theirs; nil means the data plane's defaults (log everything,
// no tenant stream).
type telemetryState struct {
	project, gateway string
	// keep: statuses and a duration always logged; sample: percent of the rest.
	statuses []ir.StatusRange
	minDur   time.Duration
	sample   int32
	stream   *accesslog.Stream
	// trace is the Gateway's tracing (nil: off).
	trace *tracing
	// format is the Gateway's access-log line.
	format *accesslog.Format
	// content captures bodies for content logs (nil: off).
	content *contentLog
	// pipeline names the Proxy's collector pipeline lines go to ("" none).
	pipeline string
}

// keeps says whether an exchange with this status, lasting d, gets a line.
func (ts *telemetryState) keeps(status int, d time.Duration) bool {
	if ts == nil || ts.sample >= 100 {
		return true
	}
	for _, r := range ts.statuses {
		if status >= r.Min && status <= r.Max {
			return true
		}
	}
	if ts.minDur > 0 && d >= ts.minDur {
		return true
	}
	return ts.sample > 0 && rand.Int32N(100) < ts.sample
}

// compileTelemetry builds the states of a snapshot's telemetry entries. Streams are the
// server's, one per project, kept across snapshots.
func (s *Server) compileTelemetry(snap *ir.Snapshot) map[string]*telemetryState {
	out := make(map[string]*telemetryState, len(snap.Telemetry))
	for key, t := range snap.Telemetry {
		f, err := compileFormat(t.AccessLog)
		if err != nil { // the API refuses such formats; never let one stop a snapshot
			s.log.Error("access-log format refused; the default line is used", "telemetry", key, "err", err)
			f = defaultFormat
		}
		out[key] = &telemetryState{format: f, content: newContentLog(t.ContentLog), pipeline: collectorName(t), project: t.Project, gateway: t.Gateway, statuses: t.AccessLog.StatusCodes,
			minDur: time.Duration(t.AccessLog.MinDuration), sample: t.AccessLog.SamplingRate, stream: s.Logs(t.Project),
			trace: s.tracers.get(key, t)}
	}
	return out
}

// Logs returns a project's access-log stream (recent lines and followers), creating it.
func (s *Server) Logs(project string) *accesslog.Stream {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	st, ok := s.streams[project]
	if !ok {
		st = &accesslog.Stream{}
		s.streams[project] = st
	}
	return st
}

// Pipelines carry each Proxy's telemetry to its OpenTelemetry Collector pipeline
// (ir.Collector; implemented by internal/telemetry/pipeline, which the data plane does not
// import: the collector modules bring Kubernetes libraries). Apply calls Prepare with the
// snapshot's telemetry before compiling, and Finish after the swap (or failure).
type Pipelines interface {
	Prepare(tels map[string]*ir.Telemetry)
	Finish(swapped bool)
	// SpanExporter is where a pipeline's spans go (nil: nowhere).
	SpanExporter(collector string) sdktrace.SpanExporter
	// Log hands a pipeline one access-log or content-log line; it must not block.
	Log(collector string, l LogLine)
	SinkStatus(collector, sink string) (SinkStatus, bool)
	Close()
}

// LogLine is a line for a pipeline's logs signal.
type LogLine struct {
	// Type is "access" or "content".
	Type             string
	Project, Gateway string
	Route            string
	Status           int
	TraceID          string
	Time             time.Time
	// Line is the formatted line; valid only during the call.
	Line []byte
}

// SinkStatus is a telemetry sink's export state, for the status of the object it came from
// (a CloudMonitoringIntegration's Connected condition).
type SinkStatus struct {
	// Since is when the sink's exporter was (re)configured.
	Since time.Time
	// LastSuccess is the last export that succeeded.
	LastSuccess time.Time
	// LastError is the last export error, at LastErrorTime.
	LastError     string
	LastErrorTime time.Time
}

// SinkStatus reports the export state of sink in the collector pipeline named collector (an
// ir.Collector Name). ok is false when no such sink runs.
func (s *Server) SinkStatus(collector, sink string) (SinkStatus, bool) {
	if s.pipes == nil {
		return SinkStatus{}, false
	}
	return s.pipes.SinkStatus(collector, sink)
}
