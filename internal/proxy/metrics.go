package proxy

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/filter"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the data plane's Prometheus instruments, registered once per process in the
// data plane's own registry (MetricsGatherer), which the admin listener's /metrics serves.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// bytes counts HTTP body bytes by route and direction (received from clients, sent).
	bytes   *prometheus.CounterVec
	healthy *prometheus.GaugeVec
	// TCP and TLS connections and UDP sessions, counted when they end.
	l4Conns    *prometheus.CounterVec
	l4Bytes    *prometheus.CounterVec
	l4Duration *prometheus.HistogramVec
	// ejections and ejected count outlier detection by backend; overloaded the requests a
	// circuit breaker refused; retries the retried attempts and budgetExhausted the retries
	// a budget refused, by route.
	ejections       *prometheus.CounterVec
	ejected         *prometheus.GaugeVec
	overloaded      *prometheus.CounterVec
	retries         *prometheus.CounterVec
	budgetExhausted *prometheus.CounterVec
	// filters are the filter stages' instruments (rate-limit decisions, injected faults).
	filters *filter.Metrics
	// accessLogDropped counts access-log lines the server's log sink could not take in time.
	accessLogDropped prometheus.Counter
}

var (
	metricsOnce sync.Once
	procMetrics *metrics
	registry    = prometheus.NewRegistry()
)

// MetricsGatherer exposes the data plane's metrics (request counts and latency by route,
// healthy endpoints by backend) for the admin listener.
func MetricsGatherer() prometheus.Gatherer { return registry }

// MetricsRegisterer is the same registry, for parts of the data plane that live outside
// this package (the collector pipelines) to add their series to /metrics.
func MetricsRegisterer() prometheus.Registerer { return registry }

func defaultMetrics() *metrics {
	metricsOnce.Do(func() {
		procMetrics = &metrics{
			requests: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "apoxy_http_requests_total", Help: "HTTP requests served by the gateway, by project, Gateway, route rule, backend (\"\" when none was picked) and status class.",
			}, []string{"project", "gateway", "route", "backend", "code_class"}),
			duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name: "apoxy_http_request_duration_seconds", Help: "Time from request to the end of the response, by project, Gateway and route rule.",
				Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 100},
				// A native histogram too (scraped with protobuf): buckets 10% wide, so
				// quantiles are within a few percent wherever the latencies fall.
				NativeHistogramBucketFactor:     1.1,
				NativeHistogramMaxBucketNumber:  160,
				NativeHistogramMinResetDuration: time.Hour,
			}, []string{"project", "gateway", "route"}),
			bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "apoxy_http_body_bytes_total", Help: "HTTP body bytes by project, Gateway, route rule and direction (received from clients, sent to them).",
			}, []string{"project", "gateway", "route", "direction"}),
			healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "apoxy_upstream_healthy_endpoints", Help: "Healthy endpoint addresses per backend.",
			}, []string{"backend"}),
		}
		procMetrics.l4Conns = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apoxy_l4_connections_total", Help: "TCP and TLS connections and UDP sessions served by TCP, TLS and UDP listeners, by route, protocol and result (ok or error), counted when they end.",
		}, []string{"route", "protocol", "result"})
		procMetrics.l4Bytes = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apoxy_l4_bytes_total", Help: "Bytes relayed by TCP, TLS and UDP routes, by route and direction (received from clients, sent to clients).",
		}, []string{"route", "direction"})
		procMetrics.l4Duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "apoxy_l4_connection_duration_seconds", Help: "How long TCP and TLS connections and UDP sessions lasted, by route.",
			Buckets: []float64{.001, .01, .1, 1, 10, 60, 300, 1800, 3600},
		}, []string{"route"})
		procMetrics.filters = filter.NewMetrics(registry)
		procMetrics.accessLogDropped = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apoxy_access_log_dropped_lines_total", Help: "Access-log lines dropped because the log sink (stdout or file) did not keep up; requests never wait for it.",
		})
		registry.MustRegister(procMetrics.accessLogDropped, scraped)
		procMetrics.ejections = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apoxy_upstream_ejections_total", Help: "Endpoint addresses ejected by outlier detection, by backend.",
		}, []string{"backend"})
		procMetrics.ejected = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apoxy_upstream_ejected_endpoints", Help: "Endpoint addresses currently ejected by outlier detection, by backend.",
		}, []string{"backend"})
		procMetrics.overloaded = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apoxy_upstream_overloaded_total", Help: "Requests a backend's circuit breaker refused (503, x-apoxy-overloaded), by backend.",
		}, []string{"backend"})
		procMetrics.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apoxy_upstream_retries_total", Help: "Retried upstream attempts, by route.",
		}, []string{"route"})
		procMetrics.budgetExhausted = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apoxy_upstream_retry_budget_exhausted_total", Help: "Retries a retry budget refused, by route.",
		}, []string{"route"})
		registry.MustRegister(procMetrics.ejections, procMetrics.ejected, procMetrics.overloaded, procMetrics.retries, procMetrics.budgetExhausted)
		registry.MustRegister(procMetrics.bytes)
		registry.MustRegister(procMetrics.requests, procMetrics.duration, procMetrics.healthy, procMetrics.l4Conns, procMetrics.l4Bytes, procMetrics.l4Duration)
	})
	return procMetrics
}

