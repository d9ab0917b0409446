package filter

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"

	"apoxy.dev/apoxy/internal/auth/extauthz"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/telemetry/span"
)

// extAuth asks an external authorization service whether a request may pass (an
// AuthPolicy's extAuth block; internal/auth/extauthz speaks Envoy's gRPC Authorization API or
// plain HTTP). It runs last of the auth stages, so the service sees the verified identity
// (claim headers, the basic-auth user); a request refused earlier never reaches it. The
// headers the service may set upstream are stripped from the client's request first, so a
// client cannot pre-set them. A failure of the service (timeout, unreachable, a 5xx or a
// broken answer) follows failureMode: FailOpen passes (logged), FailClosed answers
// statusOnError.
type extAuth struct {
	e       *ir.ExtAuth
	client  extauthz.Client
	send    extauthz.HeaderFilter
	strip   []string // canonical headersToUpstream
	timeout time.Duration
	meta    map[string]string
	// latency observes calls by outcome; decided counts decisions.
	latency map[extauthz.Outcome]prometheus.Observer
	decided map[string]prometheus.Counter
	// unavailable: the block cannot run (its Backend is unusable); requests fail closed (503).
	unavailable string
}

var extAuthOutcomes = []extauthz.Outcome{extauthz.OutcomeAllowed, extauthz.OutcomeDenied, extauthz.OutcomeTimeout, extauthz.OutcomeCanceled,
	extauthz.OutcomeUnavailable, extauthz.OutcomeProtocolError, extauthz.OutcomeServiceError, extauthz.OutcomeInvalidRequest}

func newExtAuth(r *ir.Route, env *Env) (Stage, error) {
	if r.Auth == nil || r.Auth.ExtAuth == nil {
		return nil, nil
	}
	e := r.Auth.ExtAuth
	s := &extAuth{e: e, send: extauthz.NewHeaderFilter(e.HeadersToAuthz), timeout: time.Duration(e.Timeout), unavailable: e.Unavailable,
		latency: map[extauthz.Outcome]prometheus.Observer{}, decided: map[string]prometheus.Counter{}}
	if s.timeout <= 0 {
		s.timeout = 2 * time.Second
	}
	for _, h := range e.HeadersToUpstream {
		s.strip = append(s.strip, http.CanonicalHeaderKey(h))
	}
	if e.RouteMetadata {
		s.meta = map[string]string{"route": r.Name, "namespace": r.Origin.Namespace, "policy": e.Policy}
	}
	for _, o := range extAuthOutcomes {
		if env != nil && env.Metrics != nil && env.Metrics.ExtAuthz != nil {
			s.latency[o] = env.Metrics.ExtAuthz.WithLabelValues(e.Policy, string(o))
		}
	}
	for _, d := range []string{"allowed", "denied", "fail_open", "fail_closed", "unavailable", "body_too_large"} {
		s.decided[d] = env.authCounter("ext_authz", e.Policy, "", d)
	}
	if s.unavailable != "" {
		return s, nil
	}
	// The client (its connection) is kept across swaps while the settings are unchanged.
	key, _ := json.Marshal(e)
	client, err := keep(env, "extauthz/"+string(key), func() (*trackedClient, error) {
		c, err := newExtAuthClient(e, env)
		if err != nil {
			return nil, err
		}
		return &trackedClient{Client: c}, nil
	})
	if err != nil {
		s.unavailable = err.Error()
		return s, nil
	}
	watch(env, e.ID, "external authorization service "+e.Backend, client.health)
	s.client = client
	return s, nil
}

// trackedClient remembers whether the service's last answer was a failure, for the policy's
// Healthy condition.
type trackedClient struct {
	extauthz.Client
	last atomic.Pointer[error]
}

func (c *trackedClient) Check(ctx context.Context, r *extauthz.Request) (*extauthz.Decision, error) {
	d, err := c.Client.Check(ctx, r)
	switch o := extauthz.OutcomeOf(d, err); o {
	case extauthz.OutcomeAllowed, extauthz.OutcomeDenied:
		c.last.Store(nil)
	case extauthz.OutcomeCanceled, extauthz.OutcomeInvalidRequest:
		// the client went away, or the request could not be sent: says nothing of the service
	default:
		c.last.Store(&err)
	}
	return d, err
}

func (c *trackedClient) health() error {
	if p := c.last.Load(); p != nil {
		return *p
	}
	return nil
}

// Close closes the client's connection.
func (c *trackedClient) Close() error {
	if cl, ok := c.Client.(interface{ Close() error }); ok {
		return cl.Close()
	}
	return nil
}

