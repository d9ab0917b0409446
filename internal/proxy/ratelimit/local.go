// Package ratelimit counts requests in fixed windows for the gateway's rate-limit stages:
// Local counters live in this process (bounded, least recently used keys dropped first);
// Global counters (global.go) live in a shared store so every gateway process serving a
// project enforces one limit together.
package ratelimit

import (
	"sync"
	"time"
)

// Window returns the start (Unix seconds) of the fixed window of length d that holds now, and
// the time left until it ends. Windows are aligned to Unix time, so a Day window starts at UTC
// midnight, and Local and Global rules count the same windows.
func Window(now time.Time, d time.Duration) (start int64, reset time.Duration) {
	sec := int64(d / time.Second)
	if sec <= 0 {
		sec = 1
	}
	u := now.Unix()
	start = u - u%sec
	reset = time.Unix(start+sec, 0).Sub(now)
	return start, reset
}

// Local holds the bucket sets of Local rules by counter identity, process-wide, so counts
// survive configuration swaps: a rule keeps its counter as long as its identity (project,
// policy, rule and route for per-route counters) does not change.
type Local struct {
	mu   sync.Mutex
	sets map[string]*Set
}

// NewLocal returns an empty store.
func NewLocal() *Local { return &Local{sets: map[string]*Set{}} }

// Set returns the bucket set of a counter, creating it; maxKeys bounds how many distinct keys
// it tracks (a changed bound applies to the existing set).
func (l *Local) Set(counter string, maxKeys int) *Set {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sets[counter]
	if s == nil {
		s = newSet(maxKeys)
		l.sets[counter] = s
		return s
	}
	s.resize(maxKeys)
	return s
}

// Retain drops the sets of counters no configuration uses any more.
func (l *Local) Retain(keep func(counter string) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.sets {
		if !keep(k) {
			delete(l.sets, k)
		}
	}
}

// Len is the number of bucket sets (for tests and metrics).
func (l *Local) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sets)
}

// shardCount spreads a large set's keys over locks; small sets keep one shard so their bound
// is exact.
const shardCount = 16

// Set is one counter's buckets: a count per key per window, for at most maxKeys keys.
type Set struct {
	shards []shard
}

type shard struct {
	mu    sync.Mutex
	m     map[uint64]*node
	max   int
	head  node // sentinel of the LRU list: head.next is the most recent
	count int
}

type node struct {
	key        uint64
	window     int64
	n          uint32
	prev, next *node
}

func newSet(maxKeys int) *Set {
	if maxKeys <= 0 {
		maxKeys = 100000
	}
	n := 1
	if maxKeys >= 1024 {
		n = shardCount
	}
	s := &Set{shards: make([]shard, n)}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.m = map[uint64]*node{}
		sh.head.next, sh.head.prev = &sh.head, &sh.head
	}
	s.resize(maxKeys)
	return s
}

func (s *Set) resize(maxKeys int) {
	if maxKeys <= 0 {
		maxKeys = 100000
	}
	per := (maxKeys + len(s.shards) - 1) / len(s.shards)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.max = per
		for sh.count > sh.max {
			sh.evict()
		}
		sh.mu.Unlock()
	}
}

// Hit counts one request for key in the window starting at window, and returns the key's
// count in that window including this one.
func (s *Set) Hit(key uint64, window int64) uint32 {
	n, _ := s.HitEvict(key, window)
	return n
}

// HitEvict is Hit, also reporting whether tracking key evicted the least recently used one
// (the set was at its maxTrackedKeys bound).
func (s *Set) HitEvict(key uint64, window int64) (uint32, bool) {
	sh := &s.shards[key%uint64(len(s.shards))]
	sh.mu.Lock()
	nd := sh.m[key]
	evicted := false
	switch {
	case nd == nil:
		if sh.count >= sh.max {
			evicted = sh.head.prev != &sh.head
			nd = sh.evict() // reuse the least recently used node: no allocation at the bound
		} else {
			nd = &node{}
		}
		nd.key, nd.window, nd.n = key, window, 0
		sh.m[key] = nd
		sh.count++
	default:
		nd.prev.next, nd.next.prev = nd.next, nd.prev // unlink
		if nd.window != window {
			nd.window, nd.n = window, 0
		}
	}
	nd.next, nd.prev = sh.head.next, &sh.head // to the front
	sh.head.next.prev = nd
	sh.head.next = nd
	if nd.n < ^uint32(0) {
		nd.n++
	}
	n := nd.n
	sh.mu.Unlock()
	return n, evicted
}

// evict removes the least recently used key and returns its node.
func (sh *shard) evict() *node {
	nd := sh.head.prev
	if nd == &sh.head {
		return &node{}
	}
	nd.prev.next, nd.next.prev = nd.next, nd.prev
	delete(sh.m, nd.key)
	sh.count--
	return nd
}

// Len is the number of keys tracked.
func (s *Set) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.count
		sh.mu.Unlock()
	}
	return n
}
