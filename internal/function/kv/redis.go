package kv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"apoxy.dev/apoxy/internal/function"
)

// Redis is a project's key-value store on a Redis server, which several gateway replicas
// share. Its layout, for project P, function F and key K (P and F escaped, so that neither
// holds a ':' and the data key's fifth field onwards is K verbatim: no key can name another
// namespace's data):
//
//	apoxy:kv:P:F:K      a hash: v (the value), m (the metadata), x (expiry, Unix ms; 0 never),
//	                    with the key's TTL as its Redis expiry
//	apoxy:kvidx:P:F     a sorted set of the namespace's keys, all scored 0, listed in byte
//	                    order with ZRANGEBYLEX (no SCAN, so no glob pattern to escape)
//	apoxy:kvexp:P:F     a sorted set of the keys that have a TTL, scored by expiry
//
// Redis expires the data keys itself, so an expired key is invisible at once. Their index
// members are reclaimed in bounded batches: each Put removes up to 64 members whose expiry
// has passed, and a List removes the members it meets whose data key is gone (it scans at
// most a few pages' worth per call and returns a cursor if it stopped early). Put, List and
// the reclaiming are Lua scripts, so they are atomic with respect to each other; expiries
// are computed on the Redis server's clock.
//
// The scripts reach keys they compute, so this needs a single Redis server (with replicas or
// Sentinel, if wanted), not Redis Cluster.
type Redis struct {
	c       redis.UniversalClient
	project string
	opts    options
}

// NewRedis returns project's store on the Redis server c talks to. The caller owns c.
// WithClock does not apply: Redis expires keys by its own clock.
func NewRedis(c redis.UniversalClient, project string, opts ...Option) *Redis {
	return &Redis{c: c, project: project, opts: newOptions(opts)}
}

// Namespace is the key-value namespace of one function of the project.
func (r *Redis) Namespace(function string) function.KV {
	ns := escapeField(r.project) + ":" + escapeField(function)
	return &redisNamespace{r: r, data: "apoxy:kv:" + ns + ":", index: "apoxy:kvidx:" + ns, expiries: "apoxy:kvexp:" + ns}
}

// escapeField escapes '%' and ':' in a project or function name, so that the name is one
// field of a Redis key.
func escapeField(s string) string {
	return strings.NewReplacer("%", "%25", ":", "%3A").Replace(s)
}

// reclaimBatch bounds the expired index members one Put reclaims; listBudget bounds, in
// pages, the index members one List may look at.
const (
	reclaimBatch = 64
	listBudget   = 4
)

// putScript stores a key. KEYS: data, index, expiries. ARGV: value, metadata, TTL in ms (0:
// none), the key, the namespace's data prefix, the reclaim batch. It returns the expiry.
var putScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local x = 0
if ttl > 0 then x = now + ttl end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'm', ARGV[2], 'x', x)
if x > 0 then
	redis.call('PEXPIREAT', KEYS[1], x)
	redis.call('ZADD', KEYS[3], x, ARGV[4])
else
	redis.call('PERSIST', KEYS[1])
	redis.call('ZREM', KEYS[3], ARGV[4])
end
redis.call('ZADD', KEYS[2], 0, ARGV[4])
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[6]))
for _, m in ipairs(gone) do
	if redis.call('EXISTS', ARGV[5] .. m) == 0 then
		redis.call('ZREM', KEYS[2], m)
		redis.call('ZREM', KEYS[3], m)
	end
