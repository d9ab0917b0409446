package collector_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel"
	"go.uber.org/goleak"

	"apoxy.dev/apoxy/internal/telemetry/collector"
	"apoxy.dev/apoxy/internal/telemetry/collector/collectortest"
)

// Fixtures: n spans, log records or gauge points of one resource.

func traces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "gateway")
	ss := rs.ScopeSpans().AppendEmpty()
	for i := range n {
		s := ss.Spans().AppendEmpty()
		s.SetName("GET /")
		s.SetTraceID(pcommon.TraceID{1, byte(i)})
		s.SetSpanID(pcommon.SpanID{2, byte(i)})
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	}
	return td
}

func logs(n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "gateway")
	sl := rl.ScopeLogs().AppendEmpty()
	for range n {
		r := sl.LogRecords().AppendEmpty()
		r.Body().SetStr("GET / 200")
		r.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	}
	return ld
}

func metrics(n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "gateway")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("requests")
	g := m.SetEmptyGauge()
	for i := range n {
		dp := g.DataPoints().AppendEmpty()
		dp.SetIntValue(int64(i))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	}
	return md
}

// testLogger collects the collector's log lines.
type testLogger struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLogger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *testLogger) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func start(t *testing.T, cfg collector.Config) *collector.Collector {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := collector.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

func pushAll(t *testing.T, c *collector.Collector) {
	t.Helper()
	ctx := context.Background()
	if err := c.ConsumeTraces(ctx, traces(3)); err != nil {
		t.Fatalf("ConsumeTraces: %v", err)
	}
	if err := c.ConsumeLogs(ctx, logs(4)); err != nil {
		t.Fatalf("ConsumeLogs: %v", err)
	}
	if err := c.ConsumeMetrics(ctx, metrics(5)); err != nil {
		t.Fatalf("ConsumeMetrics: %v", err)
	}
}

func waitAll(t *testing.T, r *collectortest.Receiver) {
	t.Helper()
	r.WaitForSpans(t, 3, 10*time.Second)
	r.WaitForLogRecords(t, 4, 10*time.Second)
	r.WaitForDataPoints(t, 5, 10*time.Second)
}

// waitStatus waits until the exporter's status satisfies ok.
func waitStatus(t *testing.T, c *collector.Collector, name string, ok func(collector.ExporterStatus) bool) collector.ExporterStatus {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, s := range c.Status() {
			if s.Name == name && ok(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of %s never matched: %+v", name, c.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGeneratedPipelineOTLPHTTP(t *testing.T) {
	r := collectortest.StartReceiver(t)
	var lg testLogger
	c := start(t, collector.Config{AllowPrivateEndpoints: true,
		Logger: lg.logger(),
		Sinks: []collector.Sink{{
			Name:     "backend",
			Kind:     collector.OTLPHTTP,
			Endpoint: r.HTTPEndpoint,
			Headers:  map[string]string{"X-Tenant": "team-a", "Authorization": "Bearer s3cr3t-token"},
		}},
	})
	for _, s := range collector.AllSignals {
		if !c.Wants(s) {
			t.Errorf("Wants(%s) = false", s)
		}
	}
	pushAll(t, c)
	waitAll(t, r)
	if got := r.HeaderValues("x-tenant"); len(got) < 3 || got[0] != "team-a" {
		t.Errorf("x-tenant header: got %q, want team-a on each of the 3 requests", got)
	}
	if got := r.HeaderValues("authorization"); len(got) == 0 || got[0] != "Bearer s3cr3t-token" {
		t.Errorf("authorization header: got %q", got)
	}
	st := waitStatus(t, c, "otlphttp/apoxy-backend", func(s collector.ExporterStatus) bool { return !s.LastSuccess.IsZero() })
	if st.Sink != "backend" || st.LastError != "" {
		t.Errorf("status: %+v", st)
	}
	if strings.Contains(lg.String(), "s3cr3t-token") {
		t.Errorf("the token reached the log:\n%s", lg.String())
	}
}

func TestGeneratedPipelineOTLPGRPC(t *testing.T) {
	r := collectortest.StartReceiver(t)
	c := start(t, collector.Config{AllowPrivateEndpoints: true,
		Sinks: []collector.Sink{{
			Name:     "grpc",
			Kind:     collector.OTLPGRPC,
			Endpoint: "http://" + r.GRPCEndpoint, // http:// is plaintext gRPC
			Headers:  map[string]string{"x-tenant": "team-b"},
		}},
	})
	pushAll(t, c)
	waitAll(t, r)
	if got := r.HeaderValues("X-Tenant"); len(got) < 3 || got[0] != "team-b" {
		t.Errorf("x-tenant metadata: got %q", got)
	}
	waitStatus(t, c, "otlp/apoxy-grpc", func(s collector.ExporterStatus) bool { return !s.LastSuccess.IsZero() && s.LastError == "" })
}

// userYAML is a configuration as users write it for a standalone collector: an otlp receiver
// on the usual ports, extensions, self-telemetry settings.
const userYAML = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 4000
    spike_limit_mib: 800
  batch:
    timeout: 100ms
exporters:
  otlphttp/backend:
    endpoint: ENDPOINT
    headers:
      x-honeycomb-team: abc123
  debug:
    verbosity: basic
extensions:
  health_check:
    endpoint: 0.0.0.0:13133
  pprof: {}
service:
  extensions: [health_check, pprof]
  telemetry:
    logs:
      level: debug
    metrics:
      address: 0.0.0.0:8888
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlphttp/backend, debug]
    logs:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlphttp/backend]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlphttp/backend]
