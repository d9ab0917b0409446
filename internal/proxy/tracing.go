package proxy

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/textproto"
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
	// prop reads the client's context; propagation are the formats written upstream
	// (by inject), nvals the header values they take.
	prop        propagation.TextMapPropagator
	propagation []propagationFormat
	nvals       int
	// bound is the ratio sampler's bound on a trace ID's low 63 bits; parentBased follows a
	// client's sampled flag instead.
	bound       uint64
	parentBased bool
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

// propagationFormat is a trace-context format a Gateway writes upstream.
type propagationFormat uint8

const (
	propTraceContext propagationFormat = iota
	propB3
	propB3Multi
)

func newTracing(t *ir.Telemetry, exporter func(string) sdktrace.SpanExporter) *tracing {
	cfg := t.Tracing
	// Sampling is decided in startRequest, before the SDK: the SDK only sees sampled
	// requests and the spans under them.
	sampler := sdktrace.AlwaysSample()
	res := resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName),
		attribute.String("apoxy.project", t.Project), attribute.String("apoxy.gateway", t.Gateway), attribute.String("apoxy.proxy", t.Proxy))
	opts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(sampler), sdktrace.WithResource(res), sdktrace.WithIDGenerator(idGenerator{})}
	if exporter != nil {
		if e := exporter(collectorName(t)); e != nil {
			opts = append(opts, sdktrace.WithBatcher(e, sdktrace.WithMaxQueueSize(8192), sdktrace.WithBatchTimeout(time.Second)))
		}
	}
	tp := sdktrace.NewTracerProvider(opts...)
	tr := &tracing{tp: tp, tracer: tp.Tracer("apoxy.dev/gateway"), parentBased: cfg.ParentBased}
	switch f := float64(cfg.SamplingRate) / 100; {
	case f >= 1:
		tr.bound = math.MaxUint64
	case f > 0:
		tr.bound = uint64(f * (1 << 63))
	}
	var props []propagation.TextMapPropagator
	for _, p := range cfg.Propagation {
		switch p {
		case "tracecontext":
			props = append(props, propagation.TraceContext{})
			tr.propagation, tr.nvals = append(tr.propagation, propTraceContext), tr.nvals+1
		case "b3":
			props = append(props, b3.New())
			tr.propagation, tr.nvals = append(tr.propagation, propB3), tr.nvals+1
		case "b3multi":
			props = append(props, b3.New())
			tr.propagation, tr.nvals = append(tr.propagation, propB3Multi), tr.nvals+3
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

// traceContext is a request's place in its trace: the IDs that go upstream in the
// propagation headers and into the access line, recording or not. enc holds the encoded
// headers, built once (see encode), so that an unsampled request pays one allocation.
type traceContext struct {
	traceID trace.TraceID
	spanID  trace.SpanID
	sampled bool
	enc     string
}

// traceparent, b3 and traceIDHex slice enc: "00-{trace}-{span}-0{f}" then "{trace}-{span}-{f}".
const (
	tpLen = 3 + 32 + 1 + 16 + 3
	b3Len = 32 + 1 + 16 + 2
)

func (tc *traceContext) encode() {
	var buf [tpLen + b3Len]byte
	b := append(buf[:0], "00-"...)
	b = hex.AppendEncode(b, tc.traceID[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, tc.spanID[:])
	flag := byte('0')
	if tc.sampled {
		flag = '1'
	}
	b = append(b, '-', '0', flag)
	b = append(b, b[3:3+32+1+16+1]...)
	b = append(b, flag)
	tc.enc = string(b)
}

func (tc *traceContext) traceparent() string { return tc.enc[:tpLen] }
func (tc *traceContext) b3() string          { return tc.enc[tpLen:] }
func (tc *traceContext) traceIDHex() string  { return tc.enc[3 : 3+32] }
func (tc *traceContext) spanIDHex() string   { return tc.enc[3+32+1 : 3+32+1+16] }
func (tc *traceContext) sampledFlag() string { return tc.enc[len(tc.enc)-1:] }

// inject writes tc into an upstream request's headers in each configured format (replacing
// what the client sent there). The client's tracestate passes through untouched.
func (tr *tracing) inject(h http.Header, tc *traceContext) {
	if tc.enc == "" {
		tc.encode()
	}
	vals := make([]string, tr.nvals)
	for _, p := range tr.propagation {
		switch p {
		case propTraceContext:
			vals[0] = tc.traceparent()
			h["Traceparent"], vals = vals[:1:1], vals[1:]
		case propB3:
			vals[0] = tc.b3()
			h["B3"], vals = vals[:1:1], vals[1:]
		case propB3Multi:
			vals[0], vals[1], vals[2] = tc.traceIDHex(), tc.spanIDHex(), tc.sampledFlag()
			h["X-B3-Traceid"], h["X-B3-Spanid"], h["X-B3-Sampled"], vals = vals[:1:1], vals[1:2:2], vals[2:3:3], vals[3:]
			delete(h, "X-B3-Parentspanid")
			delete(h, "X-B3-Flags")
		}
	}
}

// hasContext reports whether a request carries a context in one of the formats read, so
// that requests without one skip extraction.
func (tr *tracing) hasContext(h http.Header) bool {
	for _, p := range tr.propagation {
		switch p {
		case propTraceContext:
			if len(h["Traceparent"]) > 0 {
				return true
			}
		case propB3, propB3Multi: // B3 extraction reads both encodings
			if len(h["B3"]) > 0 || len(h["X-B3-Traceid"]) > 0 || len(h["X-B3-Sampled"]) > 0 || len(h["X-B3-Flags"]) > 0 {
				return true
			}
		}
	}
	return false
}

// sampleRatio is TraceIDRatioBased's test: the trace ID's low 63 bits against the ratio,
// so that every service sampling by ratio agrees on a trace.
func (tr *tracing) sampleRatio(id trace.TraceID) bool {
	return binary.BigEndian.Uint64(id[8:16])>>1 < tr.bound
}

// startRequest places a request in its trace: a child of the context the client sent (when
// the propagation formats find one), else a new trace. The sampling decision is taken here,
// before the SDK: an unsampled request gets IDs and nothing else (no span, no context), a
// sampled one a recording server span whose context the returned ctx carries.
func (tr *tracing) startRequest(r *http.Request, route, gateway string) (context.Context, trace.Span, traceContext) {
	ctx := r.Context()
	var parent trace.SpanContext
	if tr.hasContext(r.Header) {
		ctx = tr.prop.Extract(ctx, headerCarrier(r.Header))
		parent = trace.SpanContextFromContext(ctx)
	}
	var tc traceContext
	if parent.IsValid() {
		tc.traceID = parent.TraceID()
		if tr.parentBased {
			tc.sampled = parent.IsSampled()
		} else {
			tc.sampled = tr.sampleRatio(tc.traceID)
		}
	} else {
		tc.traceID = newTraceID()
		tc.sampled = tr.sampleRatio(tc.traceID)
	}
	if !tc.sampled {
		tc.spanID = newSpanID()
		return ctx, nil, tc
	}
	if !parent.IsValid() {
		ctx = context.WithValue(ctx, rootTraceID{}, tc.traceID)
	}
	ctx, span := tr.tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer))
	sc := span.SpanContext()
	tc.traceID, tc.spanID = sc.TraceID(), sc.SpanID()
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
	return ctx, span, tc
}

// rootTraceID carries the trace ID a sampled root request was given (sampling judged it)
// to the SDK's ID generator, so that the span keeps it.
type rootTraceID struct{}

// idGenerator gives the SDK our IDs: the root trace ID sampling chose, else random ones
// from the runtime's per-thread generator (the SDK's default takes a lock).
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if id, ok := ctx.Value(rootTraceID{}).(trace.TraceID); ok {
		return id, newSpanID()
	}
	return newTraceID(), newSpanID()
}

