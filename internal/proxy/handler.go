package proxy

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/h1"
	"apoxy.dev/apoxy/internal/proxy/route"
	"apoxy.dev/apoxy/internal/proxy/upstream"
)

// ServeHTTP serves a request with the socket's current graph.
func (sk *socket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if sk.altSvc != nil && r.ProtoMajor < 3 {
		w.Header()["Alt-Svc"] = sk.altSvc // HTTP/3 on the same port number
	}
	g := sk.graph.Load()
	st := &requestState{}
	rw := &st.rw
	rw.ResponseWriter = w
	rw.grpc = isGRPC(r)
	rec := &st.rec
	*rec = accessRecord{Method: r.Method, Host: r.Host, Path: r.URL.Path, Protocol: r.Proto, UserAgent: r.UserAgent(), ClientIP: clientIP(r)}
	srv := sk.owner
	refused, why := srv.opts.Requests.cleanInbound(r, &st.in)
	rec.RequestID = r.Header.Get("X-Request-Id")
	if rec.RequestID == "" {
		rec.RequestID = newRequestID()
		r.Header.Set("X-Request-Id", rec.RequestID)
	}
	var h *routeHandler
	misdirected := false
	if g != nil && refused == 0 {
		host := normalizeHost(r.Host)
		if r.TLS != nil && r.TLS.ServerName != "" && !g.table.SameListener(normalizeHost(r.TLS.ServerName), host) {
			misdirected = true
		} else if e := g.table.Match(&route.Request{Host: host, Method: r.Method, Path: r.URL.Path, Header: r.Header, RawQuery: r.URL.RawQuery}); e != nil {
			h = e.Value
		}
	}
	switch {
	case refused != 0:
		httpError(rw, why, refused)
	case misdirected:
		httpError(rw, "this connection's TLS server name selects another listener than the Host header; open a new connection for this host", http.StatusMisdirectedRequest)
	case h == nil:
		httpError(rw, "no route matches this request", http.StatusNotFound)
	default:
		rec.Route = h.route.Name
		st.a.trailers = st.in.trailers
		h.serve(g, rw, r, rec, &st.a)
	}
	rec.Status = rw.status()
	rec.BytesSent = rw.written
	rec.BytesReceived = st.a.body.n // bytes actually read from the client, not the declared length
	d := time.Since(start)
	rec.DurationMS = float64(d.Microseconds()) / 1000
	srv.accessLog.log(rec, start)
	obs := &srv.unrouted
	if h != nil {
		obs = &h.obs
	}
	obs.observe(srv.metrics, rec.Status, d)
}

// routeHandler serves one IR route.
type routeHandler struct {
	s     *Server
	route *ir.Route
	// listenerPort and listenerScheme feed redirects that keep the request's port.
	listenerPort   int32
	listenerScheme string
	reqHeaders     []*ir.HeaderModifier
	respHeaders    []*ir.HeaderModifier
	rewrite        *ir.URLRewrite
	mirrors        []*ir.Mirror
	cors           *ir.CORS
	compression    *ir.Compression
	totalWeight    int32
	proxy          *httputil.ReverseProxy
	obs            routeMetrics
}

func (s *Server) newRouteHandler(r *ir.Route, l *ir.Listener) (*routeHandler, error) {
	h := &routeHandler{s: s, route: r, listenerPort: l.Port, listenerScheme: "http", obs: routeMetrics{route: r.Name}}
	if l.Protocol == ir.ProtocolHTTPS {
		h.listenerScheme = "https"
	}
	for _, f := range r.Filters {
		switch f.Type {
		case ir.FilterRequestHeaders:
			h.reqHeaders = append(h.reqHeaders, f.RequestHeaders)
		case ir.FilterResponseHeaders:
			h.respHeaders = append(h.respHeaders, f.ResponseHeaders)
		case ir.FilterURLRewrite:
			h.rewrite = f.URLRewrite
		case ir.FilterRequestMirror:
			h.mirrors = append(h.mirrors, f.Mirror)
		case ir.FilterCORS:
			h.cors = f.CORS
		case ir.FilterCompression:
			h.compression = f.Compression
		default:
			return nil, fmt.Errorf("unknown filter %q", f.Type)
		}
	}
	for _, b := range r.Backends {
		h.totalWeight += b.Weight
	}
	h.proxy = &httputil.ReverseProxy{
		// The request was prepared in serve; ReverseProxy drops X-Forwarded-* before Rewrite.
		Rewrite: func(pr *httputil.ProxyRequest) {
			if a, ok := pr.In.Context().Value(attemptKey{}).(*attempt); ok {
				a.forwarded.apply(pr.Out.Header)
			}
		},
		Transport:     clusterTransport{},
		FlushInterval: -1, // stream: flush every write (SSE, chunked)
		ErrorHandler:  h.proxyError,
		BufferPool:    bufferPool{},
		ModifyResponse: func(resp *http.Response) error {
			for _, m := range h.respHeaders {
				applyHeaders(resp.Header, m)
			}
			if a, ok := resp.Request.Context().Value(attemptKey{}).(*attempt); ok {
				for _, m := range a.backendRespHeaders {
					applyHeaders(resp.Header, m)
				}
			}
			return nil
		},
	}
	return h, nil
}

