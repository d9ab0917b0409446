package span

import (
	"context"
	"errors"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestStart(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	ctx, parent := tp.Tracer("t").Start(context.Background(), "request")
	cctx, end := Start(ctx, "ext_authz")
	if trace.SpanFromContext(cctx).SpanContext().SpanID() == parent.SpanContext().SpanID() {
		t.Fatal("no child span in the returned context")
	}
	end(errors.New("denied"))
	parent.End()
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[0].Name != "ext_authz" || spans[0].Parent.SpanID() != parent.SpanContext().SpanID() || spans[0].Status.Description != "denied" || spans[0].SpanKind != trace.SpanKindClient {
		t.Fatalf("spans: %+v", spans)
	}
	// Not sampled: the same context back, nothing recorded, nothing allocated.
	exp.Reset()
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSyncer(exp))
	ctx, _ = unsampled.Tracer("t").Start(context.Background(), "request")
	if allocs := testing.AllocsPerRun(100, func() {
		c, end := Start(ctx, "ext_authz")
		end(nil)
		if c != ctx {
			t.Fatal("a new context for an unsampled request")
		}
	}); allocs != 0 {
		t.Errorf("%v allocations per unsampled call", allocs)
	}
	if len(exp.GetSpans()) != 0 {
		t.Error("an unsampled call recorded a span")
	}
}
