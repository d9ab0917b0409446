package proxy

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"apoxy.dev/apoxy/internal/ir"
)

// tracing is a Gateway's compiled tracing settings: its tracer (sampling, export to its
// Proxy's collector), the trace-context formats it reads and writes, and its span tags.
type tracing struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	// static are the tags known when compiled (literals, environment variables); headers
	// name request headers read per request.
	static  []attribute.KeyValue
	headers []ir.TracingTag
}

// tracers keeps the tracer providers of the served snapshots across swaps (a provider owns
// a batching goroutine): one per Gateway telemetry entry and settings.
type tracers struct {
	mu   sync.Mutex
	live map[string]*tracing // by key + settings hash
	next map[string]*tracing // being built by the Apply in progress
	// exporter returns where a collector pipeline's spans go (nil: nowhere, spans are still
	// sampled, propagated and logged by trace ID).
	exporter func(collector string) sdktrace.SpanExporter
}

// get returns the tracing of a telemetry entry, reusing the live one when its settings are
// unchanged.
func (ts *tracers) get(key string, t *ir.Telemetry) *tracing {
	if t.Tracing == nil {
		return nil
	}
	spec, _ := json.Marshal(struct {
		T *ir.Tracing
		C string
		G string
	}{t.Tracing, collectorName(t), t.Gateway})
	sum := sha256.Sum256(spec)
	id := key + "#" + string(sum[:8])
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.next == nil {
		ts.next = map[string]*tracing{}
	}
	if tr, ok := ts.next[id]; ok {
		return tr
	}
	tr, ok := ts.live[id]
	if !ok {
		tr = newTracing(t, ts.exporter)
	}
	ts.next[id] = tr
	return tr
}

// finish ends an Apply: on success the providers it used become the live ones and the others
// shut down (flushing their spans); on failure the new ones shut down.
func (ts *tracers) finish(swapped bool) {
	ts.mu.Lock()
	next, live := ts.next, ts.live
	ts.next = nil
	if swapped {
		ts.live = next
	}
	ts.mu.Unlock()
	drop := func(old, keep map[string]*tracing) {
		for id, tr := range old {
			if _, ok := keep[id]; !ok {
				go tr.tp.Shutdown(context.Background())
			}
		}
	}
	if swapped {
		drop(live, next)
	} else {
		drop(next, live)
	}
}

// flush exports what every provider has batched (tests, shutdown).
func (ts *tracers) flush() {
	ts.mu.Lock()
	live := ts.live
	ts.mu.Unlock()
	for _, tr := range live {
		tr.tp.ForceFlush(context.Background())
	}
}

// close shuts every provider down, flushing what is batched.
func (ts *tracers) close() {
	ts.mu.Lock()
	live := ts.live
	ts.live = nil
	ts.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tr := range live {
		tr.tp.Shutdown(ctx)
	}
}

func collectorName(t *ir.Telemetry) string {
	if t.Collector == nil {
		return ""
	}
	return t.Collector.Name
}

func newTracing(t *ir.Telemetry, exporter func(string) sdktrace.SpanExporter) *tracing {
	cfg := t.Tracing
	var sampler sdktrace.Sampler = sdktrace.TraceIDRatioBased(float64(cfg.SamplingRate) / 100)
	if cfg.ParentBased {
		sampler = sdktrace.ParentBased(sampler)
	}
	res := resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName),
		attribute.String("apoxy.project", t.Project), attribute.String("apoxy.gateway", t.Gateway), attribute.String("apoxy.proxy", t.Proxy))
	opts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(sampler), sdktrace.WithResource(res)}
	if exporter != nil {
		if e := exporter(collectorName(t)); e != nil {
			opts = append(opts, sdktrace.WithBatcher(e, sdktrace.WithMaxQueueSize(8192), sdktrace.WithBatchTimeout(time.Second)))
		}
	}
	tp := sdktrace.NewTracerProvider(opts...)
	tr := &tracing{tp: tp, tracer: tp.Tracer("apoxy.dev/gateway")}
	var props []propagation.TextMapPropagator
	for _, p := range cfg.Propagation {
		switch p {
		case "tracecontext":
			props = append(props, propagation.TraceContext{})
		case "b3":
			props = append(props, b3.New(b3.WithInjectEncoding(b3.B3SingleHeader)))
		case "b3multi":
			props = append(props, b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader)))
		}
	}
	tr.prop = propagation.NewCompositeTextMapPropagator(props...)
	for _, tag := range cfg.Tags {
		switch {
		case tag.Value != "":
			tr.static = append(tr.static, attribute.String(tag.Name, tag.Value))
		case tag.Environment != "":
			if v, ok := os.LookupEnv(tag.Environment); ok {
				tr.static = append(tr.static, attribute.String(tag.Name, v))
			} else if tag.Default != "" {
				tr.static = append(tr.static, attribute.String(tag.Name, tag.Default))
			}
		case tag.Header != "":
			tr.headers = append(tr.headers, tag)
		}
	}
	return tr
}

