// Package pipeline runs each Proxy's OpenTelemetry Collector pipeline for the data plane
// (proxy.Pipelines): it starts and keeps the collectors the served snapshots name, exports
// spans to them, turns access-log lines into OTLP log records and pushes each project's own
// series as OTLP metrics. It lives outside internal/proxy because the collector modules bring
// Kubernetes libraries the data plane must not import.
package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy"
	"apoxy.dev/apoxy/internal/telemetry/collector"
)

// Options configure the Proxies' collector pipelines (ir.Collector).
type Options struct {
	// FileDir returns the directory a project's file exporters write under ("" refuses them).
	FileDir func(project string) string
	// AllowPrivateEndpoints lets exporters reach loopback and private addresses (a
	// single-tenant install; tests). Tenants of a shared server export to public addresses.
	AllowPrivateEndpoints bool
	// MetricsInterval is how often a pipeline with a metrics signal gets the project's series
	// (default 10 s).
	MetricsInterval time.Duration
	// Gatherer holds the series metrics are exported from (each project's by its label).
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
}

// pipeline is one Proxy's running collector: where its Gateways' spans, access-log lines and
// metrics go.
type pipeline struct {
	name, project string
	sum           string
	c             *collector.Collector
	startErr      error
	since         time.Time
	// logs gathers the lines of a pipeline with a logs signal (nil: none).
	logs *logBatch
	// stop ends the pipeline's goroutines (the metrics pusher, the log flusher); wg waits
	// for them.
	stop chan struct{}
	wg   sync.WaitGroup
}

// Pipelines keeps the collectors of the served snapshots, started before the graphs that
// use them and kept while their configuration is unchanged. It implements proxy.Pipelines.
type Pipelines struct {
	opts Options
	log  *slog.Logger
	mu   sync.RWMutex
	live map[string]*pipeline // by ir.Collector Name
	next map[string]*pipeline
}

// New returns an empty set of pipelines.
func New(opts Options) *Pipelines {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ps := &Pipelines{opts: opts, log: opts.Logger}
	dropped.add(ps)
	return ps
}

var _ proxy.Pipelines = (*Pipelines)(nil)

// Prepare starts (or keeps) the collector of every telemetry entry's pipeline.
func (ps *Pipelines) Prepare(tels map[string]*ir.Telemetry) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.next = map[string]*pipeline{}
	for _, t := range tels {
		col := t.Collector
		if col == nil || ps.next[col.Name] != nil {
			continue
		}
		b, _ := json.Marshal(struct {
			C      *ir.Collector
			Y      string
			K      []ir.Sink
			Secret []string
		}{col, string(col.Config), col.Sinks, sinkSecrets(col.Sinks)})
		h := sha256.Sum256(b)
		sum := hex.EncodeToString(h[:])
		if p := ps.live[col.Name]; p != nil && p.sum == sum {
			ps.next[col.Name] = p
			continue
		}
		ps.next[col.Name] = ps.start(col, t.Project, sum)
	}
}

// sinkSecrets lists the secret values of sinks (SecretString hides them from JSON), so that a
// rotated key restarts the pipeline.
func sinkSecrets(sinks []ir.Sink) []string {
	var out []string
	for _, s := range sinks {
		out = append(out, string(s.APIKey))
		for _, v := range s.Headers {
			out = append(out, string(v))
		}
	}
	return out
}

func (ps *Pipelines) start(col *ir.Collector, project, sum string) *pipeline {
	p := &pipeline{name: col.Name, project: project, sum: sum, since: time.Now()}
	cfg := collector.Config{YAML: []byte(col.Config), Logger: ps.log.With("collector", col.Name), AllowPrivateEndpoints: ps.opts.AllowPrivateEndpoints}
	if ps.opts.FileDir != nil {
		cfg.FileDir = ps.opts.FileDir(project)
	}
	for _, s := range col.Sinks {
		cfg.Sinks = append(cfg.Sinks, collectorSink(s))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.c, p.startErr = collector.Start(ctx, cfg)
	if p.startErr != nil {
		ps.log.Error("telemetry pipeline did not start; its telemetry is dropped", "collector", col.Name, "err", p.startErr)
		return p
	}
	p.stop = make(chan struct{})
	if p.c.Wants(collector.Metrics) {
		p.wg.Add(1)
		go ps.pushMetrics(p)
	}
	if p.c.Wants(collector.Logs) {
		p.logs = newLogBatch()
		p.wg.Add(1)
		go p.flushLogs()
	}
	return p
}

// Finish ends an Apply: collectors no configuration uses any more stop (flushing, bounded).
func (ps *Pipelines) Finish(swapped bool) {
	ps.mu.Lock()
	next, live := ps.next, ps.live
	ps.next = nil
	if swapped {
		ps.live = next
	}
	ps.mu.Unlock()
	old, keep := live, next
	if !swapped {
		old, keep = next, live
	}
	for name, p := range old {
		if keep[name] != p {
			go p.close()
		}
	}
}

func (p *pipeline) close() {
	if p.stop != nil {
		close(p.stop)
		p.wg.Wait()
	}
	if p.c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.c.Stop(ctx)
	}
}

