package proxy

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"apoxy.dev/apoxy/internal/proxy/filter"
	"apoxy.dev/apoxy/internal/proxy/upstream"
)

// attempt carries one request's upstream choice through ReverseProxy into the transport.
type attempt struct {
	cluster   *upstream.Cluster
	port      int32
	handler   *routeHandler
	rec       *accessRecord
	x         *filter.Exchange
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
	// retry reports whether another attempt may follow this one, taking it from the budget.
	retry := func(i int, ok bool) bool {
		if i >= pol.attempts || !ok || !replayable || req.Context().Err() != nil {
			return false
		}
		if pol.budget != nil && !pol.budget.allow(time.Now()) {
			a.flag(filter.FlagRetryLimitExceeded)
			return false
		}
		return true
	}
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
		var actx context.Context
		if d := time.Duration(rt.Timeouts.BackendRequest); d > 0 {
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
		if err != nil {
			perTry := actx != nil && actx.Err() != nil && req.Context().Err() == nil
			if cancel != nil {
				cancel()
			}
			f := classify(err, perTry)
			if retry(i, pol.retryError(req.Method, f)) {
				sleep(req.Context(), pol.backoff(i))
				continue
			}
			if i > 0 && i >= pol.attempts {
				a.flag(filter.FlagRetryLimitExceeded)
			}
			return nil, err
		}
		if pol.retryStatus(req.Method, resp.StatusCode) {
			if retry(i, true) {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
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

// flag records an access-log response flag on the exchange.
func (a *attempt) flag(f filter.Flags) {
	if a != nil && a.x != nil {
		a.x.Flags |= f
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
