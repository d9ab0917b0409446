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
	// Auth counts authentication and authorization decisions by method (basic, jwt, oidc,
	// authorization, ext_authz), policy, provider (the JWT provider, or the authorization rule
	// that decided) and decision (ok, denied, unavailable, ...).
	Auth *prometheus.CounterVec
	// ExtAuthz observes external authorization calls by policy and outcome.
	ExtAuthz *prometheus.HistogramVec
	// Functions observes edge-function invocations by project, function, revision and
	// result (pass, answer, error, timeout, unavailable).
	Functions *prometheus.HistogramVec
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
		Auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apoxy_auth_decisions_total", Help: "Authentication and authorization decisions by method (basic, jwt, oidc, authorization, ext_authz), policy, provider or rule, and decision.",
		}, []string{"method", "policy", "provider", "decision"}),
		ExtAuthz: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "apoxy_ext_authz_duration_seconds", Help: "External authorization calls by policy and outcome (allowed, denied, error, timeout).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"policy", "outcome"}),
		Functions: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "apoxy_function_invocation_duration_seconds", Help: "Edge-function invocations by project, function, revision and result (pass, answer, error, timeout, unavailable).",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30},
		}, []string{"project", "function", "revision", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.RateLimit, m.Evicted, m.Faults, m.Auth, m.ExtAuthz, m.Functions)
	}
	return m
}

// authCounter returns the decision counter of (method, policy, provider, decision), resolved
// once when a stage compiles so that requests do not look labels up (nil: not counted).
func (e *Env) authCounter(method, policy, provider, decision string) prometheus.Counter {
	if e == nil || e.Metrics == nil || e.Metrics.Auth == nil {
		return nil
	}
	return e.Metrics.Auth.WithLabelValues(method, policy, provider, decision)
}

// inc counts one on c unless it is nil.
func inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}
