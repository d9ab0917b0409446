package upstream

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"apoxy.dev/apoxy/internal/ir"
)

// ErrOverloaded is returned by a cluster's clients when its circuit breaker refuses work at
// the connection level: a request would wait for a connection beyond MaxPendingRequests, or the
// transport would open a connection beyond MaxConnections. Like a refused Admit, the proxy
// answers it 503 with "x-apoxy-overloaded: true" at once and never retries it; outlier
// detection does not count it against the endpoint.
var ErrOverloaded = errors.New("upstream: circuit breaker open (overloaded)")

// The circuit breaker (ir.CircuitBreaker, per cluster and data-plane instance). A zero limit
// is no limit; there are no hidden defaults.
//
//   - Parallel requests: attempts admitted (Admit) and not yet released, whether waiting for
//     a connection, in exchange or streaming a response body. Over MaxParallelRequests, Admit
//     refuses.
//   - Parallel retries: the subset of those that are retries. Over MaxParallelRetries, Admit
//     refuses a retry.
//   - Connections: open connections of the cluster's HTTP/1.1 client and of its transport
//     (HTTP/2 backends, protocol upgrades). Health probes have a pool of their own outside
//     the limit, and TCP/UDP relays are not counted.
//   - Pending requests: requests of the HTTP/1.1 client waiting for a connection because the
//     cluster has MaxConnections open and none idle for their endpoint (an idle connection to
//     another endpoint is closed to make room first). Pending therefore only exists under a
//     connection limit, as in Envoy's HTTP/1 pool: without MaxConnections nothing ever waits
//     and MaxPendingRequests has nothing to count. Over MaxPendingRequests the request fails
//     at once with ErrOverloaded; a waiting request gives up at its context's end or deadline.
//     The transport has no queue of ours: at the limit it refuses the dial with ErrOverloaded.
//   - MaxRequestsPerConnection: the HTTP/1.1 client sends "Connection: close" on a
//     connection's last request and closes it after the response (HTTP/2 connections are not
//     capped).
type breaker struct {
	maxRequests, maxRetries, maxConns, maxPending int64
	maxPerConn                                    int
	st                                            *breakerState
}

// breakerState holds a breaker's counters. A cluster replaced by a change of its Backend
// keeps them, so work admitted by the old cluster still counts until it is released.
type breakerState struct {
	requests, retries, conns, pending                                 atomic.Int64
	requestOverflows, retryOverflows, connOverflows, pendingOverflows atomic.Uint64
	// wake is closed (and cleared) when a connection is released or returned idle while
	// requests are pending; each pending request then looks again.
	wakeMu sync.Mutex
	wake   chan struct{}
}

func newBreaker(cb *ir.CircuitBreaker, st *breakerState) *breaker {
	if st == nil {
		st = &breakerState{}
	}
	return &breaker{
		maxRequests: int64(max(cb.MaxParallelRequests, 0)),
		maxRetries:  int64(max(cb.MaxParallelRetries, 0)),
		maxConns:    int64(max(cb.MaxConnections, 0)),
		maxPending:  int64(max(cb.MaxPendingRequests, 0)),
		maxPerConn:  max(cb.MaxRequestsPerConnection, 0),
		st:          st,
	}
}

// Admission is an attempt admitted by the circuit breaker; Release it exactly once when the
// attempt is over. The zero Admission (no breaker) releases nothing. It is a value, so
// admitting allocates nothing.
type Admission struct {
	st    *breakerState
	retry bool
}

// Admit asks the circuit breaker for one attempt to this cluster: retry is true for the
// second and later attempts of a request. ok false means a limit is reached (parallel
// requests, or parallel retries for a retry): answer 503 with "x-apoxy-overloaded: true" at
// once and do not retry (for a refused retry the proxy may return the previous attempt's
// outcome instead, as Envoy does). Otherwise the attempt counts until Release; call Admit
// before picking the endpoint and Release when the response body is closed or the attempt
// failed. Without a circuit breaker it is one nil check.
func (c *Cluster) Admit(retry bool) (adm Admission, ok bool) {
	b := c.breaker
	if b == nil {
		return Admission{}, true
	}
	st := b.st
	if n := st.requests.Add(1); b.maxRequests > 0 && n > b.maxRequests {
		st.requests.Add(-1)
		st.requestOverflows.Add(1)
		return Admission{}, false
	}
	if retry {
		if n := st.retries.Add(1); b.maxRetries > 0 && n > b.maxRetries {
			st.retries.Add(-1)
			st.requests.Add(-1)
			st.retryOverflows.Add(1)
			return Admission{}, false
		}
	}
	return Admission{st: st, retry: retry}, true
}

