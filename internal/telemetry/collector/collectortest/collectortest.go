// Package collectortest runs an OTLP backend for tests: a real OpenTelemetry Collector, built
// from the upstream modules, whose standard otlp receiver listens on loopback (gRPC and HTTP,
// free ports) and whose pipelines end in memory. Tests point an exporter (a Sink of
// internal/telemetry/collector, the gateway's OTLP export, an SDK) at GRPCEndpoint or
// HTTPEndpoint and read what arrived, headers included.
//
// It is test support only: the apoxy binary never links it (internal/deptest checks).
package collectortest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service"
	"go.opentelemetry.io/collector/service/pipelines"
	"go.opentelemetry.io/collector/service/telemetry"
)

// Receiver is a running OTLP backend. Its methods are safe for concurrent use.
type Receiver struct {
	// GRPCEndpoint is host:port of the OTLP/gRPC listener (plaintext).
	GRPCEndpoint string
	// HTTPEndpoint is the base URL of the OTLP/HTTP listener, e.g. http://127.0.0.1:4318;
	// requests go to /v1/traces, /v1/logs and /v1/metrics.
	HTTPEndpoint string

	traces  *consumertest.TracesSink
	logs    *consumertest.LogsSink
	metrics *consumertest.MetricsSink
}

// StartReceiver starts a Receiver and stops it when the test ends.
func StartReceiver(t testing.TB) *Receiver {
	t.Helper()
	var lastErr error
	// The ports are picked free, then bound by the receiver: another process may take one in
	// between, so try a few times.
	for range 5 {
		r, stop, err := start()
		if err == nil {
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := stop(ctx); err != nil {
					t.Errorf("collectortest: stop: %v", err)
				}
			})
			return r
		}
		lastErr = err
	}
	t.Fatalf("collectortest: start: %v", lastErr)
	return nil
}

var (
	otlpID = component.MustNewID("otlp")
	sinkID = component.MustNewID("memory")
)

func start() (*Receiver, func(context.Context) error, error) {
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, nil, err
	}
	r := &Receiver{
		GRPCEndpoint: grpcAddr,
		HTTPEndpoint: "http://" + httpAddr,
		traces:       new(consumertest.TracesSink),
		logs:         new(consumertest.LogsSink),
		metrics:      new(consumertest.MetricsSink),
	}

	rf := otlpreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig()
	err = confmap.NewFromStringMap(map[string]any{
		"protocols": map[string]any{
			"grpc": map[string]any{"endpoint": grpcAddr, "include_metadata": true},
			"http": map[string]any{"endpoint": httpAddr, "include_metadata": true},
		},
	}).Unmarshal(rcfg)
	if err != nil {
		return nil, nil, err
	}

	ef := memoryExporterFactory(r)
	tf := telemetry.NewFactory(func() component.Config { return &struct{}{} })
	pipes := pipelines.Config{}
	for _, s := range []pipeline.Signal{pipeline.SignalTraces, pipeline.SignalLogs, pipeline.SignalMetrics} {
		pipes[pipeline.NewID(s)] = &pipelines.PipelineConfig{
			Receivers: []component.ID{otlpID},
			Exporters: []component.ID{sinkID},
		}
	}
	ctx := context.Background()
	svc, err := service.New(ctx, service.Settings{
		BuildInfo:          component.BuildInfo{Command: "collectortest", Version: "test"},
		ReceiversConfigs:   map[component.ID]component.Config{otlpID: rcfg},
		ReceiversFactories: map[component.Type]receiver.Factory{rf.Type(): rf},
		ExportersConfigs:   map[component.ID]component.Config{sinkID: ef.CreateDefaultConfig()},
		ExportersFactories: map[component.Type]exporter.Factory{ef.Type(): ef},
		AsyncErrorChannel:  make(chan error, 8),
		TelemetryFactory:   tf,
	}, service.Config{Telemetry: tf.CreateDefaultConfig(), Pipelines: pipes})
	if err != nil {
		return nil, nil, err
	}
	if err := svc.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("%w (shutdown: %v)", err, svc.Shutdown(ctx))
	}
	return r, svc.Shutdown, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// memoryExporterFactory makes the exporter ending every pipeline: it keeps what arrives.
