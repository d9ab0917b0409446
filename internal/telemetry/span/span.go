// Package span traces the gateway's calls out of a request (external authorization, a JWKS
// fetch the request waits for, the global rate-limit store) as child spans of the request's
// span, at no cost when the request is not sampled.
package span

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the gateway's instrumentation scope.
const tracerName = "apoxy.dev/gateway"

// Start starts a client span named name under ctx's span when that one is recording (a
// sampled request), and returns the context to make the call with and the function that
// ends the span with the call's error. Without a recording span it returns ctx and a no-op.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, func(error)) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, noop
	}
	ctx, s := parent.TracerProvider().Tracer(tracerName).Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		if err != nil {
			s.RecordError(err)
			s.SetStatus(codes.Error, err.Error())
		}
		s.End()
	}
}

func noop(error) {}
