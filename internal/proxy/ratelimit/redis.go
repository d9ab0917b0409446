package ratelimit

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions name a Redis server (a Proxy's spec.rateLimit.redis).
type RedisOptions struct {
	// Address is host:port.
	Address  string
	Password string
	DB       int
	TLS      bool
}

// Redis is a Global store on a Redis server that every gateway process serving a project
// shares. A request's keys are counted in one pipelined round trip (for each key: SET NX with
// the window as expiry, then INCR, which keeps the expiry). After a failure the store is not
// asked again for a backoff that doubles up to 5 s, so a Redis outage costs each request
// nothing but its failure mode, and the first request after the backoff reconnects.
type Redis struct {
	c *redis.Client

	// used: a request has counted in the store (or a probe reached it).
	used atomic.Bool

	mu      sync.Mutex
	lastErr error
	retryAt time.Time
	backoff time.Duration
}

// Backoff bounds between attempts while the store is unreachable.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// NewRedis returns a store for o; it connects on first use.
func NewRedis(o RedisOptions) *Redis {
	opts := &redis.Options{
		Addr: o.Address, Password: o.Password, DB: o.DB,
		DialTimeout: time.Second, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
		MaxRetries: -1, // fail fast: the policy's failure mode decides, not a retry loop
		PoolSize:   64,
	}
	if o.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &Redis{c: redis.NewClient(opts)}
}

// Client is the store's Redis client, for other state the gateway's replicas share (edge
// functions' KV).
func (r *Redis) Client() *redis.Client { return r.c }

// ErrStoreBackoff is returned while the store is left alone after a failure.
var ErrStoreBackoff = errors.New("rate-limit store unavailable (retrying after a backoff)")

// Hit counts one request for each key; see Store.
func (r *Redis) Hit(ctx context.Context, keys []string, ttls []time.Duration) ([]uint32, error) {
	r.mu.Lock()
	if !r.retryAt.IsZero() && time.Now().Before(r.retryAt) {
		r.mu.Unlock()
		return nil, ErrStoreBackoff
	}
	r.mu.Unlock()
	if !r.used.Load() {
		r.used.Store(true)
	}
	pipe := r.c.Pipeline()
	cmds := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		pipe.SetNX(ctx, k, 0, ttls[i])
		cmds[i] = pipe.Incr(ctx, k)
	}
	_, err := pipe.Exec(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.lastErr = err
		r.backoff = min(max(2*r.backoff, minBackoff), maxBackoff)
		r.retryAt = time.Now().Add(r.backoff)
		return nil, err
	}
	r.lastErr, r.retryAt, r.backoff = nil, time.Time{}, 0
	out := make([]uint32, len(keys))
	for i, c := range cmds {
		out[i] = uint32(min(c.Val(), int64(^uint32(0))))
	}
	return out, nil
}

// Healthy reports the last failure to reach the store, or nil (for the policy's Healthy
// condition and /readyz detail).
func (r *Redis) Healthy() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// Used reports whether a request has counted in the store, or a probe has tried it.
func (r *Redis) Used() bool { return r.used.Load() }

// Probe pings the store and records the outcome as Healthy reports it: a store that answers
// is taken back at once (the failure backoff ends), one that does not keeps its error. For
// status writers, so health shows without traffic.
func (r *Redis) Probe(ctx context.Context) {
	r.used.Store(true)
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	err := r.c.Ping(ctx).Err()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.lastErr = err
		return
	}
	r.lastErr, r.retryAt, r.backoff = nil, time.Time{}, 0
}

// Close releases the connections.
func (r *Redis) Close() error { return r.c.Close() }

// ParseRedisURL reads redis://[user:password@]host:port[/db] (rediss:// for TLS), the form of
// `apoxy dev --redis`.
func ParseRedisURL(s string) (RedisOptions, error) {
	o, err := redis.ParseURL(s)
	if err != nil {
		return RedisOptions{}, err
	}
	return RedisOptions{Address: o.Addr, Password: o.Password, DB: o.DB, TLS: o.TLSConfig != nil}, nil
}