// Release ends an admitted attempt.
func (a Admission) Release() {
	if a.st == nil {
		return
	}
	a.st.requests.Add(-1)
	if a.retry {
		a.st.retries.Add(-1)
	}
}

// BreakerStats are a cluster's circuit-breaker gauges and overflow counters, for metrics.
type BreakerStats struct {
	// Gauges: attempts admitted, retries among them, open connections, requests waiting for
	// a connection.
	Requests, Retries, Connections, Pending int64
	// Counters of refusals: Admit over MaxParallelRequests, over MaxParallelRetries, a
	// transport dial over MaxConnections, a request over MaxPendingRequests.
	RequestOverflows, RetryOverflows, ConnectionOverflows, PendingOverflows uint64
	// The limits (0: none).
	MaxRequests, MaxRetries, MaxConnections, MaxPending int64
}

// BreakerStats returns the circuit breaker's counters (zero without a breaker).
func (c *Cluster) BreakerStats() BreakerStats {
	if c.breaker == nil {
		return BreakerStats{}
	}
	st := c.breaker.st
	return BreakerStats{
		Requests: st.requests.Load(), Retries: st.retries.Load(), Connections: st.conns.Load(), Pending: st.pending.Load(),
		RequestOverflows: st.requestOverflows.Load(), RetryOverflows: st.retryOverflows.Load(),
		ConnectionOverflows: st.connOverflows.Load(), PendingOverflows: st.pendingOverflows.Load(),
		MaxRequests: c.breaker.maxRequests, MaxRetries: c.breaker.maxRetries, MaxConnections: c.breaker.maxConns, MaxPending: c.breaker.maxPending,
	}
}

// acquireConn counts a connection about to be opened; false at the limit (max 0: none).
func (st *breakerState) acquireConn(max int64) bool {
	if max <= 0 {
		st.conns.Add(1)
		return true
	}
	for {
		n := st.conns.Load()
		if n >= max {
			return false
		}
		if st.conns.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// releaseConn uncounts a closed connection (or a failed dial) and wakes pending requests.
func (st *breakerState) releaseConn() {
	st.conns.Add(-1)
	st.notify()
}

// notify wakes the pending requests, if any (one atomic load otherwise).
func (st *breakerState) notify() {
	if st.pending.Load() == 0 {
		return
	}
	st.wakeMu.Lock()
	if st.wake != nil {
		close(st.wake)
		st.wake = nil
	}
	st.wakeMu.Unlock()
}

// waitChan returns the channel the next notify closes. A pending request takes it before
// looking at the pool one last time, so a release in between is not missed.
func (st *breakerState) waitChan() <-chan struct{} {
	st.wakeMu.Lock()
	defer st.wakeMu.Unlock()
	if st.wake == nil {
		st.wake = make(chan struct{})
	}
	return st.wake
}

// countingDial wraps a transport's dial so its connections count against MaxConnections; a
// dial at the limit fails with ErrOverloaded.
func (b *breaker) countingDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !b.st.acquireConn(b.maxConns) {
			b.st.connOverflows.Add(1)
			return nil, ErrOverloaded
		}
		nc, err := dial(ctx, network, addr)
		if err != nil {
			b.st.releaseConn()
			return nil, err
		}
		return &countedConn{Conn: nc, st: b.st}, nil
	}
}

// countedConn uncounts its connection when closed (once, however often Close is called).
type countedConn struct {
	net.Conn
	st     *breakerState
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.st.releaseConn()
	}
	return err
}