`

func TestUserYAMLUnchanged(t *testing.T) {
	r := collectortest.StartReceiver(t)
	yaml := []byte(strings.ReplaceAll(userYAML, "ENDPOINT", r.HTTPEndpoint))
	warnings, err := collector.ValidateWithWarnings(yaml, "")
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for _, want := range []string{"receivers.otlp: protocols and endpoints are ignored", "extensions: ignored", "service.telemetry: ignored", "service.extensions: ignored"} {
		if !slices.ContainsFunc(warnings, func(w string) bool { return strings.HasPrefix(w, want) }) {
			t.Errorf("no warning %q in %q", want, warnings)
		}
	}
	c := start(t, collector.Config{AllowPrivateEndpoints: true, YAML: yaml})
	pushAll(t, c)
	waitAll(t, r)
	if got := r.HeaderValues("x-honeycomb-team"); len(got) == 0 || got[0] != "abc123" {
		t.Errorf("x-honeycomb-team: got %q", got)
	}
	// Nothing listens where the YAML asked.
	for _, addr := range []string{"127.0.0.1:4317", "127.0.0.1:4318", "127.0.0.1:13133", "127.0.0.1:8888"} {
		if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			conn.Close()
			t.Logf("note: something listens on %s (not this collector: it opens no port)", addr)
		}
	}
	waitStatus(t, c, "otlphttp/backend", func(s collector.ExporterStatus) bool { return !s.LastSuccess.IsZero() })
	if s := c.Status(); len(s) != 2 || s[0].Name != "debug" || s[1].Name != "otlphttp/backend" || s[1].Sink != "" {
		t.Errorf("Status: %+v", s)
	}
}

func TestUserYAMLAndSinks(t *testing.T) {
	user := collectortest.StartReceiver(t)
	sink := collectortest.StartReceiver(t)
	// The YAML has traces only; the sink takes traces (joins the YAML's pipeline) and logs
	// (gets a generated pipeline).
	yaml := `
receivers:
  otlp:
