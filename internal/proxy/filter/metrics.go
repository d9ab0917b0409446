package filter

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the stages' Prometheus instruments.
type Metrics struct {
	// RateLimit counts rate-limit decisions by policy, rule and decision (ok, over_limit,
	// shadow_over_limit, store_error).
	RateLimit *prometheus.CounterVec
	// Faults counts injected faults by route and kind (delay, abort).
	Faults *prometheus.CounterVec
	// Evicted counts keys a Local rule stopped tracking at its maxTrackedKeys bound (least
	// recently used first), by policy and rule: a rule whose keys churn needs a larger bound.
	Evicted *prometheus.CounterVec
}

// NewMetrics makes the instruments and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		RateLimit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apoxy_ratelimit_decisions_total", Help: "Rate-limit decisions by policy, rule and decision (ok, over_limit, shadow_over_limit, store_error).",
		}, []string{"policy", "rule", "decision"}),
		Evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apoxy_ratelimit_evicted_keys_total", Help: "Keys a Local rate-limit rule stopped tracking at its maxTrackedKeys bound (least recently used first), by policy and rule.",
		}, []string{"policy", "rule"}),
		Faults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apoxy_fault_injections_total", Help: "Faults injected by a TrafficPolicy, by route and kind (delay, abort).",
		}, []string{"route", "kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.RateLimit, m.Evicted, m.Faults)
	}
	return m
}
