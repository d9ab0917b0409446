package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"apoxy.dev/apoxy/internal/ir"
)

// TestTracingRetriedRequest: one request through a route with a retry gives a server span
// and two attempt spans, children of it, each carrying its own context upstream; the
// trace continues the client's W3C (or B3) context; the access line names the trace; an
// unsampled request records nothing but still sends its (unsampled) context upstream.
func TestTracingRetriedRequest(t *testing.T) {
	var mu sync.Mutex
	var upstreamTP, upstreamB3 []string
	var calls atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamTP = append(upstreamTP, r.Header.Get("Traceparent"))
		upstreamB3 = append(upstreamB3, r.Header.Get("B3"))
		mu.Unlock()
		if r.URL.Path == "/retry" && calls.Add(1)%2 == 1 {
			w.WriteHeader(503)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer backend.Close()
	host, port, _ := net.SplitHostPort(backend.Listener.Addr().String())
	var p int
	fmt.Sscan(port, &p)

	exp := tracetest.NewInMemoryExporter()
	var out syncBuffer
	s := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DrainTimeout: time.Second, AccessLog: &out,
		SpanExporter: func(string) sdktrace.SpanExporter { return exp }})
	t.Cleanup(s.Close)
	route := func(name, path string, tel string) *ir.Route {
		r := testRoute(name, path, ir.WeightedBackend{Backend: "ns/b", Port: int32(p), Weight: 1})
		r.Retry = &ir.Retry{Attempts: 1, Conditions: []string{"GatewayError"}}
		r.Telemetry = tel
		return r
	}
	snap := &ir.Snapshot{
		Listeners: []*ir.Listener{{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolHTTP,
			VirtualHosts: []*ir.VirtualHost{{Hostname: "*", Routes: []*ir.Route{route("p/httproute/ns/r/rule/0/match/0", "/retry", "p/ns/gw"), route("p/unsampled", "/never", "p/ns/off")}}}}},
		Backends: []*ir.Backend{{Name: "ns/b", Protocol: "plain", Endpoints: []ir.Endpoint{{IP: host}}}},
		Telemetry: map[string]*ir.Telemetry{
			"p/ns/gw":  {Project: "p", Gateway: "ns/gw", AccessLog: ir.AccessLog{SamplingRate: 100}, Tracing: &ir.Tracing{SamplingRate: 100, ParentBased: true, Propagation: []string{"tracecontext", "b3"}, ServiceName: "gw", Tags: []ir.TracingTag{{Name: "env", Value: "test"}, {Name: "tenant", Header: "X-Tenant"}}}},
			"p/ns/off": {Project: "p", Gateway: "ns/off", AccessLog: ir.AccessLog{SamplingRate: 100}, Tracing: &ir.Tracing{SamplingRate: 0, Propagation: []string{"tracecontext"}, ServiceName: "gw"}},
		},
	}
	if err := s.Apply("p", snap); err != nil {
		t.Fatal(err)
	}
	waitResolved(t, s, "ns/b")
	addr := "http://" + s.Addrs()["127.0.0.1:0"]
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	code, _, _ := get(t, addr+"/retry", "a.example.com", "Traceparent", "00-"+clientTrace+"-00f067aa0ba902b7-01", "X-Tenant", "acme")
	if code != 200 {
		t.Fatalf("retried request: %d", code)
	}
	s.tracers.flush()
	spans := exp.GetSpans()
	var server *tracetest.SpanStub
	var attempts []tracetest.SpanStub
	for i := range spans {
		switch spans[i].SpanKind {
		case trace.SpanKindServer:
			server = &spans[i]
		case trace.SpanKindClient:
			attempts = append(attempts, spans[i])
		}
	}
	if server == nil || len(attempts) != 2 {
		t.Fatalf("spans: %d server, %d attempts (%d in all), want 1 and 2", btoi(server != nil), len(attempts), len(spans))
	}
	if server.SpanContext.TraceID().String() != clientTrace || server.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("server span does not continue the client's trace: %v parent %v", server.SpanContext.TraceID(), server.Parent.SpanID())
	}
	attrs := map[string]string{}
	for _, a := range server.Attributes {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["http.response.status_code"] != "200" || attrs["http.route"] != "httproute/ns/r/rule/0" || attrs["env"] != "test" || attrs["tenant"] != "acme" || attrs["apoxy.backend"] != "ns/b" {
		t.Errorf("server span attributes: %v", attrs)
	}
	mu.Lock()
	tps := append([]string(nil), upstreamTP...)
	b3s := append([]string(nil), upstreamB3...)
	mu.Unlock()
	for i, a := range attempts {
		if a.Parent.SpanID() != server.SpanContext.SpanID() || a.SpanContext.TraceID().String() != clientTrace {
			t.Errorf("attempt %d is not the server span's child", i)
		}
		resend := ""
		status := ""
		for _, kv := range a.Attributes {
			switch kv.Key {
			case "http.request.resend_count":
				resend = kv.Value.Emit()
			case "http.response.status_code":
				status = kv.Value.Emit()
			}
		}
		want := []string{"503", "200"}[i]
		if resend != fmt.Sprint(i) || status != want {
			t.Errorf("attempt %d: resend_count %s status %s, want %d and %s", i, resend, status, i, want)
		}
		// What went upstream on this try is this attempt's context, in both formats.
		if wantTP := "00-" + clientTrace + "-" + a.SpanContext.SpanID().String() + "-01"; tps[i] != wantTP {
			t.Errorf("try %d sent traceparent %q, want %q", i, tps[i], wantTP)
		}
		if !strings.HasPrefix(b3s[i], clientTrace+"-"+a.SpanContext.SpanID().String()+"-1") {
			t.Errorf("try %d sent b3 %q", i, b3s[i])
		}
	}
	s.FlushAccessLog()
	if !strings.Contains(out.String(), `"trace_id":"`+clientTrace+`"`) {
		t.Errorf("access line without the trace id:\n%s", out.String())
	}

	// Not sampled: nothing recorded; an unsampled context still goes upstream.
	exp.Reset()
	if code, _, _ := get(t, addr+"/never", "a.example.com"); code != 200 {
		t.Fatalf("/never: %d", code)
	}
	s.tracers.flush()
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("an unsampled request recorded %d spans", n)
	}
	mu.Lock()
	last := upstreamTP[len(upstreamTP)-1]
	mu.Unlock()
	if !strings.HasPrefix(last, "00-") || !strings.HasSuffix(last, "-00") {
		t.Errorf("unsampled request sent traceparent %q, want a context with sampled=0", last)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