exporters:
  otlphttp:
    endpoint: ` + user.HTTPEndpoint + `
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
`
	c := start(t, collector.Config{AllowPrivateEndpoints: true,
		YAML: []byte(yaml),
		Sinks: []collector.Sink{{
			Name: "extra", Kind: collector.OTLPHTTP, Endpoint: sink.HTTPEndpoint,
			Signals: []collector.Signal{collector.Traces, collector.Logs},
		}},
	})
	if c.Wants(collector.Metrics) {
		t.Errorf("Wants(metrics) with no metrics pipeline")
	}
	pushAll(t, c)
	user.WaitForSpans(t, 3, 10*time.Second)
	sink.WaitForSpans(t, 3, 10*time.Second)
	sink.WaitForLogRecords(t, 4, 10*time.Second)
	if n := user.LogRecordCount(); n != 0 {
		t.Errorf("the YAML's exporter got %d log records; it is in no logs pipeline", n)
	}
	if n := c.Dropped(collector.Metrics); n != 0 {
		t.Errorf("metrics with no pipeline counted as dropped: %d", n)
	}
}

// deadAddr returns an address where nothing listens.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func TestUnreachableSinksDoNotBlock(t *testing.T) {
	for _, tc := range []struct {
		name string
		sink collector.Sink
	}{
		{"down-http", collector.Sink{Name: "down", Kind: collector.OTLPHTTP, Endpoint: "http://" + deadAddr(t)}},
		{"down-grpc", collector.Sink{Name: "down", Kind: collector.OTLPGRPC, Endpoint: "http://" + deadAddr(t), Timeout: 500 * time.Millisecond}},
		{"slow-http", collector.Sink{Name: "slow", Kind: collector.OTLPHTTP, Endpoint: "http://" + silentServer(t), Timeout: 500 * time.Millisecond}},
		{"slow-grpc", collector.Sink{Name: "slow", Kind: collector.OTLPGRPC, Endpoint: "http://" + silentServer(t), Timeout: 500 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := start(t, collector.Config{AllowPrivateEndpoints: true, Sinks: []collector.Sink{tc.sink}})
			ctx := context.Background()
			begin := time.Now()
			var dropped int
			for i := range 10000 {
				var err error
				switch i % 3 {
				case 0:
					err = c.ConsumeTraces(ctx, traces(1))
				case 1:
					err = c.ConsumeLogs(ctx, logs(1))
				default:
					err = c.ConsumeMetrics(ctx, metrics(1))
				}
				if err != nil {
					dropped++
				}
			}
			if took := time.Since(begin); took > time.Second {
				t.Errorf("10000 pushes took %v, want under a second", took)
			}
			var counted uint64
			for _, s := range collector.AllSignals {
				counted += c.Dropped(s)
			}
			if counted != uint64(dropped) {
				t.Errorf("Dropped() = %d, Consume* said %d", counted, dropped)
			}
			name := "otlphttp/apoxy-" + tc.sink.Name
			if tc.sink.Kind == collector.OTLPGRPC {
				name = "otlp/apoxy-" + tc.sink.Name
			}
			st := waitStatus(t, c, name, func(s collector.ExporterStatus) bool { return s.LastError != "" })
			if st.LastErrorTime.Before(begin) || st.LastErrorTime.After(time.Now()) || !st.LastSuccess.IsZero() {
				t.Errorf("status: %+v", st)
			}
			t.Logf("%s: %s (dropped %d of 10000)", name, st.LastError, dropped)
		})
	}
}

func TestStopLeavesNoGoroutines(t *testing.T) {
	r := collectortest.StartReceiver(t)
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	for _, sink := range []collector.Sink{
		{Name: "h", Kind: collector.OTLPHTTP, Endpoint: r.HTTPEndpoint},
		{Name: "g", Kind: collector.OTLPGRPC, Endpoint: "http://" + r.GRPCEndpoint},
		{Name: "down", Kind: collector.OTLPHTTP, Endpoint: "http://" + deadAddr(t)},
	} {
		c, err := collector.Start(context.Background(), collector.Config{AllowPrivateEndpoints: true, Sinks: []collector.Sink{sink}})
		if err != nil {
			t.Fatal(err)
		}
		pushAll(t, c)
		time.Sleep(300 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := c.Stop(ctx); err != nil {
			t.Errorf("Stop %s: %v", sink.Name, err)
		}
		cancel()
	}
	goleak.VerifyNone(t, opts...)
}

func TestFileExporterWritesInsideFileDir(t *testing.T) {
	dir := t.TempDir()
	yaml := `
receivers:
  otlp:
exporters:
  file:
    path: project/traces.jsonl
    flush_interval: 10ms
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
`
	c := start(t, collector.Config{AllowPrivateEndpoints: true, YAML: []byte(yaml), FileDir: dir})
	if err := c.ConsumeTraces(context.Background(), traces(2)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "project", "traces.jsonl")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(`"GET /"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %q", path, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKnownBackendsOverTheWire sends through the Datadog, Grafana Cloud and Axiom mappings
