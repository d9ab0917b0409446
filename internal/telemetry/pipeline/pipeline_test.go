package pipeline

import (
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy"
	"apoxy.dev/apoxy/internal/telemetry/collector/collectortest"
)

// TestLogLinesAreBatched: lines of two Gateways reach a real OTLP/HTTP receiver as records
// of few payloads (a resource per Gateway in each), every one of them, with its trace ID,
// status and body; the lines logged just before Close are delivered too; the pipeline's
// drops are a series on /metrics.
func TestLogLinesAreBatched(t *testing.T) {
	rcv := collectortest.StartReceiver(t)
	ps := New(Options{AllowPrivateEndpoints: true})
	tels := map[string]*ir.Telemetry{"p/ns/gw": {Project: "p", Gateway: "ns/gw", Collector: &ir.Collector{Name: "p/ns/proxy",
		Sinks: []ir.Sink{{Name: "otlp", Kind: ir.SinkOTLPHTTP, Endpoint: rcv.HTTPEndpoint, Signals: []string{"logs"}}}}}}
	ps.Prepare(tels)
	ps.Finish(true)
	const n = 2500
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	for i := range n {
		gw := []string{"ns/a", "ns/b"}[i%2]
		ps.Log("p/ns/proxy", proxy.LogLine{Type: "access", Project: "p", Gateway: gw, Route: "r", Status: 200 + i%400, TraceID: trace, Time: time.Now(), Line: fmt.Appendf(nil, "line %d\n", i)})
	}
	lds := rcv.WaitForLogRecords(t, n, 20*time.Second)
	if len(lds) > n/100 {
		t.Errorf("%d lines came in %d payloads: not batched", n, len(lds))
	}
	seen := map[string]bool{}
	for _, ld := range lds {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			gw, _ := rl.Resource().Attributes().Get("apoxy.gateway")
			recs := rl.ScopeLogs().At(0).LogRecords()
			for j := 0; j < recs.Len(); j++ {
				lr := recs.At(j)
				body := lr.Body().Str()
				var k int
				if _, err := fmt.Sscanf(body, "line %d", &k); err != nil || strings.HasSuffix(body, "\n") {
					t.Fatalf("body %q", body)
				}
				if want := []string{"ns/a", "ns/b"}[k%2]; gw.Str() != want {
					t.Errorf("line %d under gateway %q, want %q", k, gw.Str(), want)
				}
				if lr.TraceID().String() != trace {
					t.Errorf("line %d: trace %s", k, lr.TraceID())
				}
				if code, _ := lr.Attributes().Get("http.response.status_code"); code.Int() != int64(200+k%400) {
					t.Errorf("line %d: status %d", k, code.Int())
				}
				if seen[body] {
					t.Errorf("line %d twice", k)
				}
				seen[body] = true
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct lines, want %d", len(seen), n)
	}

	fams, err := proxy.MetricsGatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := series(fams, "apoxy_telemetry_dropped_total", map[string]string{"project": "p", "proxy": "ns/proxy", "signal": "logs"}); !ok || v != 0 {
		t.Errorf("apoxy_telemetry_dropped_total{logs}: %v (present %v), want 0", v, ok)
	}

	// Lines logged right before Close are delivered, not left in the batch.
	for i := range 7 {
		ps.Log("p/ns/proxy", proxy.LogLine{Type: "access", Project: "p", Gateway: "ns/a", Time: time.Now(), Line: fmt.Appendf(nil, "last %d\n", i)})
	}
	ps.Close()
	rcv.WaitForLogRecords(t, n+7, 10*time.Second)
	fams, _ = proxy.MetricsGatherer().Gather()
	if _, ok := series(fams, "apoxy_telemetry_dropped_total", map[string]string{"project": "p"}); ok {
		t.Errorf("a closed pipeline still reports its drops")
	}
}

func series(fams []*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}
