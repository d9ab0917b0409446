package collector

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ExporterStatus is how one exporter's exports went, for the control plane: a
// CloudMonitoringIntegration is Connected when LastSuccess is after LastErrorTime, and shows
// LastError otherwise. Times are zero until the first outcome.
type ExporterStatus struct {
	// Name is the exporter's ID in the configuration, e.g. "otlphttp/apoxy-datadog" or
	// "otlphttp/honeycomb".
	Name string
	// Sink is the Sink the exporter was generated for; "" for exporters of the YAML.
	Sink string
	// LastSuccess is when a batch last reached the backend.
	LastSuccess time.Time
	// LastError is the last export failure (a retry under way, a batch dropped after its
	// retries, or the exporter's queue being full), credentials removed.
	LastError string
	// LastErrorTime is when LastError happened.
	LastErrorTime time.Time
}

// recorder keeps one exporter's status. Exporters are created once per signal, all sharing
// the recorder of their ID.
//
// Where outcomes come from: an exporter's ConsumeX returns as soon as its sending queue took
// the batch, so its result says nothing about delivery. Below the queue, exporterhelper wraps
// every send (after its retries) in a span named "exporter/<id>/<signal>" that ends with an
// error status when the send failed; and each failed attempt is logged ("Exporting failed.
// Will retry ..." / "... Dropping data.") with the error. The recorder gives each exporter its
// own TracerProvider, which turns those spans into successes and failures, and a logger tee
// that turns those log entries into failures as they happen (a sink that is down shows up at
// the first failed attempt, not after the minutes of retries). Errors ConsumeX returns itself
// (queue full, or no queue configured) are recorded too.
type recorder struct {
	redact func(string) string
	// spanPrefix starts the names of the exporter's send spans: "exporter/<id>/" (its queue has
	// spans of its own, "exporter/enqueue", which say nothing of delivery).
	spanPrefix string

	mu sync.Mutex
	st ExporterStatus
}

func (r *recorder) success(t time.Time) {
	r.mu.Lock()
	if t.After(r.st.LastSuccess) {
		r.st.LastSuccess = t
	}
	r.mu.Unlock()
}

func (r *recorder) failure(t time.Time, msg string) {
	msg = r.redact(msg)
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	r.mu.Lock()
	if !t.Before(r.st.LastErrorTime) {
		r.st.LastErrorTime = t
		r.st.LastError = msg
	}
	r.mu.Unlock()
}

func (r *recorder) get() ExporterStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// instrument gives an exporter the TracerProvider and logger that report to r.
func (r *recorder) instrument(set exporter.Settings) exporter.Settings {
	set.TracerProvider = statusTracerProvider{rec: r}
	set.Logger = set.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewTee(c, statusCore{rec: r})
	}))
	return set
}

// statusTracerProvider hands out tracers whose export spans report to a recorder; every other
// span is a no-op.
type statusTracerProvider struct {
	noop.TracerProvider
	rec *recorder
}

// Tracer implements trace.TracerProvider.
func (p statusTracerProvider) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return statusTracer{rec: p.rec}
}

type statusTracer struct {
	noop.Tracer
	rec *recorder
}

// Start implements trace.Tracer.
func (t statusTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !strings.HasPrefix(name, t.rec.spanPrefix) {
		return t.Tracer.Start(ctx, name, opts...)
	}
	s := &statusSpan{rec: t.rec}
	return trace.ContextWithSpan(ctx, s), s
}

// statusSpan records, when it ends, whether the send it covered failed.
type statusSpan struct {
	noop.Span
	rec *recorder

	mu     sync.Mutex
	failed bool
	msg    string
}

// IsRecording is true so that the exporter sets the status.
func (s *statusSpan) IsRecording() bool { return true }

// SetStatus implements trace.Span.
func (s *statusSpan) SetStatus(code codes.Code, description string) {
	s.mu.Lock()
	if code == codes.Error {
		s.failed, s.msg = true, description
	}
	s.mu.Unlock()
}

// RecordError implements trace.Span.
func (s *statusSpan) RecordError(err error, _ ...trace.EventOption) {
	if err == nil {
		return
	}
	s.mu.Lock()
	s.failed, s.msg = true, err.Error()
	s.mu.Unlock()
}

