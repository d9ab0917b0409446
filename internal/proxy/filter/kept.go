package filter

import (
	"io"
	"sync"
)

// Kept holds what stages build from configuration but that must outlive the swap to the next
// configuration: an htpasswd verifier with its cache of good credentials, a JWKS key cache
// with its fetch schedule. A stage asks for one by a key naming everything it is built from;
// the next configuration asking for the same key gets the same object, and objects it no
// longer asks for are closed (when they have a Close method) once it is in place.
//
// The proxy calls Begin before compiling a configuration and End after swapping it in (or
// failing to). Stages compiled outside Begin/End (tests) get objects that are never closed.
type Kept struct {
	mu   sync.Mutex
	cur  map[string]any
	next map[string]any // during a compile: what the new configuration asked for
	// health are the runtime dependencies each auth block reports (a JWKS, an external
	// authorization service), by block ID and then dependency; nextHealth during a compile.
	health, nextHealth map[string]map[string]func() error
}

// Begin starts collecting what the next configuration asks for.
func (k *Kept) Begin() {
	k.mu.Lock()
	k.next = map[string]any{}
	k.nextHealth = map[string]map[string]func() error{}
	k.mu.Unlock()
}

// End commits what the compiled configuration asked for when it was swapped in, closing the
// objects no longer asked for; when it was not, the objects built for it alone are closed.
func (k *Kept) End(swapped bool) {
	k.mu.Lock()
	keep, drop := k.next, k.cur
	if !swapped {
		keep, drop = k.cur, k.next
	}
	var closing []any
	for key, v := range drop {
		if keep[key] != v {
			closing = append(closing, v)
		}
	}
	k.cur, k.next = keep, nil
	if swapped {
		k.health = k.nextHealth
	}
	k.nextHealth = nil
	k.mu.Unlock()
	for _, v := range closing {
		switch c := v.(type) {
		case io.Closer:
			c.Close()
		case interface{ Close() }:
			c.Close()
		}
	}
}

// keep returns the object kept under key, building it when there is none.
func keep[T any](env *Env, key string, build func() (T, error)) (T, error) {
	if env == nil || env.Kept == nil {
		return build()
	}
	k := env.Kept
	k.mu.Lock()
	defer k.mu.Unlock()
	if v, ok := k.next[key]; ok {
		return v.(T), nil
	}
	if v, ok := k.cur[key]; ok {
		if k.next != nil {
			k.next[key] = v
		}
		return v.(T), nil
	}
	v, err := build()
	if err != nil {
		return v, err
	}
	if k.next != nil {
		k.next[key] = v
	} else {
		if k.cur == nil {
			k.cur = map[string]any{}
		}
		k.cur[key] = v
	}
	return v, nil
}

// Close closes every kept object (the proxy is stopping).
func (k *Kept) Close() {
	k.Begin()
	k.End(true)
}

// watch records that the block id depends on something at run time (dependency names it, fn
// says whether it works), for Health.
func watch(env *Env, id, dependency string, fn func() error) {
	if env == nil || env.Kept == nil || id == "" {
		return
	}
	k := env.Kept
	k.mu.Lock()
	defer k.mu.Unlock()
	m := &k.health
	if k.nextHealth != nil {
		m = &k.nextHealth
	}
	if *m == nil {
		*m = map[string]map[string]func() error{}
	}
	if (*m)[id] == nil {
		(*m)[id] = map[string]func() error{}
	}
	(*m)[id][dependency] = fn
}

// Health reports the runtime dependencies of the blocks with ID id in the configuration in
// force: each dependency's error (nil: working). ok is false when no block with that ID has
// any.
func (k *Kept) Health(id string) (deps map[string]error, ok bool) {
	k.mu.Lock()
	fns := k.health[id]
	k.mu.Unlock()
	if len(fns) == 0 {
		return nil, false
	}
	deps = make(map[string]error, len(fns))
	for name, fn := range fns {
		deps[name] = fn()
	}
	return deps, true
}
