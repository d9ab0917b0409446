package filter

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"time"

	"apoxy.dev/apoxy/internal/proxy/ratelimit"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/upstream"
)

// Phase orders the stages of a request. Policies attach to a phase, never to the handler;
// within a phase, stages keep the order they were contributed in. docs/architecture.md has
// the table of what runs in each phase and what may stop the request there.
type Phase uint8

// The phases, in the order a request goes through them. Request ID and trace context are
// set by the handler before routing (so unrouted requests have them too); the response
// stages run as response hooks; the access log and metrics are written by the handler after
// the exchange. Phases with no stage yet are named so that the policies to come have a place.
const (
	PhaseCORS              Phase = iota // CORS preflights answered (a policy's cors block or the route's CORS filter)
	PhaseRateLimit                      // rate limits that need no identity (before the CPU cost of authentication)
	PhaseAuthentication                 // ext authz, JWT, OIDC, basic auth
	PhaseAuthorization                  // who may do what, after authentication
	PhaseRateLimitPostAuth              // rate limits keyed or matched by JWT claims
	PhaseFault                          // fault injection: delays and aborts
	PhaseEdgeFunction                   // edge-function filters
	PhaseRouteFilters                   // the route's own filters, in the order it lists them
	PhaseAction                         // redirect or direct response; otherwise the proxy forwards
	numPhases
)

var phaseNames = [numPhases]string{"cors", "rate-limit", "authentication", "authorization", "rate-limit-post-auth", "fault", "edge-function", "route-filters", "action"}

