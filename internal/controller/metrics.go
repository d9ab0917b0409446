package controller

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Configuration metrics: how each project's configuration reaches the data plane. Served by
// the admin listener beside the data plane's (MetricsGatherer).
var (
	metricsRegistry = prometheus.NewRegistry()

	appliesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apoxy_config_applies_total", Help: "Configurations handed to the data plane, by project and result (ok, rejected).",
	}, []string{"project", "result"})
	applyDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "apoxy_config_apply_duration_seconds", Help: "Time to translate a project's objects and apply the result to the data plane, by project.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"project"})
	lastApplyError = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "apoxy_config_last_apply_error", Help: "1 when the data plane rejected a project's last configuration (the one before keeps serving), else 0.",
	}, []string{"project"})
	lastApplied = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "apoxy_config_last_applied_timestamp_seconds", Help: "When the data plane last accepted a project's configuration (Unix time).",
	}, []string{"project"})
	configInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "apoxy_config_info", Help: "The configuration version each project serves (value 1).",
	}, []string{"project", "version"})

	// versions remembers each project's version label, to drop its series when it changes.
	versionsMu sync.Mutex
	versions   = map[string]string{}
)

func init() {
	metricsRegistry.MustRegister(appliesTotal, applyDuration, lastApplyError, lastApplied, configInfo)
}

// MetricsGatherer exposes the configuration metrics for the admin listener.
func MetricsGatherer() prometheus.Gatherer { return metricsRegistry }

// observeApply records one apply of a project's configuration.
func observeApply(project, version string, took time.Duration, err error) {
	applyDuration.WithLabelValues(project).Observe(took.Seconds())
	if err != nil {
		appliesTotal.WithLabelValues(project, "rejected").Inc()
		lastApplyError.WithLabelValues(project).Set(1)
		return
	}
	appliesTotal.WithLabelValues(project, "ok").Inc()
	lastApplyError.WithLabelValues(project).Set(0)
	lastApplied.WithLabelValues(project).SetToCurrentTime()
	versionsMu.Lock()
	defer versionsMu.Unlock()
	if old, ok := versions[project]; ok && old != version {
		configInfo.DeleteLabelValues(project, old)
	}
	versions[project] = version
	configInfo.WithLabelValues(project, version).Set(1)
}

// forgetProjectMetrics drops a stopped project's series.
func forgetProjectMetrics(project string) {
	for _, v := range []*prometheus.MetricVec{appliesTotal.MetricVec, applyDuration.MetricVec, lastApplyError.MetricVec, lastApplied.MetricVec, configInfo.MetricVec} {
		v.DeletePartialMatch(prometheus.Labels{"project": project})
	}
	versionsMu.Lock()
	delete(versions, project)
	versionsMu.Unlock()
}