end
return x
`)

// listScript lists live keys. KEYS: index, expiries. ARGV: the ZRANGEBYLEX min and max, the
// page size n, the data prefix, the most members to look at. It returns {flat list of key,
// metadata, expiry; the last member looked at when more may follow, else ""}. Members whose
// data key has expired are removed from both sets on the way.
var listScript = redis.NewScript(`
local n, budget = tonumber(ARGV[3]), tonumber(ARGV[5])
local live, count, seen, min, last = {}, 0, 0, ARGV[1], ''
while count < n and seen < budget do
	local batch = redis.call('ZRANGEBYLEX', KEYS[1], min, ARGV[2], 'LIMIT', 0, math.min(n - count, budget - seen))
	if #batch == 0 then return {live, ''} end
	for _, m in ipairs(batch) do
		seen = seen + 1
		local h = redis.call('HMGET', ARGV[4] .. m, 'm', 'x')
		if h[2] then
			count = count + 1
			live[#live + 1] = m
			live[#live + 1] = h[1] or ''
			live[#live + 1] = h[2]
		else
			redis.call('ZREM', KEYS[1], m)
			redis.call('ZREM', KEYS[2], m)
		end
	end
	last = batch[#batch]
	min = '(' .. last
end
if #redis.call('ZRANGEBYLEX', KEYS[1], min, ARGV[2], 'LIMIT', 0, 1) == 0 then return {live, ''} end
return {live, last}
`)

// redisNamespace is one function's view of a Redis store.
type redisNamespace struct {
	r                     *Redis
	data, index, expiries string
}

func (n *redisNamespace) Get(ctx context.Context, key string) (function.KVValue, bool, error) {
	if err := checkKey(key); err != nil {
		return function.KVValue{}, false, err
	}
	vals, err := n.r.c.HMGet(ctx, n.data+key, "v", "m", "x").Result()
	if err != nil {
		return function.KVValue{}, false, fmt.Errorf("kv: redis: %w", err)
	}
	v, ok := vals[0].(string)
	if !ok {
		return function.KVValue{}, false, nil
	}
	meta, _ := vals[1].(string)
	x, _ := vals[2].(string)
	expires, err := parseExpiry(x)
	if err != nil {
		return function.KVValue{}, false, err
	}
	return function.KVValue{Value: []byte(v), Metadata: meta, Expires: expires}, true, nil
}

func (n *redisNamespace) Put(ctx context.Context, key string, value []byte, opts function.KVPut) error {
	if err := checkPut(key, value, opts, n.r.opts.maxValueBytes); err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	err := putScript.Run(ctx, n.r.c, []string{n.data + key, n.index, n.expiries},
		value, opts.Metadata, ttlMillis(opts.TTL), key, n.data, reclaimBatch).Err()
	if err != nil {
		return fmt.Errorf("kv: redis: %w", err)
	}
	return nil
}

func (n *redisNamespace) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	_, err := n.r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, n.data+key)
		p.ZRem(ctx, n.index, key)
		p.ZRem(ctx, n.expiries, key)
		return nil
	})
	if err != nil {
		return fmt.Errorf("kv: redis: %w", err)
	}
	return nil
}

func (n *redisNamespace) List(ctx context.Context, prefix, cursor string, limit int) ([]function.KVKey, string, error) {
	after, limit, err := listArgs(prefix, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	min, max := "-", "+"
	switch {
	case after != "" && after >= prefix:
		min = "(" + after
	case prefix != "":
		min = "[" + prefix
	}
	if prefix != "" {
		max = "(" + prefixEnd(prefix)
	}
	res, err := listScript.Run(ctx, n.r.c, []string{n.index, n.expiries}, min, max, limit, n.data, listBudget*limit).Slice()
	if err != nil {
		return nil, "", fmt.Errorf("kv: redis: %w", err)
	}
	if len(res) != 2 {
		return nil, "", errors.New("kv: redis: unexpected reply to the list script")
	}
	flat, _ := res[0].([]any)
	last, _ := res[1].(string)
	keys := make([]function.KVKey, 0, len(flat)/3)
	for i := 0; i+2 < len(flat); i += 3 {
		name, _ := flat[i].(string)
		meta, _ := flat[i+1].(string)
		x, _ := flat[i+2].(string)
		expires, err := parseExpiry(x)
		if err != nil {
			return nil, "", err
		}
		keys = append(keys, function.KVKey{Name: name, Metadata: meta, Expires: expires})
	}
	if last == "" {
		return keys, "", nil
	}
	return keys, encodeCursor(last), nil
}

// parseExpiry reads a hash's x field: Unix milliseconds, 0 for none.
func parseExpiry(x string) (time.Time, error) {
	ms, err := strconv.ParseInt(x, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("kv: redis: a corrupt expiry %q", x)
	}
	if ms == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(ms), nil
}