// (their intake URL replaced by a local receiver) and checks the credentials arrive as each
// backend documents them.
func TestKnownBackendsOverTheWire(t *testing.T) {
	r := collectortest.StartReceiver(t)
	c := start(t, collector.Config{AllowPrivateEndpoints: true, Sinks: []collector.Sink{
		{Name: "dd", Kind: collector.Datadog, Site: "datadoghq.eu", APIKey: "dd-key", Endpoint: r.HTTPEndpoint, Signals: []collector.Signal{collector.Traces}},
		{Name: "grafana", Kind: collector.GrafanaCloud, Endpoint: r.HTTPEndpoint + "/otlp", InstanceID: "42", APIKey: "glc", Signals: []collector.Signal{collector.Metrics}},
		{Name: "axiom", Kind: collector.Axiom, APIKey: "xaat", Dataset: "edge", Endpoint: r.HTTPEndpoint, Signals: []collector.Signal{collector.Logs}},
	}})
	pushAll(t, c)
	r.WaitForSpans(t, 3, 10*time.Second)
	r.WaitForLogRecords(t, 4, 10*time.Second)
	for header, want := range map[string]string{
		"dd-api-key":      "dd-key",
		"authorization":   "Bearer xaat",
		"x-axiom-dataset": "edge",
	} {
		if got := r.HeaderValues(header); !slices.Contains(got, want) {
			t.Errorf("%s: got %q, want %q", header, got, want)
		}
	}
	// Grafana's gateway path is /otlp/v1/metrics: the local receiver serves /v1/metrics only,
	// so the export fails with 404, which Status shows.
	st := waitStatus(t, c, "otlphttp/apoxy-grafana", func(s collector.ExporterStatus) bool { return s.LastError != "" })
	if !strings.Contains(st.LastError, "404") {
		t.Errorf("grafana status: %+v", st)
	}
}

func TestEgressGuardRefusesPrivateAddresses(t *testing.T) {
	r := collectortest.StartReceiver(t)
	c := start(t, collector.Config{Sinks: []collector.Sink{
		{Name: "h", Kind: collector.OTLPHTTP, Endpoint: r.HTTPEndpoint, Signals: []collector.Signal{collector.Traces}},
		{Name: "g", Kind: collector.OTLPGRPC, Endpoint: "http://" + r.GRPCEndpoint, Signals: []collector.Signal{collector.Traces}},
	}})
	if err := c.ConsumeTraces(context.Background(), traces(1)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"otlphttp/apoxy-h", "otlp/apoxy-g"} {
		st := waitStatus(t, c, name, func(s collector.ExporterStatus) bool { return s.LastError != "" })
		if !strings.Contains(st.LastError, "is not a public address: refused") {
			t.Errorf("%s: %+v", name, st)
		}
	}
	if n := r.SpanCount(); n != 0 {
		t.Errorf("%d spans reached a loopback receiver", n)
	}
}