// startRequest starts the server span of a request: a child of the trace context the client
// sent (when the propagation formats find one), sampled as configured. The span is recording
// only when sampled; either way its context goes upstream.
func (tr *tracing) startRequest(r *http.Request, route, gateway string) (context.Context, trace.Span) {
	ctx := tr.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := tr.tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 10+len(tr.static)+len(tr.headers))
		attrs = append(attrs,
			attribute.String("http.request.method", r.Method),
			attribute.String("url.path", r.URL.Path),
			attribute.String("server.address", r.Host),
			attribute.String("network.protocol.version", protocolVersion(r)),
			attribute.String("http.route", route),
			attribute.String("apoxy.gateway", gateway),
			attribute.String("user_agent.original", r.UserAgent()),
			attribute.String("client.address", clientIP(r)),
		)
		if r.URL.RawQuery != "" {
			attrs = append(attrs, attribute.String("url.query", r.URL.RawQuery))
		}
		attrs = append(attrs, tr.static...)
		for _, tag := range tr.headers {
			if v := r.Header.Get(tag.Header); v != "" {
				attrs = append(attrs, attribute.String(tag.Name, v))
			} else if tag.Default != "" {
				attrs = append(attrs, attribute.String(tag.Name, tag.Default))
			}
		}
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

func protocolVersion(r *http.Request) string {
	switch r.ProtoMajor {
	case 3:
		return "3"
	case 2:
		return "2"
	}
	return strconv.Itoa(r.ProtoMajor) + "." + strconv.Itoa(r.ProtoMinor)
}

// endRequest ends a request's span with its outcome.
func endRequest(span trace.Span, rec *accessRecord) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("http.response.status_code", rec.Status),
			attribute.Int64("http.response.body.size", rec.BytesSent), attribute.Int64("http.request.body.size", rec.BytesReceived))
		if rec.Backend != "" {
			span.SetAttributes(attribute.String("apoxy.backend", rec.Backend))
		}
		if f := rec.Flags; f != 0 {
			span.SetAttributes(attribute.String("apoxy.response_flags", f.String()))
		}
		if rec.Status >= 500 {
			span.SetStatus(codes.Error, cmp.Or(rec.Error, http.StatusText(rec.Status)))
		}
	}
	span.End()
}

// startAttempt starts the span of one upstream attempt (try i, 0 first) under the request's
// span, and writes its context into the upstream request's headers. When the request is not
// sampled, only the request span's context is written.
func (tr *tracing) startAttempt(parent trace.Span, out *http.Request, i int, hostport string) trace.Span {
	ctx := trace.ContextWithSpan(context.Background(), parent)
	if !parent.IsRecording() {
		tr.prop.Inject(ctx, propagation.HeaderCarrier(out.Header))
		return nil
	}
	ctx, span := tr.tracer.Start(ctx, "upstream "+out.Method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("server.address", hostport), attribute.String("url.full", out.URL.String()),
			attribute.Int("http.request.resend_count", i)))
	tr.prop.Inject(ctx, propagation.HeaderCarrier(out.Header))
	return span
}

// endAttempt ends an attempt's span with its response status or error.
func endAttempt(span trace.Span, status int, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}
