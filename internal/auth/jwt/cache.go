package jwt

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// DefaultCacheSize is the verified-token cache's bound when Options leaves it 0.
const DefaultCacheSize = 10000

// MaxCacheTTL bounds how long a verified token is served from the cache without being verified
// again, whatever its exp: a key the provider withdrew stops being trusted within it (sooner when
// the key set is refetched and changed).
const MaxCacheTTL = 5 * time.Minute

// cacheShards spreads the cache over independently locked maps, so hits on different tokens do
// not contend on one lock.
const cacheShards = 64

// tokenCache maps a verified token (the string itself: equality on the whole token, no hash
// collision can alias a forged token to a verified one) to its *Token. An entry is served while
// now is before its deadline (the token's exp plus skew, capped at insertion plus ttl) and its
// provider's KeySource still reports the set that verified it. Each shard holds at most perShard
// entries; a full shard first drops its expired entries, then arbitrary ones.
type tokenCache struct {
	seed     maphash.Seed
	ttl      int64 // ns
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]*cacheEntry // allocated on first insert: an idle Verifier holds no maps
	_  [32]byte               // keep neighbouring shards' locks on separate cache lines
}

type cacheEntry struct {
	tok   *Token
	src   KeySource
	set   *KeySet
	until int64 // unix ns
}

func newTokenCache(size int, ttl time.Duration) *tokenCache {
	if size == 0 {
		size = DefaultCacheSize
	}
	if ttl <= 0 || ttl > MaxCacheTTL {
		ttl = MaxCacheTTL
	}
	return &tokenCache{
		seed:     maphash.MakeSeed(),
		ttl:      int64(ttl),
		perShard: max(1, (size+cacheShards-1)/cacheShards),
	}
}

func (c *tokenCache) shard(token string) *cacheShard {
	return &c.shards[maphash.String(c.seed, token)%cacheShards]
}

// get returns the cached Token for token, or nil.
func (c *tokenCache) get(token string, now time.Time) *Token {
	s := c.shard(token)
	s.mu.RLock()
	e := s.m[token]
	s.mu.RUnlock()
	if e == nil {
		return nil
	}
	if now.UnixNano() < e.until && e.src.Current(now) == e.set {
		return e.tok
	}
	s.mu.Lock()
	if s.m[token] == e {
		delete(s.m, token)
	}
	s.mu.Unlock()
	return nil
}

// put caches t, verified at now with p's set and valid until (unix ns).
func (c *tokenCache) put(token string, t *Token, p *provider, set *KeySet, now time.Time, until int64) {
	n := now.UnixNano()
	until = min(until, satAdd(n, c.ttl))
	if until <= n {
		return
	}
	e := &cacheEntry{tok: t, src: p.keys, set: set, until: until}
	token = strings.Clone(token) // do not pin the request's larger header buffer
	s := c.shard(token)
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[string]*cacheEntry)
	}
	if _, ok := s.m[token]; !ok && len(s.m) >= c.perShard {
		for k, old := range s.m {
			if old.until <= n {
				delete(s.m, k)
			}
		}
		for k := range s.m { // map order is unspecified: this drops arbitrary entries
			if len(s.m) < c.perShard {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[token] = e
	s.mu.Unlock()
}

// len counts the entries (tests).
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
