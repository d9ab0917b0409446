package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/upstream"
)

// failure classifies why an attempt failed, in the vocabulary of retry conditions.
type failure uint8

const (
	failConnect failure = 1 << iota // the connection could not be opened: the request never left
	failRefused                     // HTTP/2 REFUSED_STREAM: the backend did not process it
	failReset                       // the connection broke during the exchange
	failTimeout                     // the per-try timeout fired
	failGateway                     // 502, 503 or 504
	failServer                      // any 5xx
)

var conditionBits = map[string]failure{
	"ConnectFailure": failConnect, "RefusedStream": failRefused, "Reset": failReset,
	"Timeout": failTimeout, "GatewayError": failGateway | failConnect | failTimeout, "ServerError": failServer | failGateway,
}

// retryPolicy is a route's compiled retry settings.
type retryPolicy struct {
	attempts  int
	codes     []int
	base, max time.Duration
	on        failure
	// methods may be retried on any condition (nil: the idempotent methods).
	methods []string
	// grpcCodes are grpc-status codes retried when a gRPC response's head carries one.
	grpcCodes []int
	budget    *retryBudget
	// replayBodies: buffer small request bodies so retries can resend them. Only a route's
	// own retry policy asks for it; the default retries connection failures, before any
	// body byte was sent, so it costs no copy of every upload.
	replayBodies bool
}

// defaultRetry is the platform default: one retry when the connection fails, for any method
// when the request never reached the backend, else only for idempotent methods.
var defaultRetry = &retryPolicy{attempts: 1, on: failConnect | failRefused | failReset}

func newRetryPolicy(r *ir.Retry) *retryPolicy {
	if r == nil {
		return defaultRetry
	}
	p := &retryPolicy{attempts: r.Attempts, codes: r.Codes, base: time.Duration(r.Backoff), max: time.Duration(r.MaxBackoff), methods: r.Methods,
		grpcCodes: r.GRPCCodes, replayBodies: r.Attempts > 0}
	if p.max == 0 {
		p.max = 10 * p.base
	}
	if len(r.Conditions) == 0 {
		// An HTTPRoute retry without TrafficPolicy conditions: any failed attempt, as before.
		p.on = failConnect | failRefused | failReset | failTimeout
	}
	for _, c := range r.Conditions {
		p.on |= conditionBits[c]
	}
	if b := r.Budget; b != nil {
		p.budget = &retryBudget{percent: b.Percent, interval: time.Duration(b.Interval), minRetries: b.MinRetries, minInterval: time.Duration(b.MinInterval)}
		if p.budget.interval <= 0 {
			p.budget.interval = 10 * time.Second
		}
		if p.budget.minInterval <= 0 {
			p.budget.minInterval = time.Second
		}
	}
	return p
}

// methodAllowed: may this method be retried after f? A request that never reached the
// backend may always be retried.
func (p *retryPolicy) methodAllowed(method string, f failure) bool {
	if f&(failConnect|failRefused) != 0 && f&^(failConnect|failRefused) == 0 {
		return true
	}
	if p.methods == nil {
		return idempotent(method)
	}
	return slices.Contains(p.methods, method)
}

func (p *retryPolicy) retryError(method string, f failure) bool {
	return p.on&f != 0 && p.methodAllowed(method, f)
}

func (p *retryPolicy) retryStatus(method string, code int) bool {
	if slices.Contains(p.codes, code) {
		return p.methodAllowed(method, failServer)
	}
	var f failure
	switch {
	case code == 502 || code == 503 || code == 504:
		f = failGateway | failServer
	case code >= 500:
		f = failServer
	default:
		return false
	}
	return p.on&f != 0 && p.methodAllowed(method, f)
}

// retryGRPC: is this a gRPC answer whose status is one of the retried codes? Only a
// trailers-only answer (grpc-status in the head, no message sent) can be judged before the
// response starts. Every gRPC call is a POST: naming a code retries it whatever the methods
// list says, since the codes that may be listed mean the call was not carried out, or may be
// carried out again by the client's own retry policy (gRPC's retry design).
//
//go:noinline
func (p *retryPolicy) retryGRPC(resp *http.Response) bool {
	if len(p.grpcCodes) == 0 || resp.StatusCode != http.StatusOK {
		return false
	}
	v := resp.Header["Grpc-Status"]
	if len(v) != 1 {
		return false
	}
	code, err := strconv.Atoi(v[0])
	return err == nil && slices.Contains(p.grpcCodes, code)
}

// backoff is exponential with full jitter: a uniform wait in [0, min(max, base × 2^i)).
func (p *retryPolicy) backoff(i int) time.Duration {
	if p.base <= 0 {
		return 0
	}
	d := p.base << min(i, 20)
	if p.max > 0 && d > p.max {
		d = p.max
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// classify names why an attempt failed.
func classify(err error, perTryTimedOut bool) failure {
	var op *net.OpError
	switch {
	case errors.As(err, &op) && op.Op == "dial":
		return failConnect
	case errors.Is(err, upstream.ErrNoHealthyEndpoint):
		return failConnect
	case strings.Contains(err.Error(), "REFUSED_STREAM"):
		return failRefused
	case perTryTimedOut || errors.Is(err, context.DeadlineExceeded):
		return failTimeout
	}
	return failReset
}

// retryBudget lets retries be at most percent of the requests seen over the last interval,
// but always minRetries per minInterval, so a failing backend is not sent a retry storm. The
// interval slides (the previous window's counts weigh in by how much of it still overlaps),
// so the budget does not fall to nothing each time a window starts.
type retryBudget struct {
	percent               int
	interval, minInterval time.Duration
	minRetries            int

	mu                     sync.Mutex
	start, minStart        time.Time
	requests, retries      int
	prevRequests, prevRets int
	minUsed                int
}

// request counts one request toward the budget.
func (b *retryBudget) request(now time.Time) {
	b.mu.Lock()
	b.roll(now)
	b.requests++
	b.mu.Unlock()
}

func (b *retryBudget) roll(now time.Time) {
	if d := now.Sub(b.start); d >= b.interval {
		if d < 2*b.interval {
			b.prevRequests, b.prevRets = b.requests, b.retries
			b.start = b.start.Add(b.interval)
		} else {
			b.prevRequests, b.prevRets = 0, 0
			b.start = now
		}
		b.requests, b.retries = 0, 0
	}
	if now.Sub(b.minStart) >= b.minInterval {
		b.minStart, b.minUsed = now, 0
	}
}

// allow takes one retry from the budget, or reports that none is left.
func (b *retryBudget) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	if b.minUsed < b.minRetries {
		b.minUsed++
		b.retries++
		return true
	}
	overlap := 1 - float64(now.Sub(b.start))/float64(b.interval)
	requests := float64(b.requests) + overlap*float64(b.prevRequests)
	retries := float64(b.retries) + overlap*float64(b.prevRets)
	if (retries+1)*100 <= requests*float64(b.percent) {
		b.retries++
		return true
	}
	return false
}

// maxReplayBody bounds the request body kept to replay on a retry; larger bodies stream and
// are not retried.
const maxReplayBody = 64 << 10

// bufferForReplay reads a small request body so retries can send it again. A body that fails
// to read is left as read so far (the attempt then reports the client's error).
func bufferForReplay(r *http.Request) {
	b := make([]byte, r.ContentLength)
	n, err := io.ReadFull(r.Body, b)
	if err != nil {
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b[:n]), r.Body))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}
