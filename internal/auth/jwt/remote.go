package jwt

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"apoxy.dev/apoxy/internal/telemetry/span"
)

// Defaults and bounds of a RemoteConfig.
const (
	DefaultCacheDuration = 5 * time.Minute
	MinCacheDuration     = 30 * time.Second
	DefaultFetchTimeout  = 5 * time.Second
	DefaultMinRefetch    = 30 * time.Second
	// DefaultGrace is how long past CacheDuration fetched keys keep verifying while every
	// refresh fails. An hour rides out an identity provider's (or the path to it) outage of
	// typical length without failing every request, and still bounds how long a key the
	// provider has withdrawn (but we cannot learn of) stays trusted.
	DefaultGrace = time.Hour
	// firstBackoff is the wait after the first failed fetch; it doubles with each further one.
	firstBackoff = time.Second
)

// RemoteConfig configures a Remote.
type RemoteConfig struct {
	// URI is the JWKS document's http or https URL.
	URI string
	// CacheDuration is how long a fetched set is used before it is refreshed (in the
	// background, the set serving meanwhile). 0 means DefaultCacheDuration; under
	// MinCacheDuration is refused.
	CacheDuration time.Duration
	// Timeout bounds one fetch, and so how long a request can wait for keys. 0 means
	// DefaultFetchTimeout.
	Timeout time.Duration
	// Client fetches the document; the caller injects one to dial through a Backend with its
	// TLS settings. nil means a client with Timeout.
	Client *http.Client
	// MinRefetch is the least time between two fetches triggered by a token whose "kid" is not
	// in the set (key rotation): a flood of made-up kids costs one fetch per MinRefetch. 0 means
	// DefaultMinRefetch.
	MinRefetch time.Duration
	// Grace is how long past CacheDuration the last good set keeps verifying while refreshes
	// fail; after it the set is dropped and verification fails with ReasonJWKSUnavailable.
	// 0 means DefaultGrace, negative none.
	Grace time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Remote is a KeySource fetching a JWKS over HTTP(S). It runs no goroutine while idle: the
// first Keys call fetches synchronously, and a later call that finds the set older than
// CacheDuration starts one background refresh and carries on with the cached set. Concurrent
// callers share one fetch. Failed fetches back off exponentially (1 s doubling, up to
// CacheDuration; up to MinRefetch while there is no set at all), keeping the last good set
// until CacheDuration+Grace after it was fetched. A fetched document that is not a usable JWKS
// (status not 200, over MaxJWKSSize, not JSON, no usable key) counts as a failure and leaves
// the previous set in place. Oct (symmetric) keys in a remote document are ignored.
type Remote struct {
	uri        string
	cacheDur   int64 // ns
	timeout    time.Duration
	minRefetch int64 // ns
	grace      int64 // ns
	client     *http.Client
	now        func() time.Time

	ctx    context.Context // canceled by Close; parent of every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup // running fetches

	set      atomic.Pointer[KeySet] // the usable set; nil before the first fetch, once expired, or closed
	expireAt atomic.Int64           // unix ns from which set is no longer used

	mu       sync.Mutex
	staleAt  int64    // unix ns from which a call starts a background refresh
	docSum   [32]byte // SHA-256 of the document behind set: an unchanged document keeps the set
	inflight *fetchCall
	lastErr  error
	failures int
	retryAt  int64 // unix ns before which no fetch starts (backoff)
	lastKID  int64 // unix ns of the last fetch a missing kid started; 0 for none
	closed   bool
}

// fetchCall is one fetch that callers wait on together.
type fetchCall struct {
	done chan struct{}
	set  *KeySet // the usable set once the fetch ended (new, or the previous one if it failed)
	err  error   // the fetch's error
}

// NewRemote checks cfg and returns a Remote; nothing is fetched yet.
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	u, err := url.Parse(cfg.URI)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, newError(ReasonInvalidConfig, "", "JWKS URI %q is not an http(s) URL", cfg.URI)
	}
	switch {
	case cfg.CacheDuration == 0:
		cfg.CacheDuration = DefaultCacheDuration
	case cfg.CacheDuration < MinCacheDuration:
		return nil, newError(ReasonInvalidConfig, "", "cacheDuration %s is under %s", cfg.CacheDuration, MinCacheDuration)
	}
	switch {
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultFetchTimeout
	case cfg.Timeout < 0:
		return nil, newError(ReasonInvalidConfig, "", "timeout %s is negative", cfg.Timeout)
	}
	switch {
	case cfg.MinRefetch == 0:
		cfg.MinRefetch = DefaultMinRefetch
	case cfg.MinRefetch < 0:
		return nil, newError(ReasonInvalidConfig, "", "minRefetch %s is negative", cfg.MinRefetch)
	}
	switch {
	case cfg.Grace == 0:
		cfg.Grace = DefaultGrace
	case cfg.Grace < 0:
		cfg.Grace = 0
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Remote{
		uri:        cfg.URI,
		cacheDur:   int64(cfg.CacheDuration),
		timeout:    cfg.Timeout,
		minRefetch: int64(cfg.MinRefetch),
		grace:      int64(cfg.Grace),
		client:     cfg.Client,
		now:        cfg.Now,
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// Keys returns the fetched set, fetching it first when there is none (waiting at most Timeout,
// or until ctx ends). When kid is not in the set and no kid-triggered fetch ran in the last
// MinRefetch, it refetches synchronously (the keys may have rotated); otherwise the set is
// returned as is and the verifier reports the unknown kid. Keys(ctx, "") at configuration time
// warms the set, so the first request does not wait for it.
func (r *Remote) Keys(ctx context.Context, kid string) (*KeySet, error) {
	now := r.now().UnixNano()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, r.unavailable(errors.New("key source closed"))
	}
	set := r.set.Load()
	if set != nil && now >= r.expireAt.Load() {
		r.set.Store(nil) // past CacheDuration+Grace: drop it
		set = nil
	}
	c := r.inflight
	switch {
	case set == nil:
		if c == nil {
			if now < r.retryAt {
				err := r.lastErr
				r.mu.Unlock()
				return nil, r.unavailable(err)
			}
			c = r.startLocked()
		}
	case kid != "" && !set.hasKID(kid):
		if c == nil && (r.lastKID == 0 || now-r.lastKID >= r.minRefetch) && now >= r.retryAt {
			r.lastKID = now
			c = r.startLocked()
		}
		if c == nil {
			r.mu.Unlock()
			return set, nil
		}
	default:
		if c == nil && now >= r.staleAt && now >= r.retryAt {
			r.startLocked() // refresh in the background; this call uses the cached set
		}
		r.mu.Unlock()
		return set, nil
	}
	r.mu.Unlock()

	_, end := span.Start(ctx, "jwks.fetch", attribute.String("url.full", r.uri))
	t := time.NewTimer(r.timeout)
	defer t.Stop()
	var err error
	defer func() { end(err) }()
	select {
	case <-c.done:
		if c.set != nil {
			return c.set, nil
		}
		err = c.err
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C: // the fetch has the same deadline; this covers a client that ignores it
		err = fmt.Errorf("no JWKS within %s", r.timeout)
	}
	if set != nil {
		return set, nil
	}
	return nil, r.unavailable(err)
}

// Current returns the set while it is usable, without fetching.
func (r *Remote) Current(now time.Time) *KeySet {
	if now.UnixNano() >= r.expireAt.Load() {
		return nil
	}
	return r.set.Load()
}

// Health returns the last fetch's error, nil when it succeeded (or none ran yet).
func (r *Remote) Health() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return r.unavailable(errors.New("key source closed"))
	}
	if r.lastErr != nil {
		return r.unavailable(r.lastErr)
	}
	return nil
}

