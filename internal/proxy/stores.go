package proxy

import (
	"context"
	"strings"
	"sync"
	"time"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/ratelimit"
)

// rateLimitStores are the global rate-limit stores that served snapshots name (a Proxy's
// spec.rateLimit.redis), by scoped name. A store keeps its connections across snapshots while
// its settings stay the same; a changed one is replaced, and one no longer named is closed once
// no graph uses it.
type rateLimitStores struct {
	// process is the data plane's own store (apoxy --redis), name "" (nil: none); it is
	// the caller's to close.
	process healthStore
	// processChecked is when process was last probed (unix ns, under mu).
	processChecked int64

	mu      sync.Mutex
	byName  map[string]*namedStore
	pending map[string]*namedStore // during a serve: what the new graphs compile against
}

// healthStore is a store that reports and probes its health (ratelimit.Redis).
type healthStore interface {
	Healthy() error
	Used() bool
	Probe(ctx context.Context)
}

type namedStore struct {
	cfg   ir.RedisStore
	store *ratelimit.Redis
	// checked is when the store was last probed (unix ns; under rateLimitStores.mu).
	checked int64
}

// prepare opens the stores of the next snapshot (keeping the current ones whose settings did
// not change). Called under the server's lock, then finish.
func (r *rateLimitStores) prepare(cfgs map[string]*ir.RedisStore) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make(map[string]*namedStore, len(cfgs))
	for name, cfg := range cfgs {
		if cur := r.byName[name]; cur != nil && cur.cfg == *cfg {
			next[name] = cur
			continue
		}
		next[name] = &namedStore{cfg: *cfg, store: ratelimit.NewRedis(ratelimit.RedisOptions{
			Address: cfg.Address, Password: string(cfg.Password), TLS: cfg.TLS, DB: cfg.Database})}
	}
	r.pending = next
}

// finish commits the prepared stores when the new graphs were swapped in (closing the ones
// no longer used), or drops the newly opened ones when they were not.
func (r *rateLimitStores) finish(swapped bool) {
	r.mu.Lock()
	var closing []*namedStore
	keep, drop := r.pending, r.byName
	if !swapped {
		keep, drop = r.byName, r.pending
	}
	for name, st := range drop {
		if keep[name] != st {
			closing = append(closing, st)
		}
	}
	r.byName, r.pending = keep, nil
	r.mu.Unlock()
	for _, st := range closing {
		st.store.Close() // requests of the old graphs still counting fail open or closed as configured
	}
}

// get returns the named store for a compile (nil when the snapshot names none such).
func (r *rateLimitStores) get(name string) ratelimit.Store {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.pending[name]
	if st == nil {
		st = r.byName[name]
	}
	if st == nil {
		return nil
	}
	return st.store
}

// ProjectKVStore is the store that holds the KV of a project's edge functions when its Proxy
// names a Redis: the first by name of the project's stores, as translation picks it
// (ir.Function.KVStore). nil: the project has none.
func (s *Server) ProjectKVStore(project string) ratelimit.Store {
	r := s.stores
	r.mu.Lock()
	defer r.mu.Unlock()
	var first string
	for name := range r.byName {
		if rest, ok := strings.CutPrefix(name, project+"/"); ok && rest != "" && (first == "" || name < first) {
			first = name
		}
	}
	if first == "" {
		return nil
	}
	return r.byName[first].store
}

// StoreHealth is a global rate-limit store's state as this data plane sees it.
type StoreHealth struct {
	// Address is the store's host:port.
	Address string
	// Err is the last failure to reach it (nil: reachable, or not used yet).
	Err error
}

// RateLimitStoreHealth reports the named store's health; "" names the data plane's own store
// (apoxy --redis). ok is false when there is no such store. A store that failed, or that no
// request has used yet, is probed with a PING at most every probeEvery, so its status
// recovers (or shows a misconfiguration) without traffic.
func (s *Server) RateLimitStoreHealth(ctx context.Context, name string) (h StoreHealth, ok bool) {
	const probeEvery = 5 * time.Second
	r := s.stores
	var hs healthStore
	r.mu.Lock()
	checked := &r.processChecked
	if name == "" {
		hs = r.process
		h.Address = "the --redis store"
	} else if st := r.byName[name]; st != nil {
		hs, checked, h.Address = st.store, &st.checked, st.cfg.Address
	}
	probe := false
	if hs != nil {
		if now := time.Now().UnixNano(); (hs.Healthy() != nil || !hs.Used()) && now-*checked >= int64(probeEvery) {
			*checked, probe = now, true
		}
	}
	r.mu.Unlock()
	if hs == nil {
		return StoreHealth{}, false
	}
	if probe {
		hs.Probe(ctx)
	}
	h.Err = hs.Healthy()
	return h, true
}

// AuthPolicyHealth reports the runtime dependencies (JWKS, external authorization services) of
// the AuthPolicy blocks with ID id (ir.AuthBlock.ID) in the configuration in force: each one's
// last error, nil when it works. ok is false when none has any.
func (s *Server) AuthPolicyHealth(id string) (map[string]error, bool) {
	return s.env.Kept.Health(id)
}
