package pipeline

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"apoxy.dev/apoxy/internal/proxy"
	"apoxy.dev/apoxy/internal/telemetry/collector"
)

// dropped reports, when Prometheus scrapes, what each running pipeline's collector dropped
// because its queue was full or it was stopping: telemetry is never allowed to slow the
// request path, so a loss is counted instead. Every Pipelines joins it in New.
var dropped = &droppedCollector{sets: map[*Pipelines]struct{}{}}

var droppedDesc = prometheus.NewDesc("apoxy_telemetry_dropped_total",
	"Spans, log records and metric data points a Proxy's collector pipeline dropped (its queue was full, or it was stopping), by project, Proxy and signal.",
	[]string{"project", "proxy", "signal"}, nil)

type droppedCollector struct {
	once sync.Once
	mu   sync.Mutex
	sets map[*Pipelines]struct{}
}

func (d *droppedCollector) add(ps *Pipelines) {
	d.once.Do(func() { proxy.MetricsRegisterer().MustRegister(d) })
	d.mu.Lock()
	d.sets[ps] = struct{}{}
	d.mu.Unlock()
}

func (d *droppedCollector) remove(ps *Pipelines) {
	d.mu.Lock()
	delete(d.sets, ps)
	d.mu.Unlock()
}

func (d *droppedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- droppedDesc }

func (d *droppedCollector) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	var live []*pipeline
	for ps := range d.sets {
		ps.mu.RLock()
		for _, p := range ps.live {
			if p.c != nil {
				live = append(live, p)
			}
		}
		ps.mu.RUnlock()
	}
	d.mu.Unlock()
	for _, p := range live {
		name := strings.TrimPrefix(p.name, p.project+"/")
		for _, s := range [...]struct {
			sig  collector.Signal
			name string
		}{{collector.Traces, "traces"}, {collector.Logs, "logs"}, {collector.Metrics, "metrics"}} {
			if p.c.Wants(s.sig) {
				ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(p.c.Dropped(s.sig)), p.project, name, s.name)
			}
		}
	}
}
