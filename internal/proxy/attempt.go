package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"apoxy.dev/apoxy/internal/proxy/filter"
	"apoxy.dev/apoxy/internal/proxy/upstream"
)

// attempt carries one request's upstream choice through ReverseProxy into the transport.
type attempt struct {
	cluster *upstream.Cluster
	port    int32
	handler *routeHandler
	rec     *accessRecord
	x       *filter.Exchange
	// release holds the response body of the final attempt; setCookie is a new affinity
	// cookie for the response.
	release   releaseOnClose
	setCookie string
	timedOut  atomic.Bool
	forwarded forwarded
	// upgrade: a protocol upgrade (WebSocket), which needs the full transport.
	upgrade bool
	// trailers: the client asked for trailers (TE: trailers), asked of the upstream too.
	trailers bool
	// body wraps the client's request body: what was read and how reading it failed.
	body clientBody
	// ctx is the request context given to the cluster's HTTP/1.1 client (nil on the full
	// transport's path). It is allocated apart from the request's state, which is reused: a
	// dial or a per-try timeout may outlive the request holding it (a timer's cancel reads
	// its parent).
	ctx *deadlineCtx
	// cancel cancels the context of the full transport's exchange (nil on the HTTP/1.1
	// client's path, whose bodies abort themselves).
	cancel context.CancelFunc
	// guard enforces the route's stream timeouts (nil: none).
	guard *streamGuard
	// switched: the upstream accepted the protocol upgrade (101).
	switched bool
	// headIn: the final attempt's response head arrived (the request timeout no longer
	// applies; read by the full transport's timer).
	headIn atomic.Bool
	// trace and span are the route's tracing and the request's span (nil: not traced):
	// each try gets a child span, and its context goes upstream.
	trace *tracing
	span  trace.Span
	tc    traceContext
}

type attemptKey struct{}

// requestTimedOut reports whether the route's request timeout has passed: the full
// transport's timer fired, or the HTTP/1.1 path's deadline is behind us (a dial that failed
// on it, e.g. after a fault delay used up the time, is a request timeout, not a connect
// failure).
func (a *attempt) requestTimedOut() bool {
	if a == nil {
		return false
	}
	return a.timedOut.Load() || (a.ctx != nil && !a.ctx.deadline.IsZero() && !time.Now().Before(a.ctx.deadline))
}

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

// roundTrip sends req to an endpoint of the attempt's cluster, retrying as the route's
// policy says: on the failures it lists, for the methods it allows, with exponential backoff
// and full jitter, within its budget, and only when the body can be replayed.
func (a *attempt) roundTrip(req *http.Request) (*http.Response, error) {
	rt := a.handler.route
	pol := a.handler.retry
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	var triedBuf [4]netip.Addr
	tried := triedBuf[:0]
	start := time.Now()
	if pol.budget != nil {
		pol.budget.request(start)
	}
	// retry reports whether another attempt may follow this one, taking it from the budget
	// unless free: a connection that could not be opened, retried on an endpoint this request
	// has not tried, sent nothing to any backend and sends it nothing twice — it spreads the
	// request rather than amplifying it, which is what the budget bounds. (Before, an endpoint
	// refusing connections that outlier detection could not eject, its ejection slots taken,
	// failed requests beyond the budget's percent though healthy endpoints were idle.)
	retry := func(i int, ok, free bool) bool {
		if i >= pol.attempts || !ok || !replayable || req.Context().Err() != nil {
			return false
		}
		if pol.budget != nil && !free && !pol.budget.allow(time.Now()) {
			a.flag(filter.FlagRetryLimitExceeded)
			a.handler.s.metrics.budgetExhausted.WithLabelValues(rt.Name).Inc()
			return false
		}
		a.handler.s.metrics.retries.WithLabelValues(rt.Name).Inc()
		return true
	}
	// The consistent-hash key (when the Backend's load balancer hashes) is computed once; a
	// new affinity cookie is set on the response, whatever it is.
	key, setCookie := a.cluster.HashKey(req)
	if setCookie != "" {
		a.setCookie = setCookie
		if a.upgrade && a.x != nil {
			a.x.W.Header().Add("Set-Cookie", setCookie) // ReverseProxy adds the upstream's to it
		}
	}
	for i := 0; ; i++ {
		adm, ok := a.cluster.Admit(i > 0)
		if !ok {
			return nil, upstream.ErrOverloaded
		}
		addr, err := a.cluster.PickKey(tried, key)
		if err != nil {
			adm.Release()
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
		out.URL.Scheme = a.cluster.Scheme()
		var cancel context.CancelFunc // only with a per-try timeout
		var actx context.Context
		if d := time.Duration(rt.Timeouts.BackendRequest); d > 0 {
			actx, cancel = context.WithTimeout(out.Context(), d)
			out = out.WithContext(actx)
		}
		client := a.cluster.Client()
		if a.upgrade {
			client = a.cluster.Transport()
		}
		var tspan trace.Span
		if a.trace != nil {
			tspan = a.trace.startAttempt(a.span, &a.tc, out, i, hostport)
		}
		addr.Begin()
		resp, err := client.RoundTrip(out)
		if tspan != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			endAttempt(tspan, status, err)
		}
		a.rec.Upstream = hostport
		a.rec.UpstreamMS = float64(time.Since(start).Microseconds()) / 1000
		if err != nil {
			addr.End()
			adm.Release()
			perTry := actx != nil && actx.Err() != nil && req.Context().Err() == nil
			if cancel != nil {
				cancel()
			}
			if errors.Is(err, upstream.ErrOverloaded) {
				return nil, err // the breaker's queue is full: answered at once, never retried
			}
			if req.Context().Err() == nil {
				a.cluster.Report(addr, 0, err)
			}
			f := classify(err, perTry)
			if retry(i, pol.retryError(req.Method, f), f == failConnect && a.cluster.Untried(tried)) {
				sleep(req.Context(), pol.backoff(i))
				continue
			}
			if i > 0 && i >= pol.attempts {
				a.flag(filter.FlagRetryLimitExceeded)
			}
			return nil, err
		}
		a.cluster.Report(addr, resp.StatusCode, nil)
		if pol.retryStatus(req.Method, resp.StatusCode) || pol.retryGRPC(resp) {
			if retry(i, true, false) {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				addr.End()
				adm.Release()
				if cancel != nil {
					cancel()
				}
				sleep(req.Context(), pol.backoff(i))
				continue
			}
			if i > 0 && i >= pol.attempts {
				a.flag(filter.FlagRetryLimitExceeded)
			}
		}
		a.headIn.Store(true)
		return a.holdBody(resp, addr, adm, cancel), nil
	}
}

