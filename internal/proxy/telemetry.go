package proxy

import "time"

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