// Close stops every collector (server shutdown).
func (ps *Pipelines) Close() {
	dropped.remove(ps)
	ps.mu.Lock()
	live := ps.live
	ps.live = nil
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range live {
		wg.Add(1)
		go func() { defer wg.Done(); p.close() }()
	}
	wg.Wait()
}

// get returns the running collector of a pipeline (nil: none).
func (ps *Pipelines) get(name string) *collector.Collector {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	if p := ps.live[name]; p != nil {
		return p.c
	}
	return nil
}

// SinkStatus reports a sink's export state in a pipeline.
func (ps *Pipelines) SinkStatus(name, sink string) (proxy.SinkStatus, bool) {
	ps.mu.Lock()
	p := ps.live[name]
	ps.mu.Unlock()
	if p == nil {
		return proxy.SinkStatus{}, false
	}
	if p.startErr != nil {
		return proxy.SinkStatus{Since: p.since, LastError: p.startErr.Error(), LastErrorTime: p.since}, true
	}
	id := sinkID(sink)
	for _, st := range p.c.Status() {
		if st.Sink == id {
			return proxy.SinkStatus{Since: p.since, LastSuccess: st.LastSuccess, LastError: st.LastError, LastErrorTime: st.LastErrorTime}, true
		}
	}
	return proxy.SinkStatus{}, false
}

// sinkID turns an IR sink name ("cmi/ns/name", "thirdparty/axiomLogs") into the collector's
// sink name (lower case letters, digits, '-', '.'; at most 63 characters).
func sinkID(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > 63 {
		h := sha256.Sum256([]byte(name))
		s = s[:50] + "-" + hex.EncodeToString(h[:6])
	}
	return s
}

// collectorSink maps an IR sink to the collector's.
func collectorSink(s ir.Sink) collector.Sink {
	out := collector.Sink{Name: sinkID(s.Name), Endpoint: s.Endpoint, Compression: s.Compression, APIKey: string(s.APIKey),
		InstanceID: s.InstanceID, Site: s.Site, Dataset: s.Dataset, Region: s.Region}
	switch s.Kind {
	case ir.SinkOTLPGRPC:
		out.Kind = collector.OTLPGRPC
	case ir.SinkDatadog:
		out.Kind = collector.Datadog
	case ir.SinkGrafana:
		out.Kind = collector.GrafanaCloud
	case ir.SinkAxiom:
		out.Kind = collector.Axiom
	default:
		out.Kind = collector.OTLPHTTP
	}
	for k, v := range s.Headers {
		if out.Headers == nil {
			out.Headers = map[string]string{}
		}
		out.Headers[k] = string(v)
	}
	for _, sig := range s.Signals {
		out.Signals = append(out.Signals, collector.Signal(sig))
	}
	return out
}

// pushMetrics hands the project's series to the pipeline every interval: only series
// labelled with the project, so a tenant's collector never sees another tenant's figures.
func (ps *Pipelines) pushMetrics(p *pipeline) {
	defer p.wg.Done()
	every := ps.opts.MetricsInterval
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		if ps.opts.Gatherer == nil {
			continue
		}
		fams, err := ps.opts.Gatherer.Gather()
		if err != nil && len(fams) == 0 {
			continue
		}
		md := collector.MetricsFromPrometheus(fams, func(labels map[string]string) bool { return labels["project"] == p.project },
			map[string]string{"service.name": "apoxy-gateway", "apoxy.project": p.project}, start, time.Now())
		if md.DataPointCount() > 0 {
			p.c.ConsumeMetrics(context.Background(), md)
		}
	}
}

// spanClient sends a pipeline's spans to its collector (looked up per batch, so a pipeline
// restarted with new settings gets the spans from then on).
type spanClient struct {
	ps   *Pipelines
	name string
}

func (c spanClient) Start(context.Context) error { return nil }
func (c spanClient) Stop(context.Context) error  { return nil }

// UploadTraces converts the SDK's OTLP protobuf to collector data and queues it (never
// blocking: a full or missing pipeline drops the batch).
func (c spanClient) UploadTraces(ctx context.Context, spans []*tracepb.ResourceSpans) error {
	col := c.ps.get(c.name)
	if col == nil || !col.Wants(collector.Traces) {
		return nil
	}
	b, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: spans})
	if err != nil {
		return err
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(b); err != nil {
		return err
	}
	col.ConsumeTraces(ctx, req.Traces())
	return nil
}

// SpanExporter is the tracers' exporter for a pipeline ("" none: spans are not exported).
func (ps *Pipelines) SpanExporter(name string) sdktrace.SpanExporter {
	if name == "" {
		return nil
	}
	return otlptrace.NewUnstarted(spanClient{ps: ps, name: name})
}

// Log adds an access or content line to a pipeline's next batch of OTLP log records.
func (ps *Pipelines) Log(name string, l proxy.LogLine) {
	ps.mu.RLock()
	p := ps.live[name]
	ps.mu.RUnlock()
	if p != nil && p.logs != nil {
		p.logs.add(l)
	}
}