// holdBody makes the final attempt's endpoint hold, breaker admission and per-try context
// last until its response body is closed (and watches an upgraded connection's activity).
// Kept out of roundTrip so its frame stays small: an HTTP/2 stream's goroutine starts with a
// small stack, and roundTrip sits on its deepest path (the upstream write).
//
//go:noinline
func (a *attempt) holdBody(resp *http.Response, addr *upstream.Address, adm upstream.Admission, cancel context.CancelFunc) *http.Response {
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = &releaseOnCloseRW{ReadWriteCloser: rwc, addr: addr, adm: adm}
		a.switched = true
		if a.guard != nil && a.cancel != nil {
			// Bytes either way through the upgraded connection are stream activity;
			// cancelling the context closes it (ReverseProxy watches the context).
			resp.Body = &guardedRW{rwc: resp.Body.(io.ReadWriteCloser), g: a.guard}
			a.guard.start(a.cancel)
		}
	} else {
		a.release = releaseOnClose{ReadCloser: resp.Body, addr: addr, adm: adm}
		resp.Body = &a.release
	}
	if cancel == nil {
		return resp
	}
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		// An upgraded body must stay an io.ReadWriteCloser for ReverseProxy to splice it.
		resp.Body = &cancelOnCloseRW{ReadWriteCloser: rwc, cancel: cancel}
	} else {
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	}
	return resp
}

// flag records an access-log response flag on the exchange.
func (a *attempt) flag(f filter.Flags) {
	if a != nil && a.x != nil {
		a.x.Flags |= f
	}
}

// releaseOnClose ends an attempt's hold on its endpoint and breaker admission when the
// response body is closed (kept inside the attempt: no allocation).
type releaseOnClose struct {
	io.ReadCloser
	addr *upstream.Address
	adm  upstream.Admission
	done bool
}

func (r *releaseOnClose) Close() error {
	err := r.ReadCloser.Close()
	if !r.done {
		r.done = true
		r.addr.End()
		r.adm.Release()
	}
	return err
}

// Abort passes on to the body when it can be aborted (streams stop at once when the client
// goes away).
func (r *releaseOnClose) Abort() {
	if ab, ok := r.ReadCloser.(interface{ Abort() }); ok {
		ab.Abort()
	}
}

type releaseOnCloseRW struct {
	io.ReadWriteCloser
	addr *upstream.Address
	adm  upstream.Admission
	once sync.Once
}

func (r *releaseOnCloseRW) Close() error {
	err := r.ReadWriteCloser.Close()
	r.once.Do(func() { r.addr.End(); r.adm.Release() })
	return err
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error { err := c.ReadCloser.Close(); c.cancel(); return err }

// Abort ends the attempt's context and passes on to the body when it can be aborted.
func (c *cancelOnClose) Abort() {
	c.cancel()
	if ab, ok := c.ReadCloser.(interface{ Abort() }); ok {
		ab.Abort()
	}
}

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
