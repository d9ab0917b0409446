package acme

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// processMetrics are shared by every Manager of the process (tests run several).
var (
	processMetrics = sync.OnceValue(newMetrics)
	registerOnce   sync.Once
)

// RegisterMetrics adds the ACME metrics to reg, once per process.
func RegisterMetrics(reg prometheus.Registerer) {
	registerOnce.Do(func() { reg.MustRegister(processMetrics()) })
}

// Metrics are the ACME metrics: orders by result and CA, their duration, and each
// certificate's expiry and next renewal.
type Metrics struct {
	orders     *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	expiry     *prometheus.GaugeVec
	nextRenew  *prometheus.GaugeVec
	collectors []prometheus.Collector
}

func newMetrics() *Metrics {
	m := &Metrics{
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apoxy_acme_orders_total", Help: "ACME orders, by CA and result (issued or failed).",
		}, []string{"ca", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "apoxy_acme_order_duration_seconds", Help: "Time from a new ACME order to its certificate (or failure), challenges included.",
			Buckets: []float64{0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300},
		}, []string{"ca", "result"}),
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apoxy_acme_certificate_expiry_timestamp_seconds", Help: "When each DomainRecord's certificate expires (Unix time).",
		}, []string{"project", "record"}),
		nextRenew: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apoxy_acme_certificate_renewal_timestamp_seconds", Help: "When each DomainRecord's certificate is next renewed (Unix time).",
		}, []string{"project", "record"}),
	}
	m.collectors = []prometheus.Collector{m.orders, m.duration, m.expiry, m.nextRenew}
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors {
		c.Collect(ch)
	}
}

func (m *Metrics) forget(project string) {
	m.expiry.DeletePartialMatch(prometheus.Labels{"project": project})
	m.nextRenew.DeletePartialMatch(prometheus.Labels{"project": project})
}

func (m *Metrics) forgetRecord(project, record string) {
	m.expiry.DeleteLabelValues(project, record)
	m.nextRenew.DeleteLabelValues(project, record)
}
