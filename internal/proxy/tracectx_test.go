package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"apoxy.dev/apoxy/internal/ir"
)

// TestInjectMatchesThePropagators: the headers written by hand are the ones the OTel
// propagators write for the same context, in every format, sampled or not; a client's
// stale B3 parent and flags are not passed on.
func TestInjectMatchesThePropagators(t *testing.T) {
	tr := newTracing(&ir.Telemetry{Tracing: &ir.Tracing{SamplingRate: 100, Propagation: []string{"tracecontext", "b3", "b3multi"}}}, nil)
	defer tr.tp.Shutdown(context.Background())
	for i := 0; i < 50; i++ {
		tc := traceContext{traceID: newTraceID(), spanID: newSpanID(), sampled: i%2 == 0}
		got := http.Header{"X-B3-Parentspanid": {"1111111111111111"}, "X-B3-Flags": {"1"}}
		tr.inject(got, &tc)

		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tc.traceID, SpanID: tc.spanID})
		if tc.sampled {
			sc = sc.WithTraceFlags(trace.FlagsSampled)
		}
		ctx := trace.ContextWithSpanContext(context.Background(), sc)
		want := http.Header{}
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(want))
		b3.New(b3.WithInjectEncoding(b3.B3SingleHeader)).Inject(ctx, propagation.HeaderCarrier(want))
		b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader)).Inject(ctx, propagation.HeaderCarrier(want))
		if len(got) != len(want) {
			t.Fatalf("wrote %v, the propagators write %v", got, want)
		}
		for k, v := range want {
			if got.Get(k) != v[0] || len(got[k]) != 1 {
				t.Errorf("%s: wrote %q, the propagators write %q", k, got[k], v)
			}
		}
		if tc.traceIDHex() != tc.traceID.String() {
			t.Errorf("trace id %q, want %q", tc.traceIDHex(), tc.traceID)
		}
	}
}

// TestSamplingAgreesWithTheSDK: the decision taken before the SDK is the SDK's ratio
// sampler's decision for the same trace ID, at every rate.
func TestSamplingAgreesWithTheSDK(t *testing.T) {
	for _, rate := range []int32{0, 1, 10, 50, 99, 100} {
		tr := newTracing(&ir.Telemetry{Tracing: &ir.Tracing{SamplingRate: rate, Propagation: []string{"tracecontext"}}}, nil)
		sdk := sdktrace.TraceIDRatioBased(float64(rate) / 100)
		n := 0
		for i := 0; i < 20000; i++ {
			id := newTraceID()
			want := sdk.ShouldSample(sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: id}).Decision == sdktrace.RecordAndSample
			if got := tr.sampleRatio(id); got != want {
				t.Fatalf("rate %d%%, trace %s: sampled %v, the SDK says %v", rate, id, got, want)
			}
			if want {
				n++
			}
		}
		if lo, hi := float64(rate)*200-600, float64(rate)*200+600; float64(n) < lo || float64(n) > hi {
			t.Errorf("rate %d%%: %d of 20000 sampled", rate, n)
		}
		tr.tp.Shutdown(context.Background())
	}
}

// TestStartRequestDecides: a client's sampled flag rules when parent-based, the ratio of
// its trace ID when not; an unsampled request keeps the client's trace and gets no span;
// a sampled root request's span keeps the trace ID that sampling judged.
func TestStartRequestDecides(t *testing.T) {
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736" // low 63 bits large: above a 1 % bound
	for _, c := range []struct {
		name        string
		rate        int32
		parentBased bool
		header      [2]string
		sampled     bool
		keepsTrace  bool
	}{
		{"parent-based follows a sampled client", 0, true, [2]string{"Traceparent", "00-" + clientTrace + "-00f067aa0ba902b7-01"}, true, true},
		{"parent-based follows an unsampled client", 100, true, [2]string{"Traceparent", "00-" + clientTrace + "-00f067aa0ba902b7-00"}, false, true},
		{"parent-based follows a B3 client", 0, true, [2]string{"B3", clientTrace + "-00f067aa0ba902b7-1"}, true, true},
		{"ratio ignores the client's flag", 1, false, [2]string{"Traceparent", "00-" + clientTrace + "-00f067aa0ba902b7-01"}, false, true},
		{"ratio samples a root at 100 %", 100, false, [2]string{}, true, false},
		{"a root at 0 %", 0, true, [2]string{}, false, false},
		{"a malformed context starts a new trace", 0, true, [2]string{"Traceparent", "00-zz-00f067aa0ba902b7-01"}, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := newTracing(&ir.Telemetry{Tracing: &ir.Tracing{SamplingRate: c.rate, ParentBased: c.parentBased, Propagation: []string{"tracecontext", "b3"}}}, nil)
			defer tr.tp.Shutdown(context.Background())
			r := httptest.NewRequest("GET", "http://a.example.com/x", nil)
			if c.header[0] != "" {
				r.Header.Set(c.header[0], c.header[1])
			}
			ctx, span, tc := tr.startRequest(r, "rt", "gw")
			if tc.sampled != c.sampled || (span != nil) != c.sampled {
				t.Fatalf("sampled %v (span %v), want %v", tc.sampled, span != nil, c.sampled)
			}
			if got := tc.traceID.String() == clientTrace; got != c.keepsTrace {
				t.Errorf("trace %s, keeps the client's: %v, want %v", tc.traceID, got, c.keepsTrace)
			}
			if !tc.traceID.IsValid() || !tc.spanID.IsValid() {
				t.Errorf("invalid IDs %s %s", tc.traceID, tc.spanID)
			}
			if span != nil {
				if trace.SpanFromContext(ctx) != span || span.SpanContext().TraceID() != tc.traceID {
					t.Errorf("the context does not carry the span, or the span changed the trace")
				}
				span.End()
			}
		})
	}
}