func (p Phase) String() string {
	if p < numPhases {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", p)
}

// Phases lists every phase in order (for docs and introspection).
func Phases() []Phase {
	out := make([]Phase, numPhases)
	for i := range out {
		out[i] = Phase(i)
	}
	return out
}

// Stage is one compiled step of a request's chain. Serve may edit x.Req (what the upstream
// will see), wrap x.W, register a response hook with x.OnResponse, or answer the request
// through x.W and return true, which ends the chain. Stages are built once per configuration
// and shared by every request, so they keep no per-request state of their own.
type Stage interface {
	Serve(x *Exchange) (answered bool)
}

// Contained is implemented by stages that keep nothing of a request once Serve, and the
// response hooks and writers it registered, returned: no goroutine, timer, cache or pool holds
// the exchange, its request, body or writer after that. The proxy reuses the memory of a
// request whose every stage is contained for the next one (one allocation less per request,
// the largest); a stage that is not (a mirror, an edge function, external authorization)
// makes its requests allocate afresh. A stage that implements it wrongly lets a later request
// see this one's state: when in doubt, do not.
type Contained interface {
	Contained()
}

// Contained reports whether every stage of c is Contained.
func (c Chain) Contained() bool {
	for _, s := range c {
		if _, ok := s.(Contained); !ok {
			return false
		}
	}
	return true
}

// ResponseHook edits a response head (status code and headers) before it is written. Hooks
// run once per request, in the order they were registered, on whatever the request is
// answered with.
type ResponseHook interface {
	Response(x *Exchange, h http.Header, code int)
}

// Upstreams resolves backend names to clusters at request time (mirrors need them).
type Upstreams interface {
	Cluster(name string) *upstream.Cluster
}

// Exchange is one request on its way through a chain. The proxy allocates it together with
// the rest of the request's state and fills it with Begin.
type Exchange struct {
	// Req is the request as it will go upstream: stages edit its Header, Host and URL in
	// place. Its URL is the exchange's own copy, so edits do not reach the server's.
	Req *http.Request
	// W answers the client. A stage that transforms the body (compression) wraps it.
	W http.ResponseWriter
	// Route is the route being served.
	Route *ir.Route
	// Scheme ("http" or "https") and Port are the listener's, for redirects that keep them.
	Scheme string
	Port   int32
	// Upstreams resolves backend names (nil: no cluster is known, mirrors are skipped).
	Upstreams Upstreams
	// Errors answers with an error the gateway makes (gRPC-aware in the proxy; default
	// http.Error). Stages use Error rather than writing error pages themselves.
	Errors func(w http.ResponseWriter, msg string, code int)
	// Start is when the request arrived (a fault delay counts toward the request timeout).
	Start time.Time
	// Flags are what the access log reports about the exchange (Envoy's response flags).
	Flags Flags
	// RateLimit is the rate limiter's decision for the access log ("" when no rule applied).
	RateLimit string
	// Identity is what authentication established about the client (zero: nothing).
	Identity Identity
	// Auth is the auth phases' decision for the access log: the method and provider that
	// authenticated the client, or what refused it ("" when no AuthPolicy applied).
	Auth string
	// Function names the edge function revision that filtered or answered the request, and
	// FunctionError why it failed, for the access log and `apoxy logs --function` ("": none).
	Function, FunctionError string

	url      url.URL
	client   netip.Addr
	rl       rateLimitState
	headDone bool
	headCode int
	// hooks and closers start in the exchange's own arrays (no allocation for the usual few).
	hooks     []ResponseHook
	closers   []io.Closer
	hookBuf   [3]ResponseHook
	closerBuf [1]io.Closer
}

// Begin readies x for a request: it takes its own copy of r's URL so stages may rewrite it.
func (x *Exchange) Begin(r *http.Request, w http.ResponseWriter) {
	x.url = *r.URL
	r.URL = &x.url
	x.Req, x.W = r, w
	x.hooks, x.closers = x.hookBuf[:0], x.closerBuf[:0]
	x.client = netip.Addr{}
	x.Identity, x.Auth = Identity{}, ""
	x.Function, x.FunctionError = "", ""
}

// Identity is what the authentication phase established about the client. Later phases
// (authorization rules, external authorization, rate limits keyed by claims, edge functions)
// read it; it holds only verified facts.
type Identity struct {
	// Authenticated: some authentication method succeeded.
	Authenticated bool
	// User is the basic-auth user name.
	User string
	// Provider names the JWT provider that verified the token ("oidc" for an OIDC session).
	Provider string
	// Claims are the verified token's claims (a JWT, or the OIDC ID token).
	Claims map[string]any
}

// ClientAddr is the client's address (after trusted-proxy handling), parsed once.
func (x *Exchange) ClientAddr() netip.Addr {
	if !x.client.IsValid() {
		if ap, err := netip.ParseAddrPort(x.Req.RemoteAddr); err == nil {
			x.client = ap.Addr().Unmap()
		} else if a, err := netip.ParseAddr(x.Req.RemoteAddr); err == nil {
			x.client = a.Unmap()
		}
	}
	return x.client
}

// SetClientAddr sets the client's address when it is not the peer's (a trusted proxy
// forwarded the request); call it after Begin.
func (x *Exchange) SetClientAddr(a netip.Addr) { x.client = a }

// OnResponse registers a hook to run on the response head.
func (x *Exchange) OnResponse(h ResponseHook) { x.hooks = append(x.hooks, h) }

// ResponseHead runs the registered hooks on a final response head (status >= 200, or 101)
// and returns the status to write (a hook may change it with SetResponseStatus). Writers
// call it just before the head goes out; it runs the hooks only the first time, so every
// writer in a wrapped stack may call it.
func (x *Exchange) ResponseHead(h http.Header, code int) int {
	if x.headDone || (code < 200 && code != http.StatusSwitchingProtocols) {
		return code
	}
	x.headDone = true
	x.headCode = code
	for _, hk := range x.hooks {
		hk.Response(x, h, x.headCode)
	}
	return x.headCode
}

// SetResponseStatus, called by a response hook, changes the status the head is written with
// (an edge function's response hook may). A switching-protocols head keeps its status, and
// only final statuses (200-599) are taken.
func (x *Exchange) SetResponseStatus(code int) {
	if x.headCode != http.StatusSwitchingProtocols && code >= 200 && code <= 599 {
		x.headCode = code
	}
}

// Defer registers c to be closed by Finish (a body encoder that must flush its tail).
func (x *Exchange) Defer(c io.Closer) { x.closers = append(x.closers, c) }

// Finish closes what stages deferred, last first. The proxy calls it once the answer is
// complete.
func (x *Exchange) Finish() {
	for i := len(x.closers) - 1; i >= 0; i-- {
		x.closers[i].Close()
		x.closers[i] = nil
	}
	x.closers = x.closers[:0]
}

// Error answers the request with an error made by the gateway.
func (x *Exchange) Error(msg string, code int) {
	if x.Errors != nil {
		x.Errors(x.W, msg, code)
		return
	}
	http.Error(x.W, msg, code)
}

// Chain is a compiled list of stages.
type Chain []Stage

// Run runs the stages in order until one answers; it reports whether one did.
func (c Chain) Run(x *Exchange) bool {
	for _, s := range c {
		if s.Serve(x) {
			return true
		}
	}
	return false
}

// Env is what stages may use beyond their route: the process's shared services. One Env
// serves every compile of a process, so state kept there (rate-limit counters) outlives
// configuration swaps.
type Env struct {
	// RateLimits holds Local rate-limit counters.
	RateLimits *ratelimit.Local
	// Global counts Global rate-limit rules (nil: no store configured; such rules then
	// follow their policy's failure mode).
	Global ratelimit.Store
	// Stores returns a store a Proxy names (ir.RateLimit.Store), nil when unknown.
	Stores func(name string) ratelimit.Store
	// Clusters returns the current cluster of an IR backend (nil when unknown), for the
	// gateway's own requests to Backends (JWKS, OIDC, external authorization).
	Clusters func(name string) *upstream.Cluster
	// Dial connects the gateway's own requests to hosts no Backend names, under the
	// destination policy of scope (upstream.Manager.Dial); RootCAs verify their TLS.
	Dial    func(ctx context.Context, scope, network, addr string) (net.Conn, error)
	RootCAs *x509.CertPool
	// Kept holds what stages build that outlives configuration swaps (nil: nothing is kept).
	Kept *Kept
	// Metrics are the stages' Prometheus instruments (nil: not counted).
	Metrics *Metrics
	// Functions loads and hosts edge functions (nil: routes using one answer 503).
	Functions Functions
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (e *Env) now() time.Time {
	if e == nil || e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

// Compile builds a route's chain: the stages contributed to each phase, the route's filters
// in their order, then its action when that is a redirect or a direct response. A route
// that forwards ends its chain without answering; the proxy then picks a backend and runs
// that backend's chain (CompileBackend) before forwarding.
func Compile(r *ir.Route, env *Env) (Chain, error) {
	type placed struct {
		phase Phase
		stage Stage
	}
	var all []placed
	for _, c := range routeStages {
		s, err := c.Build(r, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Name, err)
		}
		if s != nil {
			all = append(all, placed{c.Phase, s})
		}
	}
	for i := range r.Filters {
		s, err := build(&r.Filters[i], r, env)
		if err != nil {
			return nil, err
		}
		phase, ok := filterPhases[r.Filters[i].Type]
		if !ok {
			phase = PhaseRouteFilters
		}
		all = append(all, placed{phase, s})
	}
	slices.SortStableFunc(all, func(a, b placed) int { return int(a.phase) - int(b.phase) })
	out := make(Chain, len(all))
	for i, p := range all {
		out[i] = p.stage
	}
	return out, nil
}

// CompileBackend builds the chain of one backendRef's own filters, which run only for
// requests sent to that backend.
func CompileBackend(r *ir.Route, b *ir.WeightedBackend, env *Env) (Chain, error) {
	var out Chain
	for i := range b.Filters {
		s, err := build(&b.Filters[i], r, env)
		if err != nil {
			return nil, fmt.Errorf("backend %s: %w", b.Backend, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func build(f *ir.Filter, r *ir.Route, env *Env) (Stage, error) {
	b, ok := filters[f.Type]
	if !ok {
		return nil, fmt.Errorf("unknown filter %q", f.Type)
	}
	s, err := b(f, r, env)
	if err != nil {
		return nil, fmt.Errorf("filter %s: %w", f.Type, err)
	}
	return s, nil
}
