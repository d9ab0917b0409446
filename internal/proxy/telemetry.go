package proxy

import (
	"math/rand/v2"
	"time"

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
		out[key] = &telemetryState{format: f, content: newContentLog(t.ContentLog), project: t.Project, gateway: t.Gateway, statuses: t.AccessLog.StatusCodes,
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
	return SinkStatus{}, false
}
