package filter

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"apoxy.dev/apoxy/internal/ir"
)

// fault injects a TrafficPolicy's faults: for matching requests, a delay (sampled on its
// own) and then an abort (sampled on its own), answered with an HTTP status or a gRPC
// status. The delay counts toward the request timeout; aborted requests never reach the
// backend and are never retried.
type fault struct {
	f              *ir.FaultInjection
	match          *matcher
	delayed, abort prometheus.Counter
}

func newFault(r *ir.Route, env *Env) (Stage, error) {
	if r.Fault == nil {
		return nil, nil
	}
	m, err := compileMatch(r.Fault.Match)
	if err != nil {
		return nil, err
	}
	s := &fault{f: r.Fault, match: m}
	if env != nil && env.Metrics != nil {
		s.delayed = env.Metrics.Faults.WithLabelValues(r.Name, "delay")
		s.abort = env.Metrics.Faults.WithLabelValues(r.Name, "abort")
	}
	return s, nil
}

func sampled(percent float64) bool { return percent >= 100 || rand.Float64()*100 < percent }

// Contained: Serve works on the request's goroutine and keeps nothing of it.
func (*fault) Contained() {}

func (s *fault) Serve(x *Exchange) bool {
	f := s.f
	if !s.match.matches(x) {
		return false
	}
	if d := time.Duration(f.Delay); d > 0 && sampled(f.DelayPercent) {
		x.Flags |= FlagDelayInjected
		if s.delayed != nil {
			s.delayed.Inc()
		}
		// The delay counts toward the request timeout: one that outlasts it ends at the
		// deadline with the 504 the timeout gives, and the backend is never asked.
		timedOut := false
		if to := time.Duration(x.Route.Timeouts.Request); to > 0 && !x.Start.IsZero() {
			if left := time.Until(x.Start.Add(to)); left < d {
				d, timedOut = max(left, 0), true
			}
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-x.Req.Context().Done():
			t.Stop()
			x.W.WriteHeader(499) // the client went away during the delay
			return true
		}
		if timedOut {
			x.Flags |= FlagUpstreamTimeout
			x.Error("upstream request timeout", http.StatusGatewayTimeout)
			return true
		}
	}
	if (f.AbortStatus == 0 && f.AbortGRPC == 0) || !sampled(f.AbortPercent) {
		return false
	}
	x.Flags |= FlagFaultInjected
	if s.abort != nil {
		s.abort.Inc()
	}
	if f.AbortGRPC != 0 {
		h := x.W.Header()
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(f.AbortGRPC))
		h.Set("Grpc-Message", "fault%20injected")
		x.W.WriteHeader(http.StatusOK)
		return true
	}
	x.Error("fault injected", f.AbortStatus)
	return true
}
