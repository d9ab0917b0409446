package authority

import (
	"hash/maphash"
	"sync"
)

const cacheShards = 64

// cache holds packed responses of one zone-set generation. It is bounded: a shard that
// reaches its share of the entries is emptied, so a flood of random names (each answered
// NXDOMAIN or REFUSED) costs cache hits, never memory.
type cache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]struct {
		sync.RWMutex
		m map[string][]byte
	}
}

func newCache(entries int) *cache {
	c := &cache{seed: maphash.MakeSeed(), perShard: max(entries/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = map[string][]byte{}
	}
	return c
}

func (c *cache) shard(key []byte) int { return int(maphash.Bytes(c.seed, key) % cacheShards) }

func (c *cache) get(key []byte) []byte {
	sh := &c.shards[c.shard(key)]
	sh.RLock()
	v := sh.m[string(key)]
	sh.RUnlock()
	return v
}

func (c *cache) put(key, resp []byte) {
	sh := &c.shards[c.shard(key)]
	sh.Lock()
	if len(sh.m) >= c.perShard {
		clear(sh.m)
	}
	sh.m[string(key)] = resp
	sh.Unlock()
}
