package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"apoxy.dev/apoxy/internal/proxy/filter"
	"apoxy.dev/apoxy/internal/proxy/h1"
	"apoxy.dev/apoxy/internal/proxy/h2"
	"apoxy.dev/apoxy/internal/proxy/upstream"
)

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
	case a != nil && a.body.err != nil && (errors.Is(a.body.err, h1.ErrBodyReadTimeout) || errors.Is(a.body.err, h2.ErrBodyReadTimeout)):
		a.rec.Error = a.body.err.Error()
		httpError(w, "the request body did not arrive in time", http.StatusRequestTimeout)
	case a != nil && a.body.err != nil && a.ctx != nil && a.ctx.Context.Err() != nil:
		a.rec.Error = a.body.err.Error()
		w.WriteHeader(499) // the client went away while sending its body
	case a != nil && a.body.err != nil:
		a.rec.Error = a.body.err.Error()
		httpError(w, "the request body is malformed or was cut off: "+a.body.err.Error(), http.StatusBadRequest)
	case errors.Is(err, upstream.ErrOverloaded):
		a.flag(filter.FlagOverloaded)
		if a != nil {
			a.handler.s.metrics.overloaded.WithLabelValues(a.cluster.Spec().Name).Inc()
		}
		w.Header().Set("X-Apoxy-Overloaded", "true")
		httpError(w, "the backend's circuit breaker is open (overloaded)", http.StatusServiceUnavailable)
	case errors.Is(err, errNoHealthy):
		a.flag(filter.FlagNoHealthyUpstream)
		httpError(w, "no healthy upstream", http.StatusServiceUnavailable)
	case !a.requestTimedOut() && isDial(err):
		// Includes a TrafficPolicy's connect timeout: the connection failed, not the request.
		a.flag(filter.FlagUpstreamConnectFailure)
		httpError(w, "upstream connection failure", http.StatusBadGateway)
	case a.requestTimedOut(), errors.Is(err, context.DeadlineExceeded):
		a.flag(filter.FlagUpstreamTimeout)
		httpError(w, "upstream request timeout", http.StatusGatewayTimeout)
	case errors.Is(err, context.Canceled):
		w.WriteHeader(499) // client went away
	default:
		a.flag(filter.FlagUpstreamConnectFailure)
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
	// guard sees uploads as stream activity (nil: the route has no stream timeouts).
	guard *streamGuard
	// cap copies the first bytes for the content log (nil: not captured).
	cap *capture
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if n > 0 && b.cap != nil {
		b.cap.add(&b.cap.req, &b.cap.reqTrunc, p[:n])
	}
	if n > 0 && b.guard != nil {
		b.guard.touch()
	}
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// httpError answers an error the proxy itself makes: an HTTP error page, or for gRPC requests
// a trailers-only gRPC response (HTTP 200, grpc-status mapped from the HTTP status as gRPC's
// "HTTP to gRPC status code mapping" does, grpc-message percent-encoded).
func httpError(w http.ResponseWriter, msg string, code int) {
	if rw := innermost(w); rw != nil && rw.grpc {
		h := w.Header()
		h["Content-Type"] = []string{"application/grpc"}
		h["Grpc-Status"] = []string{strconv.Itoa(grpcStatus(code))}
		h["Grpc-Message"] = []string{url.PathEscape(msg)}
		w.WriteHeader(http.StatusOK)
		return
	}
	http.Error(w, msg, code)
}

// innermost finds the request's own responseWriter under the writers stages wrapped it in.
func innermost(w http.ResponseWriter) *responseWriter {
	for {
		if rw, ok := w.(*responseWriter); ok {
			return rw
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
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

// isDial reports whether err is a failure to open the upstream connection.
func isDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