// requestState is what one request needs, allocated in one piece.
type requestState struct {
	rw  responseWriter
	rec accessRecord
	a   attempt
	in  inbound
}

func (h *routeHandler) serve(g *graph, w *responseWriter, r *http.Request, rec *accessRecord, a *attempt) {
	if h.cors != nil && h.handleCORS(w, r) {
		return
	}
	switch {
	case h.route.Redirect != nil:
		h.redirect(w, r)
		return
	case h.route.DirectResponse != nil:
		h.directResponse(w)
		return
	}
	wb := h.pickBackend()
	if wb == nil || wb.Invalid {
		httpError(w, "the route's backend is not available (invalid reference)", http.StatusInternalServerError)
		return
	}
	cluster := g.clusters[wb.Backend]
	if cluster == nil {
		httpError(w, "backend not found", http.StatusInternalServerError)
		return
	}
	rec.Backend = wb.Backend
	// WebSocket and other upgrades go through httputil.ReverseProxy, which splices the
	// hijacked connections; everything else takes the leaner forward path.
	upgrade := r.Header.Get("Upgrade") != ""
	a.cluster, a.port, a.handler, a.rec, a.upgrade = cluster, wb.Port, h, rec, upgrade
	// The request timeout bounds the wait for response headers (streams may then run on).
	// The cluster's own HTTP/1.1 client takes it as a deadline on the client's context, applied
	// to the connection (no derived context, timer or goroutine per request); the full
	// transport gets a context cancelled by a timer.
	var ctx context.Context
	timeout := time.Duration(h.route.Timeouts.Request)
	if !upgrade && cluster.HTTP1() {
		a.ctx.Context = r.Context()
		if timeout > 0 {
			a.ctx.deadline = time.Now().Add(timeout)
		}
		ctx = &a.ctx
	} else {
		c, cancel := context.WithCancel(r.Context())
		defer cancel()
		ctx = c
		if timeout > 0 {
			t := time.AfterFunc(timeout, func() {
				if !w.wroteHeader.Load() {
					a.timedOut.Store(true)
					cancel()
				}
			})
			defer t.Stop()
		}
	}
	var out *http.Request
	if upgrade {
		out = r.Clone(ctx)
	} else {
		// The inbound request is ours alone from here: its header map is reused in place; the
		// URL is copied because rewrites and the transport change it.
		out = r.WithContext(ctx)
		a.url = *r.URL
		out.URL, out.RequestURI = &a.url, ""
	}
	if !upgrade && out.Body != nil && out.Body != http.NoBody {
		a.body = clientBody{ReadCloser: out.Body}
		out.Body = &a.body
	}
	for _, m := range h.reqHeaders {
		applyHeaders(out.Header, m)
	}
	var backendResp []*ir.HeaderModifier
	for _, f := range wb.Filters {
		if f.RequestHeaders != nil {
			applyHeaders(out.Header, f.RequestHeaders)
		}
		if f.ResponseHeaders != nil {
			backendResp = append(backendResp, f.ResponseHeaders)
		}
	}
	fwd := forwardedFor(r, h.listenerScheme)
	a.trailers = a.trailers && !upgrade
	h.applyRewrite(out, r)
	if len(h.mirrors) > 0 {
		h.mirror(g, out)
	}
	var w2 http.ResponseWriter = w
	if h.compression != nil && !h.compression.Disabled {
		if cw := newCompressWriter(w, r, h.compression); cw != nil {
			defer cw.Close()
			w2 = cw
		}
	}
	a.forwarded, a.backendRespHeaders = fwd, backendResp
	if upgrade {
		h.proxy.ServeHTTP(w2, out.WithContext(context.WithValue(ctx, attemptKey{}, a)))
		return
	}
	h.forward(w2, out, a)
}