// Close cancels a running fetch, waits for it to end, and drops the keys; later Keys calls
// fail. It is idempotent.
func (r *Remote) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		r.set.Store(nil)
		r.cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// startLocked starts a fetch; r.mu is held.
func (r *Remote) startLocked() *fetchCall {
	c := &fetchCall{done: make(chan struct{})}
	r.inflight = c
	r.wg.Add(1)
	go r.run(c)
	return c
}

// run performs c's fetch and records its outcome.
func (r *Remote) run(c *fetchCall) {
	defer r.wg.Done()
	set, sum, err := r.fetch()
	now := r.now().UnixNano()
	r.mu.Lock()
	r.inflight = nil
	if err == nil && !r.closed {
		if old := r.set.Load(); old != nil && sum == r.docSum {
			set = old // same document: keep the set, so cached tokens stay valid
		}
		r.docSum = sum
		// The set before its deadline: Current, reading the deadline first, may pair the old
		// deadline with the new set (harmless) but never a new deadline with an old set.
		r.set.Store(set)
		r.expireAt.Store(now + r.cacheDur + r.grace)
		r.staleAt = now + r.cacheDur
		r.lastErr, r.failures, r.retryAt = nil, 0, 0
	} else if err != nil {
		r.lastErr = err
		r.failures++
		limit := r.cacheDur
		if r.set.Load() == nil || now >= r.expireAt.Load() {
			limit = min(limit, r.minRefetch)
		}
		r.retryAt = now + backoff(r.failures, limit)
	}
	c.err = err
	if now < r.expireAt.Load() {
		c.set = r.set.Load()
	}
	r.mu.Unlock()
	close(c.done)
}

// backoff is the wait after n consecutive failures: 1 s doubling, at most limit ns.
func backoff(n int, limit int64) int64 {
	d := int64(firstBackoff) << min(n-1, 30) // 2^30 s is far past any limit, and no overflow
	return min(d, limit)
}

// fetch GETs and parses the document.
func (r *Remote) fetch() (*KeySet, [32]byte, error) {
	var sum [32]byte
	ctx, cancel := context.WithTimeout(r.ctx, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.uri, nil)
	if err != nil {
		return nil, sum, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, sum, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // let a short body free the connection
		return nil, sum, fmt.Errorf("GET %s: status %d", r.uri, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return nil, sum, fmt.Errorf("GET %s: reading body: %w", r.uri, err)
	}
	if len(body) > MaxJWKSSize {
		return nil, sum, fmt.Errorf("GET %s: document over %d bytes", r.uri, MaxJWKSSize)
	}
	set, err := parseJWKS(body, false)
	if err != nil {
		return nil, sum, fmt.Errorf("GET %s: %w", r.uri, err)
	}
	return set, sha256.Sum256(body), nil
}

func (r *Remote) unavailable(err error) *Error {
	return &Error{Reason: ReasonJWKSUnavailable, Detail: "JWKS " + r.uri, Err: err}
}

// waitIdle waits for running fetches to end (tests).
func (r *Remote) waitIdle() { r.wg.Wait() }
