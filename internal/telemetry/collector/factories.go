package collector

import (
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
)

// factorySet is the components a tenant's collector may use. It is built per collector: the
// exporter factories report to that collector's recorders, and the memory_limiter factory
// keeps its limiters per factory.
type factorySet struct {
	receivers  map[component.Type]receiver.Factory
	processors map[component.Type]processor.Factory
	exporters  map[component.Type]exporter.Factory
}

// exporterFactories maps each accepted exporter type to its upstream factory. otlp and
// otlphttp are the names users write; otlp_grpc and otlp_http are the upstream's new names for
// the same exporters.
func exporterFactories() map[string]exporter.Factory {
	return map[string]exporter.Factory{
		"otlp":                  otlpexporter.NewFactory(),
		"otlp_grpc":             otlpexporter.NewFactory(),
		"otlphttp":              otlphttpexporter.NewFactory(),
		"otlp_http":             otlphttpexporter.NewFactory(),
		"prometheusremotewrite": prometheusremotewriteexporter.NewFactory(),
		"file":                  fileexporter.NewFactory(),
		"debug":                 debugexporter.NewFactory(),
	}
}

// newFactorySet builds the factories; with a nil Collector (validation) the exporters are not
// wrapped and the receiver is never created.
func newFactorySet(c *Collector) *factorySet {
	fs := &factorySet{
		receivers:  map[component.Type]receiver.Factory{},
		processors: map[component.Type]processor.Factory{},
		exporters:  map[component.Type]exporter.Factory{},
	}
	r := newInprocFactory(c)
	fs.receivers[r.Type()] = r
	for _, p := range []processor.Factory{batchprocessor.NewFactory(), memorylimiterprocessor.NewFactory()} {
		fs.processors[p.Type()] = p
	}
	for name, f := range exporterFactories() {
		typ := component.MustNewType(name)
		if c != nil {
			f = wrapExporter(typ, f, c)
		}
		fs.exporters[typ] = f
	}
	return fs
}

// exporterSupports says whether exporters of type t take the signal.
func (fs *factorySet) exporterSupports(t component.Type, s Signal) bool {
	f, ok := fs.exporters[t]
	if !ok {
		return false
	}
	var sl component.StabilityLevel
	switch s {
	case Traces:
		sl = f.TracesStability()
	case Logs:
		sl = f.LogsStability()
	case Metrics:
		sl = f.MetricsStability()
	}
	return sl != component.StabilityLevelUndefined
}
