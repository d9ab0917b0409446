package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"apoxy.dev/apoxy/internal/telemetry/collector/collectortest"
)

// TestOneRetriedRequestEverywhere follows one request through a route that retries (its
// first attempt gets a 503): its access line (apoxy logs, and an OTLP log record over
// OTLP/HTTP), its trace (the request span and two attempt spans, children of it, with their
// attributes, over OTLP/gRPC through a CloudMonitoringIntegration, which reports Connected),
// and its metrics (over OTLP, and in a real Prometheus).
func TestOneRetriedRequestEverywhere(t *testing.T) {
	rcv := collectortest.StartReceiver(t)
	d := startDev(t, "")
	var calls atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer backend.Close()
	host, port, _ := net.SplitHostPort(backend.Listener.Addr().String())
	must(t, d.apoxy(t, fmt.Sprintf(`apiVersion: core.apoxy.dev/v1alpha2
kind: Proxy
metadata: {name: default}
spec:
  telemetry:
    tracing: {enabled: true, samplingRate: 100, tags: {env: {value: e2e}}}
    thirdPartySinks:
      openTelemetrySinks: [{endpoint: '%s', signals: [logs]}]
---
apiVersion: core.apoxy.dev/v1alpha2
kind: CloudMonitoringIntegration
metadata: {name: otlp-grpc}
spec:
  signals: [traces, metrics]
  otlp: {endpoint: 'http://%s', protocol: grpc}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: flaky}
spec: {endpoints: [{ip: %s}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: retried}
spec:
  parentRefs: [{name: default}]
  hostnames: [retry.example.com]
  rules:
  - backendRefs: [{kind: Backend, name: flaky, port: %s}]
    retry: {attempts: 1, codes: [503]}
`, rcv.HTTPEndpoint, rcv.GRPCEndpoint, host, port), "apply", "-f", "-"))

	const traceID = "5b8efff798038103d269b633813fc60c"
	var code int
	waitFor(t, func() bool {
		calls.Store(0)
		req, _ := http.NewRequest("GET", "http://"+d.httpAddr+"/orders", nil)
		req.Host = "retry.example.com"
		req.Header.Set("Traceparent", "00-"+traceID+"-eee19b7ec3c1b174-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		code = resp.StatusCode
		return code == 200 && calls.Load() == 2
	})

	// The access line, in the project's stream and over OTLP.
	out := must(t, d.apoxy(t, "", "logs", "--tail", "1", "--route", "retried")).stdout
	var line map[string]any
	if err := json.Unmarshal([]byte(out), &line); err != nil || line["status"] != 200.0 || line["trace_id"] != traceID || line["path"] != "/orders" {
		t.Errorf("apoxy logs: %q (%v)", out, err)
	}
	waitFor(t, func() bool {
		for _, ld := range rcv.Logs() {
			for i := 0; i < ld.ResourceLogs().Len(); i++ {
				rl := ld.ResourceLogs().At(i)
				for j := 0; j < rl.ScopeLogs().Len(); j++ {
					lrs := rl.ScopeLogs().At(j).LogRecords()
					for k := 0; k < lrs.Len(); k++ {
						lr := lrs.At(k)
						if lr.TraceID().String() == traceID && strings.Contains(lr.Body().Str(), `"path":"/orders"`) {
							return true
						}
					}
				}
			}
		}
		return false
	})

	// The trace: the request span and two attempt spans under it.
	var server ptrace.Span
	var attempts []ptrace.Span
	waitFor(t, func() bool {
		server, attempts = ptrace.NewSpan(), nil
		found := false
		for _, td := range rcv.Traces() {
			for i := 0; i < td.ResourceSpans().Len(); i++ {
				rs := td.ResourceSpans().At(i)
				for j := 0; j < rs.ScopeSpans().Len(); j++ {
					spans := rs.ScopeSpans().At(j).Spans()
					for k := 0; k < spans.Len(); k++ {
						s := spans.At(k)
						if s.TraceID().String() != traceID {
							continue
						}
						switch s.Kind() {
						case ptrace.SpanKindServer:
							server, found = s, true
						case ptrace.SpanKindClient:
							attempts = append(attempts, s)
						}
					}
				}
			}
		}
		return found && len(attempts) == 2
	})
	if server.ParentSpanID().String() != "eee19b7ec3c1b174" {
		t.Errorf("request span's parent %s, want the client's", server.ParentSpanID())
	}
	attr := func(m pcommon.Map, k string) string {
		v, ok := m.Get(k)
		if !ok {
			return ""
		}
		return v.AsString()
	}
	if attr(server.Attributes(), "http.response.status_code") != "200" || attr(server.Attributes(), "env") != "e2e" || attr(server.Attributes(), "http.route") != "httproute/default/retried/rule/0" {
		t.Errorf("request span attributes: %v", server.Attributes().AsRaw())
	}
	statuses := map[string]string{}
	for _, a := range attempts {
		if a.ParentSpanID() != server.SpanID() {
			t.Errorf("attempt span %s is not the request span's child", a.SpanID())
		}
		statuses[attr(a.Attributes(), "http.request.resend_count")] = attr(a.Attributes(), "http.response.status_code")
	}
	if statuses["0"] != "503" || statuses["1"] != "200" {
		t.Errorf("attempts (resend_count: status): %v", statuses)
	}

	// The metrics over OTLP (the project's series only) ...
	waitFor30 := func(cond func() bool) {
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatal("condition not met within 30s")
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor30(func() bool {
		for _, md := range rcv.Metrics() {
			if otlpRequests(md, "httproute/default/retried/rule/0") > 0 {
				return true
			}
		}
		return false
	})
	// ... and the integration says it exports.
	waitFor(t, func() bool {
		out := must(t, d.apoxy(t, "", "get", "cmi", "otlp-grpc", "-o", "jsonpath={.status.conditions[?(@.type==\"Connected\")].status}/{.status.lastExportTime}")).stdout
		return strings.HasPrefix(out, "True/") && len(out) > len("True/")
	})

	// ... and in Prometheus.
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("APOXY_REQUIRE_PROMETHEUS") != "" {
			t.Fatal("prometheus is required (APOXY_REQUIRE_PROMETHEUS)")
		}
		t.Skip("prometheus not installed: the rest is checked")
	}
	query := startPrometheus(t, bin, d.adminAddr)
	waitFor30(func() bool {
		n, ok1 := query(`sum(apoxy_http_requests_total{route="httproute/default/retried/rule/0",code_class="2xx"})`)
		r, ok2 := query(`sum(apoxy_upstream_retries_total)`)
		return ok1 && ok2 && n >= 1 && r >= 1
	})
}

// otlpRequests sums apoxy_http_requests_total points of a route in an OTLP batch.
func otlpRequests(md pmetric.Metrics, route string) float64 {
	var sum float64
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				if m.Name() != "apoxy_http_requests_total" || m.Type() != pmetric.MetricTypeSum {
					continue
				}
				for p := 0; p < m.Sum().DataPoints().Len(); p++ {
					dp := m.Sum().DataPoints().At(p)
					if r, ok := dp.Attributes().Get("route"); ok && r.Str() == route {
						sum += dp.DoubleValue()
					}
				}
			}
		}
	}
	return sum
}
