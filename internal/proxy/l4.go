package proxy

import (
	"math/rand/v2"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// l4Route is a TCP listener's route, ready to serve.
type l4Route struct {
	route *ir.L4Route
	total int32
	idle  time.Duration
	tel   *telemetryState
}

func newL4Route(r *ir.L4Route, tels map[string]*telemetryState) *l4Route {
	out := &l4Route{route: r, idle: time.Duration(r.IdleTimeout), tel: tels[r.Telemetry]}
	if out.idle <= 0 {
		out.idle = time.Hour
	}
	for _, b := range r.Backends {
		out.total += b.Weight
	}
	return out
}

// pick chooses a backendRef by weight; nil when every weight is zero.
func (r *l4Route) pick() *ir.WeightedBackend {
	if r.total <= 0 {
		return nil
	}
	n := rand.Int32N(r.total)
	for i := range r.route.Backends {
		b := &r.route.Backends[i]
		if n < b.Weight {
			return b
		}
		n -= b.Weight
	}
	return nil
}

// l4Done writes a TCP or TLS connection's (or a UDP session's) access-log line and metrics
// when it ends, as every HTTP request gets: who, which route and backend, bytes each way,
// how long, and why it ended early if it did.
func (s *Server) l4Done(rec *accessRecord, start time.Time) {
	d := time.Since(start)
	rec.DurationMS = float64(d.Microseconds()) / 1000
	route := rec.Route
	if route == "" {
		route = "none"
	}
	result := "ok"
	if rec.Error != "" {
		result = "error"
	}
	m := s.metrics
	m.l4Conns.WithLabelValues(route, rec.Protocol, result).Inc()
	m.l4Bytes.WithLabelValues(route, "received").Add(float64(rec.BytesReceived))
	m.l4Bytes.WithLabelValues(route, "sent").Add(float64(rec.BytesSent))
	m.l4Duration.WithLabelValues(route).Observe(d.Seconds())
	// Logged after it is counted: whoever reads the line finds the metrics up to date.
	s.accessLog.log(rec, start, d)
}