// pickBackend chooses a weighted backendRef; nil when every weight is zero.
func (h *routeHandler) pickBackend() *ir.WeightedBackend {
	bs := h.route.Backends
	if len(bs) == 1 && bs[0].Weight > 0 {
		return &bs[0]
	}
	if h.totalWeight <= 0 {
		return nil
	}
	n := rand.Int32N(h.totalWeight)
	for i := range bs {
		if n < bs[i].Weight {
			return &bs[i]
		}
		n -= bs[i].Weight
	}
	return nil
}

// attempt carries one request's upstream choice through ReverseProxy into the transport.
type attempt struct {
	cluster   *upstream.Cluster
	port      int32
	handler   *routeHandler
	rec       *accessRecord
	timedOut  atomic.Bool
	forwarded forwarded
	// upgrade: a protocol upgrade (WebSocket), which needs the full transport.
	upgrade bool
	// trailers: the client asked for trailers (TE: trailers), asked of the upstream too.
	trailers bool
	// body wraps the client's request body: what was read and how reading it failed.
	body clientBody
	// ctx is the request context given to the cluster's HTTP/1.1 client.
	ctx deadlineCtx
	// backendRespHeaders are the chosen backendRef's own ResponseHeaderModifier filters.
	backendRespHeaders []*ir.HeaderModifier
	// url is the outbound request's URL (rewrites and the upstream address change it).
	url url.URL
}

type attemptKey struct{}

// deadlineCtx is a client's request context with the route's request deadline on top,
// allocated inside the attempt. Done is the parent's (the client went away); the deadline is
// enforced by the HTTP/1.1 client on the connection, and Err reports DeadlineExceeded once it
// has passed.
type deadlineCtx struct {
	context.Context
	deadline time.Time
}

func (c *deadlineCtx) Deadline() (time.Time, bool) {
	if c.deadline.IsZero() {
		return c.Context.Deadline()
	}
	return c.deadline, true
}

func (c *deadlineCtx) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// clusterTransport picks an endpoint per attempt and retries: by default once on a connection
// failure for idempotent methods; with a rule retry policy on its codes too, when the body can
// be replayed.
type clusterTransport struct{}

var errNoHealthy = upstream.ErrNoHealthyEndpoint

func (clusterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return req.Context().Value(attemptKey{}).(*attempt).roundTrip(req)
}

// roundTrip sends req to an endpoint of the attempt's cluster, retrying as the route says.
func (a *attempt) roundTrip(req *http.Request) (*http.Response, error) {
	rt := a.handler.route
	retries, codes := 0, []int(nil)
	var backoff time.Duration
	if rt.Retry != nil {
		retries, codes, backoff = rt.Retry.Attempts, rt.Retry.Codes, time.Duration(rt.Retry.Backoff)
	} else if idempotent(req.Method) {
		retries = 1
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	var triedBuf [4]netip.Addr
	tried := triedBuf[:0]
	start := time.Now()
	for i := 0; ; i++ {
		addr, err := a.cluster.Pick(tried)
		if err != nil {
			return nil, err
		}
		tried = append(tried, addr.IP)
		hostport := addr.HostPort(a.port)
		out := req
		if i > 0 {
			out = req.Clone(req.Context())
			if req.GetBody != nil {
				if out.Body, err = req.GetBody(); err != nil {
					return nil, err
				}
			}
		}
		out.URL.Host = hostport
		out.URL.Scheme = "http"
		if p := a.cluster.Spec().Protocol; p == "tls" || p == "h2" {
			out.URL.Scheme = "https"
		}
		var cancel context.CancelFunc // only with a per-try timeout
		if d := time.Duration(rt.Timeouts.BackendRequest); d > 0 {
			var actx context.Context
			actx, cancel = context.WithTimeout(out.Context(), d)
			out = out.WithContext(actx)
		}
		client := a.cluster.Client()
		if a.upgrade {
			client = a.cluster.Transport()
		}
		resp, err := client.RoundTrip(out)
		a.rec.Upstream = hostport
		a.rec.UpstreamMS = float64(time.Since(start).Microseconds()) / 1000
		last := i >= retries
		if err != nil {
			if cancel != nil {
				cancel()
			}
			connFailure := isConnFailure(err)
			if !last && replayable && (connFailure || rt.Retry != nil) && req.Context().Err() == nil {
				sleep(req.Context(), backoff)
				continue
			}
			return nil, err
		}
		if !last && replayable && slices.Contains(codes, resp.StatusCode) {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if cancel != nil {
				cancel()
			}
			sleep(req.Context(), backoff)
			continue
		}
		if cancel == nil {
			return resp, nil
		}
		if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
			// An upgraded body must stay an io.ReadWriteCloser for ReverseProxy to splice it.
			resp.Body = &cancelOnCloseRW{ReadWriteCloser: rwc, cancel: cancel}
		} else {
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
		}
		return resp, nil
	}
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error { err := c.ReadCloser.Close(); c.cancel(); return err }

type cancelOnCloseRW struct {
	io.ReadWriteCloser
	cancel context.CancelFunc
}

func (c *cancelOnCloseRW) Close() error { err := c.ReadWriteCloser.Close(); c.cancel(); return err }

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// isConnFailure reports errors where the request never reached the upstream application.
func isConnFailure(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return upstream.ConnectionBroken(err)
}

// proxyError maps upstream failures to status codes: no healthy endpoint 503, timeout 504,
// anything else 502.
func (h *routeHandler) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	a, _ := r.Context().Value(attemptKey{}).(*attempt)
	upstreamError(w, a, err)
}