func (idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

func newTraceID() (id trace.TraceID) {
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

func newSpanID() (id trace.SpanID) {
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}

// headerCarrier reads request headers for the propagators without allocating: they ask for
// lower-case names, which http.Header.Get would canonicalise into a new string each time.
type headerCarrier http.Header

func (c headerCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		key = "Traceparent"
	case "tracestate":
		key = "Tracestate"
	case "b3":
		key = "B3"
	case "x-b3-traceid":
		key = "X-B3-Traceid"
	case "x-b3-spanid":
		key = "X-B3-Spanid"
	case "x-b3-sampled":
		key = "X-B3-Sampled"
	case "x-b3-flags":
		key = "X-B3-Flags"
	case "x-b3-parentspanid":
		key = "X-B3-Parentspanid"
	default:
		key = textproto.CanonicalMIMEHeaderKey(key)
	}
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c headerCarrier) Set(key, value string) { http.Header(c).Set(key, value) }
func (c headerCarrier) Keys() []string        { return propagation.HeaderCarrier(c).Keys() }

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
// sampled (parent nil), only the request's context is written.
func (tr *tracing) startAttempt(parent trace.Span, tc *traceContext, out *http.Request, i int, hostport string) trace.Span {
	if parent == nil {
		tr.inject(out.Header, tc)
		return nil
	}
	ctx := trace.ContextWithSpan(context.Background(), parent)
	_, span := tr.tracer.Start(ctx, "upstream "+out.Method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("server.address", hostport), attribute.String("url.full", out.URL.String()),
			attribute.Int("http.request.resend_count", i)))
	sc := span.SpanContext()
	tr.inject(out.Header, &traceContext{traceID: sc.TraceID(), spanID: sc.SpanID(), sampled: true})
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
