package proxy

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"apoxy.dev/apoxy/internal/hostname"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/filter"
	"apoxy.dev/apoxy/internal/proxy/route"
)

// ServeHTTP serves a request with the socket's current graph.
func (sk *httpSocket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	in := r
	if sk.altSvc != nil && r.ProtoMajor < 3 {
		w.Header()["Alt-Svc"] = sk.altSvc // HTTP/3 on the same port number
	}
	g := sk.graph.Load()
	st := requestStates.Get().(*requestState)
	// What the exchange points at its own state (the URL a filter may rewrite, the body
	// wrapper) is given back to the server's request before the state is reused.
	inURL, inBody := r.URL, r.Body
	ended := false
	rw := &st.rw
	rw.ResponseWriter = w
	rw.grpc = filter.IsGRPC(r)
	rec := &st.rec
	*rec = accessRecord{Method: r.Method, Host: r.Host, Path: r.RequestURI, Protocol: protocolName(r), UserAgent: r.UserAgent(), ClientIP: clientIP(r)}
	if rec.Path == "" {
		rec.Path = r.URL.RequestURI()
	}
	if r.TLS != nil {
		rec.sni = r.TLS.ServerName
	}
	srv := sk.owner
	refused, why := srv.opts.Requests.cleanInbound(r, &st.in)
	rec.RequestID = r.Header.Get("X-Request-Id")
	if rec.RequestID == "" {
		rec.RequestID = newRequestID()
		r.Header.Set("X-Request-Id", rec.RequestID)
	}
	var h *routeHandler
	// The exchange is logged and measured also when a stream is broken off mid-body (the
	// handler then panics with http.ErrAbortHandler to abort the client's response).
	defer func() {
		srv.logExchange(st, h, r, start)
		// A request that ended normally on a path that keeps nothing of it (see
		// filter.Contained) gives its state to the next one; one broken off (a panic) or
		// forwarded through the full transport (whose goroutines and timers may still hold
		// it) leaves it to the collector.
		if ended && st.reusable {
			in.URL, in.Body = inURL, inBody
			*st = requestState{}
			requestStates.Put(st)
		}
	}()
	misdirected := false
	if g != nil && refused == 0 {
		host := hostname.FromHostHeader(r.Host)
		if r.TLS != nil && r.TLS.ServerName != "" && !g.table.SameListener(hostname.FromHostHeader(r.TLS.ServerName), host) {
			misdirected = true
		} else if e := g.table.Match(&route.Request{Host: host, Method: r.Method, Path: r.URL.Path, Header: r.Header, RawQuery: r.URL.RawQuery}); e != nil {
			h = e.Value
		}
	}
	st.reusable = h == nil || h.contained
	switch {
	case refused != 0:
		httpError(rw, why, refused)
	case misdirected:
		httpError(rw, "this connection's TLS server name selects another listener than the Host header; open a new connection for this host", http.StatusMisdirectedRequest)
	case h == nil:
		httpError(rw, "no route matches this request", http.StatusNotFound)
	default:
		rec.Route, rec.tel = h.route.Name, h.tel
		st.a.trailers = st.in.trailers
		if h.tel != nil && h.tel.trace != nil {
			r = h.startSpan(st, r)
		}
		h.serve(g, st, r, start)
	}
	ended = true
}

// requestStates keeps the state of requests that ended for the next ones: it is the largest
// allocation of a request (about 1.7 KB), and what made the collector run every few seconds
// under load.
var requestStates = sync.Pool{New: func() any { return new(requestState) }}

// logExchange writes a request's access-log record and observes its metrics.
func (srv *Server) logExchange(st *requestState, h *routeHandler, r *http.Request, start time.Time) {
	rec, rw := &st.rec, &st.rw
	rec.req, rec.resp = r, rw.Header()
	if st.cap.cl != nil {
		rec.cap = &st.cap
	}
	rec.Flags, rec.RateLimit, rec.Auth = st.x.Flags, st.x.RateLimit, st.x.Auth
	rec.Function, rec.FunctionError = st.x.Function, st.x.FunctionError
	rec.Status = rw.status()
	if st.a.switched {
		rec.Status = http.StatusSwitchingProtocols // ReverseProxy wrote it on the hijacked connection
	}
	rec.BytesSent = rw.written
	rec.BytesReceived = st.a.body.n // bytes actually read from the client, not the declared length
	d := time.Since(start)
	rec.DurationMS = float64(d.Microseconds()) / 1000
	if h != nil {
		h.obs.observe(srv.metrics, h.backendIndex(rec.Backend), rec.Status, d, rec.BytesReceived, rec.BytesSent)
	} else {
		srv.unrouted.observe(srv.metrics, -1, rec.Status, d, rec.BytesReceived, rec.BytesSent)
	}
	if st.a.span != nil {
		endRequest(st.a.span, rec)
	}
	srv.accessLog.log(rec, start, d) // after the metrics: a reader of the line finds them counted
}