// upstreamError answers for a failed upstream exchange.
func upstreamError(w http.ResponseWriter, a *attempt, err error) {
	if a != nil {
		a.rec.Error = err.Error()
	}
	switch {
	case a != nil && a.body.err != nil && errors.Is(a.body.err, h1.ErrBodyReadTimeout):
		a.rec.Error = a.body.err.Error()
		httpError(w, "the request body did not arrive in time", http.StatusRequestTimeout)
	case a != nil && a.body.err != nil && a.ctx.Context != nil && a.ctx.Context.Err() != nil:
		a.rec.Error = a.body.err.Error()
		w.WriteHeader(499) // the client went away while sending its body
	case a != nil && a.body.err != nil:
		a.rec.Error = a.body.err.Error()
		httpError(w, "the request body is malformed or was cut off: "+a.body.err.Error(), http.StatusBadRequest)
	case errors.Is(err, errNoHealthy):
		httpError(w, "no healthy upstream", http.StatusServiceUnavailable)
	case a != nil && a.timedOut.Load(), errors.Is(err, context.DeadlineExceeded):
		httpError(w, "upstream request timeout", http.StatusGatewayTimeout)
	case errors.Is(err, context.Canceled):
		w.WriteHeader(499) // client went away
	default:
		httpError(w, "upstream connection failure", http.StatusBadGateway)
	}
}

// clientBody is the client's request body as the upstream exchange reads it, counting bytes
// and keeping the first read error, so a malformed, stalled or abandoned upload is answered
// (and logged) as the client's fault (400/408/499) rather than the upstream's (502).
type clientBody struct {
	io.ReadCloser
	n   int64
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

func applyHeaders(h http.Header, m *ir.HeaderModifier) {
	for _, p := range m.Set {
		h.Set(p.Name, p.Value)
	}
	for _, p := range m.Add {
		h.Add(p.Name, p.Value)
	}
	for _, n := range m.Remove {
		h.Del(n)
	}
}

// applyRewrite applies URLRewrite to the outgoing request.
func (h *routeHandler) applyRewrite(out, in *http.Request) {
	rw := h.rewrite
	if rw == nil {
		return
	}
	if rw.Hostname != "" {
		out.Host = rw.Hostname
	}
	if p := rw.Path; p != nil {
		out.URL.Path = h.rewritePath(in.URL.Path, p)
		out.URL.RawPath = ""
	}
}

func (h *routeHandler) rewritePath(path string, p *ir.PathRewrite) string {
	if p.FullPath != nil {
		return *p.FullPath
	}
	if p.PrefixReplace == nil || h.route.Match.PathType != ir.PathPrefix {
		return path
	}
	prefix := strings.TrimRight(h.route.Match.Path, "/")
	rest := strings.TrimPrefix(path, prefix)
	repl := *p.PrefixReplace
	switch {
	case repl == "/" || repl == "":
		if rest == "" {
			return "/"
		}
		return rest
	case rest == "" || rest == "/":
		return strings.TrimRight(repl, "/") + rest
	default:
		return strings.TrimRight(repl, "/") + rest
	}
}

// forwarded holds the X-Forwarded-* values for a request, computed from what the client sent.
type forwarded struct{ xff, proto, host string }

func forwardedFor(in *http.Request, scheme string) forwarded {
	f := forwarded{proto: scheme, host: in.Host}
	if in.TLS != nil {
		f.proto = "https"
	}
	if ip := clientIP(in); ip != "" {
		f.xff = ip
		if prior := in.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			f.xff = strings.Join(prior, ", ") + ", " + ip
		}
	}
	return f
}