func TestStoppedCollectorDrops(t *testing.T) {
	r := collectortest.StartReceiver(t)
	c, err := collector.Start(context.Background(), collector.Config{AllowPrivateEndpoints: true, Sinks: []collector.Sink{
		{Name: "h", Kind: collector.OTLPHTTP, Endpoint: r.HTTPEndpoint, Signals: []collector.Signal{collector.Logs}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Wants(collector.Traces) || !c.Wants(collector.Logs) {
		t.Errorf("Wants: traces %v logs %v", c.Wants(collector.Traces), c.Wants(collector.Logs))
	}
	if err := c.ConsumeTraces(context.Background(), traces(5)); err != nil || c.Dropped(collector.Traces) != 0 {
		t.Errorf("traces without a pipeline: %v, dropped %d", err, c.Dropped(collector.Traces))
	}
	// What was queued before Stop is delivered by Stop.
	if err := c.ConsumeLogs(context.Background(), logs(7)); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := r.LogRecordCount(); n != 7 {
		t.Errorf("%d log records delivered by Stop, want 7", n)
	}
	if c.Wants(collector.Logs) {
		t.Error("Wants(logs) after Stop")
	}
	if err := c.ConsumeLogs(context.Background(), logs(2)); err != collector.ErrDropped || c.Dropped(collector.Logs) != 2 {
		t.Errorf("after Stop: %v, dropped %d", err, c.Dropped(collector.Logs))
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartRefusesWithoutAnythingToRun(t *testing.T) {
	if _, err := collector.Start(context.Background(), collector.Config{YAML: []byte("# empty\n")}); err == nil {
		t.Error("Start with no pipelines and no sinks succeeded")
	}
	if _, err := collector.Start(context.Background(), collector.Config{YAML: []byte("receivers:\n  hostmetrics:\n")}); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Start with a refused receiver: %v", err)
	}
}

// TestCostOfACollector measures what one project with one sink costs while idle: the
// goroutines and the heap of a started collector (one OTLP/HTTP sink taking all three
// signals, the generated pipelines), averaged over several.
func TestCostOfACollector(t *testing.T) {
	if testing.Short() {
		t.Skip("measures")
	}
	r := collectortest.StartReceiver(t)
	const n = 20
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap0, g0 := ms.HeapAlloc, runtime.NumGoroutine()
	var cs []*collector.Collector
	for i := range n {
		c, err := collector.Start(context.Background(), collector.Config{AllowPrivateEndpoints: true, Sinks: []collector.Sink{
			{Name: "s" + strconv.Itoa(i), Kind: collector.OTLPHTTP, Endpoint: r.HTTPEndpoint},
		}})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap1, g1 := ms.HeapAlloc, runtime.NumGoroutine()
	// And after each exported once (HTTP connections, batch buffers).
	for _, c := range cs {
		pushAll(t, c)
	}
	r.WaitForSpans(t, 3*n, 10*time.Second)
	r.WaitForLogRecords(t, 4*n, 10*time.Second)
	r.WaitForDataPoints(t, 5*n, 10*time.Second)
	r.Reset() // what the test receiver kept is not the collectors' cost
	time.Sleep(500 * time.Millisecond)
	// Twice: the first GC moves sync.Pool contents (gzip writers shared by every exporter of
	// the process) to the victim cache, the second frees them.
	runtime.GC()
	runtime.GC()
	if p := os.Getenv("COLLECTOR_HEAP_PROFILE"); p != "" {
		f, _ := os.Create(p)
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	runtime.ReadMemStats(&ms)
	heap2, g2 := ms.HeapAlloc, runtime.NumGoroutine()
	for _, c := range cs {
		if err := c.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	}
	t.Logf("per collector (1 sink, 3 signals), idle: %d goroutines, %d KiB heap; after exporting: %d goroutines, %d KiB heap",
		(g1-g0)/n, (int64(heap1)-int64(heap0))/n/1024, (g2-g0)/n, (int64(heap2)-int64(heap0))/n/1024)
}

// TestStopIsBoundedByContext: an exporter without a sending queue, stuck on a server that
// never answers, holds a delivery in the pipeline; Stop still returns once its context ends.
func TestStopIsBoundedByContext(t *testing.T) {
	yaml := `
receivers:
  otlp:
exporters:
  otlphttp:
    endpoint: http://` + silentServer(t) + `
    timeout: 30s
    sending_queue:
      enabled: false
    retry_on_failure:
      enabled: false
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
`
	c, err := collector.Start(context.Background(), collector.Config{YAML: []byte(yaml), AllowPrivateEndpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := c.ConsumeTraces(context.Background(), traces(1)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // the first export is in flight
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_ = c.Stop(ctx)
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("Stop took %v with a 500ms context", took)
	}
}

// TestNoGlobals: a collector leaves the process's OpenTelemetry globals alone.
func TestNoGlobals(t *testing.T) {
	tp, mp, prop := otel.GetTracerProvider(), otel.GetMeterProvider(), otel.GetTextMapPropagator()
	r := collectortest.StartReceiver(t)
	c := start(t, collector.Config{AllowPrivateEndpoints: true, Sinks: []collector.Sink{
		{Name: "h", Kind: collector.OTLPHTTP, Endpoint: r.HTTPEndpoint},
	}})
	pushAll(t, c)
	waitAll(t, r)
	if otel.GetTracerProvider() != tp || otel.GetMeterProvider() != mp || otel.GetTextMapPropagator() != prop {
		t.Error("the collector changed the OpenTelemetry globals")
	}
}

// BenchmarkConsumeTraces is the gateway's cost of handing a one-span batch to a collector.
func BenchmarkConsumeTraces(b *testing.B) {
	c, err := collector.Start(context.Background(), collector.Config{
		Sinks: []collector.Sink{{Name: "down", Kind: collector.OTLPHTTP, Endpoint: "https://203.0.113.1", Signals: []collector.Signal{collector.Traces}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop(context.Background())
	// The collector owns what it is given: one batch per call.
	tds := make([]ptrace.Traces, b.N)
	for i := range tds {
		tds[i] = traces(1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_ = c.ConsumeTraces(context.Background(), tds[i])
	}
}