func memoryExporterFactory(r *Receiver) exporter.Factory {
	return exporter.NewFactory(sinkID.Type(), func() component.Config { return &struct{}{} },
		exporter.WithTraces(func(context.Context, exporter.Settings, component.Config) (exporter.Traces, error) {
			return struct {
				component.StartFunc
				component.ShutdownFunc
				consumer.Traces
			}{Traces: r.traces}, nil
		}, component.StabilityLevelStable),
		exporter.WithLogs(func(context.Context, exporter.Settings, component.Config) (exporter.Logs, error) {
			return struct {
				component.StartFunc
				component.ShutdownFunc
				consumer.Logs
			}{Logs: r.logs}, nil
		}, component.StabilityLevelStable),
		exporter.WithMetrics(func(context.Context, exporter.Settings, component.Config) (exporter.Metrics, error) {
			return struct {
				component.StartFunc
				component.ShutdownFunc
				consumer.Metrics
			}{Metrics: r.metrics}, nil
		}, component.StabilityLevelStable),
	)
}

// Traces returns the batches of spans received so far.
func (r *Receiver) Traces() []ptrace.Traces { return r.traces.AllTraces() }

// Logs returns the batches of log records received so far.
func (r *Receiver) Logs() []plog.Logs { return r.logs.AllLogs() }

// Metrics returns the batches of metrics received so far.
func (r *Receiver) Metrics() []pmetric.Metrics { return r.metrics.AllMetrics() }

// SpanCount is how many spans arrived.
func (r *Receiver) SpanCount() int { return r.traces.SpanCount() }

// LogRecordCount is how many log records arrived.
func (r *Receiver) LogRecordCount() int { return r.logs.LogRecordCount() }

// DataPointCount is how many metric data points arrived.
func (r *Receiver) DataPointCount() int { return r.metrics.DataPointCount() }

// WaitForSpans waits until at least n spans arrived, failing the test after timeout.
func (r *Receiver) WaitForSpans(t testing.TB, n int, timeout time.Duration) []ptrace.Traces {
	t.Helper()
	waitFor(t, "spans", n, timeout, r.SpanCount)
	return r.Traces()
}

// WaitForLogRecords waits until at least n log records arrived, failing the test after
// timeout.
func (r *Receiver) WaitForLogRecords(t testing.TB, n int, timeout time.Duration) []plog.Logs {
	t.Helper()
	waitFor(t, "log records", n, timeout, r.LogRecordCount)
	return r.Logs()
}

// WaitForDataPoints waits until at least n metric data points arrived, failing the test after
// timeout.
func (r *Receiver) WaitForDataPoints(t testing.TB, n int, timeout time.Duration) []pmetric.Metrics {
	t.Helper()
	waitFor(t, "metric data points", n, timeout, r.DataPointCount)
	return r.Metrics()
}

func waitFor(t testing.TB, what string, n int, timeout time.Duration, count func() int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := count()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("collectortest: %d %s arrived in %v, want %d", got, what, timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// HeaderValues returns the values of a request header (gRPC metadata or HTTP header; the
// name is case-insensitive) on every request received so far, of any signal, in arrival order
// within a signal.
func (r *Receiver) HeaderValues(name string) []string {
	var out []string
	var ctxs []context.Context
	ctxs = append(ctxs, r.traces.Contexts()...)
	ctxs = append(ctxs, r.logs.Contexts()...)
	ctxs = append(ctxs, r.metrics.Contexts()...)
	for _, ctx := range ctxs {
		out = append(out, client.FromContext(ctx).Metadata.Get(strings.ToLower(name))...)
	}
	return out
}

// Reset forgets everything received so far.
func (r *Receiver) Reset() {
	r.traces.Reset()
	r.logs.Reset()
	r.metrics.Reset()
}