// routeMetrics caches one route's instruments: looking a labelled child up hashes the label
// values, which would cost every request. Counters are per backendRef of the route (index
// len(backends): none picked) and status class.
type routeMetrics struct {
	project, gateway, route string
	backends                []string // the route's backendRefs' names (label values)
	once                    sync.Once
	codes                   [][len(codeClasses)]prometheus.Counter
	dur                     prometheus.Observer
	rx, tx                  prometheus.Counter
}

// newRouteMetrics labels a route's metrics: its project and Gateway from its telemetry
// (unknown for routes without), and its rule's name without the project prefix and the match
// suffix ("httproute/ns/name/rule/0"), so a rule with several matches is one series.
func newRouteMetrics(r *ir.Route, tel *telemetryState) *routeMetrics {
	rm := &routeMetrics{route: ruleName(r.Name, tel)}
	if tel != nil {
		rm.project, rm.gateway = tel.project, tel.gateway
	}
	for _, b := range r.Backends {
		rm.backends = append(rm.backends, unscoped(b.Backend, rm.project))
	}
	return rm
}

// ruleName is a route's metric label.
func ruleName(name string, tel *telemetryState) string {
	if tel != nil {
		name = unscoped(name, tel.project)
	}
	if i := strings.LastIndex(name, "/match/"); i > 0 {
		name = name[:i]
	}
	return name
}

// unscoped drops a project prefix from a name.
func unscoped(name, project string) string {
	if project != "" {
		if rest, ok := strings.CutPrefix(name, project+"/"); ok {
			return rest
		}
	}
	return name
}

// observe counts an exchange: backend is the index of the backendRef that served it
// (len(backends) or -1: none).
func (rm *routeMetrics) observe(m *metrics, backend, code int, d time.Duration, rx, tx int64) {
	rm.once.Do(func() {
		rm.codes = make([][len(codeClasses)]prometheus.Counter, len(rm.backends)+1)
		for b := range rm.codes {
			name := ""
			if b < len(rm.backends) {
				name = rm.backends[b]
			}
			for i, c := range codeClasses {
				rm.codes[b][i] = m.requests.WithLabelValues(rm.project, rm.gateway, rm.route, name, c)
			}
		}
		rm.dur = m.duration.WithLabelValues(rm.project, rm.gateway, rm.route)
		rm.rx = m.bytes.WithLabelValues(rm.project, rm.gateway, rm.route, "received")
		rm.tx = m.bytes.WithLabelValues(rm.project, rm.gateway, rm.route, "sent")
	})
	if backend < 0 || backend > len(rm.backends) {
		backend = len(rm.backends)
	}
	if code >= 100 && code < 600 {
		rm.codes[backend][code/100-1].Inc()
	} else {
		name := ""
		if backend < len(rm.backends) {
			name = rm.backends[backend]
		}
		m.requests.WithLabelValues(rm.project, rm.gateway, rm.route, name, codeClass(code)).Inc()
	}
	rm.dur.Observe(d.Seconds())
	if rx > 0 {
		rm.rx.Add(float64(rx))
	}
	if tx > 0 {
		rm.tx.Add(float64(tx))
	}
}

var codeClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

func codeClass(code int) string {
	if code >= 100 && code < 600 {
		return codeClasses[code/100-1]
	}
	return strconv.Itoa(code)
}