// End implements trace.Span.
func (s *statusSpan) End(...trace.SpanEndOption) {
	s.mu.Lock()
	failed, msg := s.failed, s.msg
	s.mu.Unlock()
	now := time.Now()
	if failed {
		s.rec.failure(now, msg)
	} else {
		s.rec.success(now)
	}
}

// statusCore is a zap core that records the errors of an exporter's "Exporting failed" log
// entries.
type statusCore struct {
	rec *recorder
}

func (c statusCore) Enabled(l zapcore.Level) bool      { return l >= zapcore.InfoLevel }
func (c statusCore) With([]zapcore.Field) zapcore.Core { return c }
func (c statusCore) Sync() error                       { return nil }

func (c statusCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Level >= zapcore.InfoLevel && strings.HasPrefix(e.Message, "Exporting failed") {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c statusCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	for _, f := range fields {
		if f.Type == zapcore.ErrorType {
			if err, ok := f.Interface.(error); ok && err != nil {
				c.rec.failure(e.Time, err.Error())
				return nil
			}
		}
	}
	c.rec.failure(e.Time, e.Message)
	return nil
}

// The exporters the factories hand to the pipelines: the upstream exporter, with errors of
// ConsumeX recorded.
type (
	tracesExporter struct {
		exporter.Traces
		rec   *recorder
		guard *egressGuard
	}
	logsExporter struct {
		exporter.Logs
		rec   *recorder
		guard *egressGuard
	}
	metricsExporter struct {
		exporter.Metrics
		rec   *recorder
		guard *egressGuard
	}
)

// Start starts the exporter with the egress guard as its only extension.
func (e tracesExporter) Start(ctx context.Context, host component.Host) error {
	return e.Traces.Start(ctx, guardedHost{host: host, guard: e.guard})
}

func (e tracesExporter) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	err := e.Traces.ConsumeTraces(ctx, td)
	if err != nil {
		e.rec.failure(time.Now(), err.Error())
	}
	return err
}

// Start starts the exporter with the egress guard as its only extension.
func (e logsExporter) Start(ctx context.Context, host component.Host) error {
	return e.Logs.Start(ctx, guardedHost{host: host, guard: e.guard})
}

func (e logsExporter) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	err := e.Logs.ConsumeLogs(ctx, ld)
	if err != nil {
		e.rec.failure(time.Now(), err.Error())
	}
	return err
}

// Start starts the exporter with the egress guard as its only extension.
func (e metricsExporter) Start(ctx context.Context, host component.Host) error {
	return e.Metrics.Start(ctx, guardedHost{host: host, guard: e.guard})
}

func (e metricsExporter) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	err := e.Metrics.ConsumeMetrics(ctx, md)
	if err != nil {
		e.rec.failure(time.Now(), err.Error())
	}
	return err
}

// wrapExporter returns a factory of the given type making inner's exporters, each reporting
// to the recorder of its ID in c.
func wrapExporter(typ component.Type, inner exporter.Factory, c *Collector) exporter.Factory {
	var opts []exporter.FactoryOption
	if sl := inner.TracesStability(); sl != component.StabilityLevelUndefined {
		opts = append(opts, exporter.WithTraces(func(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
			rec := c.recorder(set.ID)
			e, err := inner.CreateTraces(ctx, rec.instrument(set), cfg)
			if err != nil {
				return nil, err
			}
			return tracesExporter{Traces: e, rec: rec, guard: c.guard}, nil
		}, sl))
	}
	if sl := inner.LogsStability(); sl != component.StabilityLevelUndefined {
		opts = append(opts, exporter.WithLogs(func(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
			rec := c.recorder(set.ID)
			e, err := inner.CreateLogs(ctx, rec.instrument(set), cfg)
			if err != nil {
				return nil, err
			}
			return logsExporter{Logs: e, rec: rec, guard: c.guard}, nil
		}, sl))
	}
	if sl := inner.MetricsStability(); sl != component.StabilityLevelUndefined {
		opts = append(opts, exporter.WithMetrics(func(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
			rec := c.recorder(set.ID)
			e, err := inner.CreateMetrics(ctx, rec.instrument(set), cfg)
			if err != nil {
				return nil, err
			}
			return metricsExporter{Metrics: e, rec: rec, guard: c.guard}, nil
		}, sl))
	}
	return exporter.NewFactory(typ, inner.CreateDefaultConfig, opts...)
}