func newExtAuthClient(e *ir.ExtAuth, env *Env) (extauthz.Client, error) {
	if e.GRPC {
		backend, port := e.Backend, e.BackendPort
		return extauthz.NewGRPC(extauthz.GRPCConfig{
			Target: "ext-authz:" + strconv.Itoa(int(port)),
			Dial: func(ctx context.Context, _ string) (net.Conn, error) {
				c := env.cluster(backend)
				if c == nil {
					return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errBackendGone(backend)}
				}
				return c.DialEndpoint(ctx, port, []string{"h2"})
			},
			ContextExtensions: e.ContextExtensions, HeadersToUpstream: e.HeadersToUpstream, HeadersToClient: e.HeadersToClient,
		})
	}
	return extauthz.NewHTTP(extauthz.HTTPConfig{URL: "http://ext-authz", PathPrefix: e.PathPrefix,
		Transport: backendTransport{env: env, backend: e.Backend, port: e.BackendPort}, HeadersToUpstream: e.HeadersToUpstream, HeadersToClient: e.HeadersToClient})
}

type errBackendGone string

func (e errBackendGone) Error() string { return "backend " + string(e) + " is not available" }

func (s *extAuth) Serve(x *Exchange) bool {
	h := x.Req.Header
	for _, k := range s.strip {
		delete(h, k)
	}
	if s.unavailable != "" {
		inc(s.decided["unavailable"])
		x.Auth = appendDecision(x.Auth, "ext_authz:unavailable")
		x.Error("authorization is unavailable", http.StatusServiceUnavailable)
		return true
	}
	req := &extauthz.Request{ID: h.Get("X-Request-Id"), Method: x.Req.Method, Scheme: x.Scheme, Host: x.Req.Host, Path: x.Req.URL.RequestURI(),
		Protocol: x.Req.Proto, Headers: s.send.Filter(h), ContentLength: x.Req.ContentLength, Received: x.Start, RouteMetadata: s.meta}
	if a := x.ClientAddr(); a.IsValid() {
		port := uint16(0)
		if ap, err := netip.ParseAddrPort(x.Req.RemoteAddr); err == nil {
			port = ap.Port()
		}
		req.ClientAddr = netip.AddrPortFrom(a, port)
	}
	if max := s.e.BodyMaxBytes; max > 0 && x.Req.Body != nil && x.Req.Body != http.NoBody {
		buf, partial, rest, err := extauthz.BufferBody(x.Req.Body, max)
		if err != nil {
			x.Error("bad request body", http.StatusBadRequest)
			return true
		}
		x.Req.Body = rest
		if partial && !s.e.BodyAllowPartial {
			inc(s.decided["body_too_large"])
			x.Auth = appendDecision(x.Auth, "ext_authz:body_too_large")
			x.Error("request body too large for authorization", http.StatusRequestEntityTooLarge)
			return true
		}
		req.Body, req.BodyPartial = buf, partial
	}
	ctx, cancel := context.WithTimeout(x.Req.Context(), s.timeout)
	ctx, end := span.Start(ctx, "ext_authz", attribute.String("apoxy.policy", s.e.Policy))
	start := time.Now()
	d, err := s.client.Check(ctx, req)
	cancel()
	if err == nil && !d.Allowed {
		end(errors.New("denied"))
	} else {
		end(err)
	}
	outcome := extauthz.OutcomeOf(d, err)
	if o := s.latency[outcome]; o != nil {
		o.Observe(time.Since(start).Seconds())
	}
	switch {
	case err != nil && s.e.FailOpen:
		inc(s.decided["fail_open"])
		x.Auth = appendDecision(x.Auth, "ext_authz:fail_open:"+string(outcome))
		return false
	case err != nil:
		inc(s.decided["fail_closed"])
		x.Auth = appendDecision(x.Auth, "ext_authz:error:"+string(outcome))
		x.Error("authorization is unavailable", s.e.StatusOnError)
		return true
	case !d.Allowed:
		inc(s.decided["denied"])
		x.Auth = appendDecision(x.Auth, "ext_authz:denied")
		wh := x.W.Header()
		for k, v := range d.HeadersToClient {
			wh[k] = v
		}
		x.W.WriteHeader(d.Status)
		x.W.Write(d.Body)
		return true
	}
	inc(s.decided["allowed"])
	x.Auth = appendDecision(x.Auth, "ext_authz:allowed")
	d.ApplyUpstream(h)
	if len(d.Response) > 0 {
		x.OnResponse(extAuthResponse(d.Response))
	}
	return false
}

// extAuthResponse adds an allowing answer's response headers to the client's response.
type extAuthResponse []extauthz.HeaderMutation

func (m extAuthResponse) Response(_ *Exchange, h http.Header, _ int) { extauthz.ApplyMutations(h, m) }