// routeHandler serves one IR route: its compiled chain, then (for a route that forwards) a
// weighted backendRef, that backendRef's own chain and the upstream exchange.
type routeHandler struct {
	s     *Server
	route *ir.Route
	// listenerPort and listenerScheme feed redirects that keep the request's port.
	listenerPort   int32
	listenerScheme string
	chain          filter.Chain
	// backendChains[i] are route.Backends[i]'s own filters.
	backendChains []filter.Chain
	retry         *retryPolicy
	totalWeight   int32
	proxy         *httputil.ReverseProxy
	obs           *routeMetrics
	// contained: every stage of the route's and its backendRefs' chains is filter.Contained,
	// so a request's state may be reused once it ended.
	contained bool
	// stream are the route's stream timeouts (idle, max duration).
	stream streamTimeouts
	// tel is the route's Gateway's telemetry (nil: the defaults).
	tel *telemetryState
}

func (s *Server) newRouteHandler(r *ir.Route, l *ir.Listener, tels map[string]*telemetryState) (*routeHandler, error) {
	h := &routeHandler{s: s, route: r, listenerPort: l.Port, listenerScheme: "http", tel: tels[r.Telemetry]}
	h.obs = newRouteMetrics(r, h.tel)
	if l.Protocol == ir.ProtocolHTTPS {
		h.listenerScheme = "https"
	}
	h.retry = newRetryPolicy(r.Retry)
	h.stream = streamTimeouts{idle: time.Duration(r.Timeouts.StreamIdle), max: time.Duration(r.Timeouts.MaxStreamDuration)}
	var err error
	if h.chain, err = filter.Compile(r, s.env); err != nil {
		return nil, err
	}
	h.backendChains = make([]filter.Chain, len(r.Backends))
	for i := range r.Backends {
		h.totalWeight += r.Backends[i].Weight
		if h.backendChains[i], err = filter.CompileBackend(r, &r.Backends[i], s.env); err != nil {
			return nil, err
		}
	}
	h.contained = h.chain.Contained()
	for _, c := range h.backendChains {
		h.contained = h.contained && c.Contained()
	}
	h.proxy = &httputil.ReverseProxy{
		// The request was prepared in serve; ReverseProxy drops X-Forwarded-* before Rewrite.
		// Response edits are made by the exchange's response hooks as the head is written.
		Rewrite: func(pr *httputil.ProxyRequest) {
			if a, ok := pr.In.Context().Value(attemptKey{}).(*attempt); ok {
				a.forwarded.apply(pr.Out.Header)
			}
		},
		Transport:     clusterTransport{},
		FlushInterval: -1, // stream: flush every write (SSE, chunked)
		ErrorHandler:  h.proxyError,
		BufferPool:    bufferPool{},
	}
	return h, nil
}

// startCapture starts capturing an exchange for the content log: the request body now (when
// its type is logged), the response once its head shows its type.
func (st *requestState) startCapture(cl *contentLog, r *http.Request) {
	st.cap.cl = cl
	if cl.req && st.a.body.ReadCloser != nil && cl.wantsType(r.Header.Get("Content-Type")) {
		st.cap.reqOn = true
		st.a.body.cap = &st.cap
	}
}

// startSpan starts the request's span; a sampled request's context carries it (for the
// stages that call out: external authorization, JWKS, Redis) from here on.
func (h *routeHandler) startSpan(st *requestState, r *http.Request) *http.Request {
	tr := h.tel.trace
	ctx, span, tc := tr.startRequest(r, h.obs.route, h.tel.gateway)
	st.a.trace, st.a.span, st.a.tc = tr, span, tc
	if span != nil {
		r = r.WithContext(ctx)
	}
	st.a.tc.encode()
	st.rec.TraceID = st.a.tc.traceIDHex()
	return r
}

// protocolName names a request's protocol as Envoy's %PROTOCOL% does.
func protocolName(r *http.Request) string {
	switch {
	case r.ProtoMajor == 2:
		return "HTTP/2"
	case r.ProtoMajor == 3:
		return "HTTP/3"
	}
	return r.Proto
}

// backendIndex finds the backendRef named backend (-1: none).
func (h *routeHandler) backendIndex(backend string) int {
	if backend == "" {
		return -1
	}
	for i := range h.route.Backends {
		if h.route.Backends[i].Backend == backend {
			return i
		}
	}
	return -1
}

// requestState is what one request needs, allocated in one piece.
type requestState struct {
	rw  responseWriter
	rec accessRecord
	a   attempt
	in  inbound
	x   filter.Exchange
	// cap and cw capture bodies for the content log (cap.cl nil: off).
	cap capture
	cw  captureWriter
	// reusable: nothing outlives the request's end but the state itself (requestStates).
	reusable bool
}