// Shared single-value slices for constant header values. Header edits replace or append to
// a key's slice (append copies a full slice), never write into it, so sharing is safe.
var (
	valueHTTP  = []string{"http"}
	valueHTTPS = []string{"https"}
	valueEmpty = []string{""}
)

func (f forwarded) apply(h http.Header) {
	vals := [...]string{f.host, f.xff} // one allocation for both new values
	s := vals[:]
	h["X-Forwarded-Host"] = s[0:1:1]
	if f.xff != "" {
		h["X-Forwarded-For"] = s[1:2:2]
	}
	switch f.proto {
	case "http":
		h["X-Forwarded-Proto"] = valueHTTP
	case "https":
		h["X-Forwarded-Proto"] = valueHTTPS
	default:
		h["X-Forwarded-Proto"] = []string{f.proto}
	}
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// normalizeHost lower-cases and drops the port and a trailing dot, allocating only when needed.
func normalizeHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(h, "]"), "["), ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// newRequestID returns 128 random bits in hex. IDs need to be unique, not secret: the
// runtime's per-thread ChaCha8 generator gives that without a syscall or lock.
func newRequestID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// responseWriter records the status and bytes written, for the access log and timeouts.
type responseWriter struct {
	http.ResponseWriter
	// grpc: the request is gRPC, so errors the proxy answers are gRPC statuses.
	grpc        bool
	code        int
	written     int64
	wroteHeader atomic.Bool
}

func (w *responseWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		if w.wroteHeader.Swap(true) {
			return
		}
		w.code = code
		// A proxy passes the upstream's headers as they are: no Content-Type means none, not
		// one net/http would guess from the body.
		if h := w.Header(); h.Get("Content-Type") == "" {
			h["Content-Type"] = nil
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader.Load() {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	return n, err
}

func (w *responseWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach Flush, Hijack (WebSocket) and deadlines.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush streams buffered data to the client.
func (w *responseWriter) Flush() {
	if !w.wroteHeader.Load() {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// bufferPool shares 32 KiB copy buffers between requests.
type bufferPool struct{}

var copyBuffers = make(chan []byte, 256)

func (bufferPool) Get() []byte {
	select {
	case b := <-copyBuffers:
		return b
	default:
		return make([]byte, 32<<10)
	}
}

func (bufferPool) Put(b []byte) {
	select {
	case copyBuffers <- b:
	default:
	}
}

// isGRPC reports whether a request is gRPC (any application/grpc content type).
func isGRPC(r *http.Request) bool {
	ct := r.Header["Content-Type"]
	return len(ct) > 0 && strings.HasPrefix(ct[0], "application/grpc")
}

// httpError answers an error the proxy itself makes: an HTTP error page, or for gRPC requests
// a trailers-only gRPC response (HTTP 200, grpc-status mapped from the HTTP status as gRPC's
// "HTTP to gRPC status code mapping" does, grpc-message percent-encoded).
func httpError(w http.ResponseWriter, msg string, code int) {
	if rw, ok := w.(*responseWriter); ok && rw.grpc {
		h := rw.Header()
		h["Content-Type"] = []string{"application/grpc"}
		h["Grpc-Status"] = []string{strconv.Itoa(grpcStatus(code))}
		h["Grpc-Message"] = []string{url.PathEscape(msg)}
		rw.WriteHeader(http.StatusOK)
		return
	}
	http.Error(w, msg, code)
}

// grpcStatus maps an HTTP status to a gRPC status code.
func grpcStatus(code int) int {
	switch code {
	case http.StatusBadRequest:
		return 13 // INTERNAL
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusNotFound:
		return 12 // UNIMPLEMENTED
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return 14 // UNAVAILABLE
	}
	return 2 // UNKNOWN
}