// serve runs the route's chain and, when no stage answered, forwards to a backendRef.
func (h *routeHandler) serve(g *graph, st *requestState, r *http.Request, start time.Time) {
	w, rec, a, x := &st.rw, &st.rec, &st.a, &st.x
	upgrade := r.Header.Get("Upgrade") != ""
	if !upgrade && r.Body != nil && r.Body != http.NoBody {
		a.body = clientBody{ReadCloser: r.Body}
		r.Body = &a.body
	}
	if a.guard = newStreamGuard(&h.stream, start); a.guard != nil {
		a.body.guard = a.guard
		defer a.guard.stop()
	}
	// X-Forwarded-* describe the request as the client sent it, before filters edit it.
	a.forwarded = forwardedFor(r, h.listenerScheme)
	x.Begin(r, w)
	if st.in.client.IsValid() {
		x.SetClientAddr(st.in.client) // forwarded by a trusted proxy
	}
	x.Route, x.Scheme, x.Port, x.Upstreams, x.Errors, x.Start = h.route, h.listenerScheme, h.listenerPort, g, httpError, start
	w.x = x
	defer x.Finish()
	if h.tel != nil && h.tel.content != nil && h.tel.content.wantsPath(r.URL.Path) {
		st.startCapture(h.tel.content, r)
	}
	if h.chain.Run(x) {
		return
	}
	if st.cap.cl != nil && st.cap.cl.resp { // above the compression the chain may have put on
		st.cw = captureWriter{ResponseWriter: x.W, c: &st.cap}
		x.W = &st.cw
	}
	i := h.pickBackend()
	if i < 0 || h.route.Backends[i].Invalid {
		x.Error("the route's backend is not available (invalid reference)", http.StatusInternalServerError)
		return
	}
	wb := &h.route.Backends[i]
	if h.backendChains[i].Run(x) {
		return
	}
	cluster := g.clusters[wb.Backend]
	if cluster == nil {
		x.Error("backend not found", http.StatusInternalServerError)
		return
	}
	rec.Backend = wb.Backend
	// WebSocket and other upgrades go through httputil.ReverseProxy, which splices the
	// hijacked connections; everything else takes the leaner forward path.
	a.cluster, a.port, a.handler, a.rec, a.upgrade, a.x = cluster, wb.Port, h, rec, upgrade, x
	if !upgrade && h.retry.replayBodies && r.GetBody == nil && r.ContentLength > 0 && r.ContentLength <= maxReplayBody {
		bufferForReplay(r)
	}
	// The request timeout bounds the wait for response headers (streams may then run on).
	// The cluster's own HTTP/1.1 client takes it as a deadline on the client's context, applied
	// to the connection (no derived context, timer or goroutine per request); the full
	// transport gets a context cancelled by a timer.
	// It runs from the request's arrival, so a delay injected by a fault counts toward it.
	timeout := time.Duration(h.route.Timeouts.Request)
	if m := h.stream.max; m > 0 && (timeout == 0 || m < timeout) {
		timeout = m // a stream's whole life is bounded, its wait for the head included
	}
	a.trailers = a.trailers && !upgrade
	if upgrade || !cluster.HTTP1() {
		st.reusable = false // the transport's goroutines and the timeout's timer may outlive it
		h.serveTransport(w, r, a, timeout, start, upgrade)
		return
	}
	a.ctx = &deadlineCtx{Context: r.Context()}
	if timeout > 0 {
		a.ctx.deadline = start.Add(timeout)
	}
	// The inbound request is ours alone from here: its header map and URL (the exchange's
	// copy) are what the filters edited, and go upstream as they are.
	out := r.WithContext(a.ctx)
	out.RequestURI = ""
	h.forward(a.x.W, out, a)
}

// serveTransport forwards through the cluster's full transport: HTTP/2 and h2c backends and
// protocol upgrades (WebSocket, through httputil.ReverseProxy, which splices the hijacked
// connections). Its context is cancelled by a timer at the request timeout. Out of serve, so
// the HTTP/1.1 path's frames stay small (an HTTP/2 stream's goroutine starts with a small
// stack).
//
//go:noinline
func (h *routeHandler) serveTransport(w *responseWriter, r *http.Request, a *attempt, timeout time.Duration, start time.Time, upgrade bool) {
	x := a.x
	c, cancel := context.WithCancel(r.Context())
	defer cancel()
	ctx := c
	a.cancel = cancel
	if timeout > 0 {
		t := time.AfterFunc(timeout-time.Since(start), func() {
			// The request timeout ends with the response head: an upgraded connection
			// (whose 101 ReverseProxy writes on the hijacked connection, not through w)
			// runs on under idle and maxStreamDuration only.
			if !w.wroteHeader.Load() && !a.headIn.Load() {
				a.timedOut.Store(true)
				cancel()
			}
		})
		defer t.Stop()
	}
	if upgrade {
		out := r.Clone(context.WithValue(ctx, attemptKey{}, a))
		h.proxy.ServeHTTP(x.W, out)
		if f, why := a.guard.ended(); f != 0 {
			a.flag(f)
			a.rec.Error = why
		}
		return
	}
	out := r.WithContext(ctx)
	out.RequestURI = ""
	h.forward(x.W, out, a)
}

// pickBackend chooses a weighted backendRef by index; -1 when every weight is zero.
func (h *routeHandler) pickBackend() int {
	bs := h.route.Backends
	if len(bs) == 1 && bs[0].Weight > 0 {
		return 0
	}
	if h.totalWeight <= 0 {
		return -1
	}
	n := rand.Int32N(h.totalWeight)
	for i := range bs {
		if n < bs[i].Weight {
			return i
		}
		n -= bs[i].Weight
	}
	return -1
}
