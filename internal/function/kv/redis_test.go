package kv

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"apoxy.dev/apoxy/internal/function"
)

// redisServer runs a real redis-server on a free loopback port until the test ends, and
// returns a client for it; the test is skipped when redis-server is not installed.
func redisServer(tb testing.TB) *redis.Client {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skip("redis-server is not installed (apt-get install -y redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c := redis.NewClient(&redis.Options{Addr: addr})
	tb.Cleanup(func() { _ = c.Close() })
	for deadline := time.Now().Add(5 * time.Second); ; {
		if err := c.Ping(context.Background()).Err(); err == nil {
			return c
		} else if time.Now().After(deadline) {
			tb.Fatalf("redis-server on %s did not answer: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisConformance(t *testing.T) {
	c := redisServer(t)
	const ttl = time.Second
	s := NewRedis(c, "proj", WithMaxValueBytes(64<<10))
	testKV(t, harness{ns: s.Namespace, ttl: ttl, wait: func() { time.Sleep(ttl + 200*time.Millisecond) }, maxValue: 64 << 10})
}

// The layout is the documented one, and names with separators stay in their own field.
func TestRedisLayout(t *testing.T) {
	c := redisServer(t)
	ctx := context.Background()
	mustPut(t, NewRedis(c, "p:1").Namespace("f%n"), "a:b*", "v", function.KVPut{Metadata: `"m"`})
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"apoxy:kv:p%3A1:f%25n:a:b*": true, "apoxy:kvidx:p%3A1:f%25n": true}
	if len(keys) != len(want) {
		t.Fatalf("keys %q, want %v", keys, want)
	}
	for _, k := range keys {
		if !want[k] {
			t.Fatalf("unexpected key %q among %q", k, keys)
		}
	}
	h, err := c.HGetAll(ctx, "apoxy:kv:p%3A1:f%25n:a:b*").Result()
	if err != nil || h["v"] != "v" || h["m"] != `"m"` || h["x"] != "0" {
		t.Fatalf("hash %v %v", h, err)
	}
	// Another project's store does not see it.
	if _, ok, _ := NewRedis(c, "p").Namespace("1:f%n").Get(ctx, "a:b*"); ok {
		t.Fatal("project p, function 1:f%n reads project p:1, function f%n")
	}
}

// Two gateway replicas, each with its own client and store, share the keys.
func TestRedisSharedByReplicas(t *testing.T) {
	c := redisServer(t)
	other := redis.NewClient(&redis.Options{Addr: c.Options().Addr})
	defer other.Close()
	a, b := NewRedis(c, "proj").Namespace("fn"), NewRedis(other, "proj").Namespace("fn")
	mustPut(t, a, "k", "from a", function.KVPut{Metadata: `"m"`})
	if v := mustGet(t, b, "k"); string(v.Value) != "from a" || v.Metadata != `"m"` {
		t.Fatalf("replica b reads %q %q", v.Value, v.Metadata)
	}
	if got := names(listAll(t, b, "", 0)); got != "k" {
		t.Fatalf("replica b lists %s", got)
	}
	if err := b.Delete(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.Get(context.Background(), "k"); ok || err != nil {
		t.Fatalf("replica a still reads the key b deleted: %v %v", ok, err)
	}
}

// Expired keys leave the index: a later Put reclaims them, a List skips and removes them.
func TestRedisIndexReclaimed(t *testing.T) {
	c := redisServer(t)
	ctx := context.Background()
	kv := NewRedis(c, "proj").Namespace("fn")
	for i := range 10 {
		mustPut(t, kv, fmt.Sprintf("gone%d", i), "v", function.KVPut{TTL: 100 * time.Millisecond})
	}
	for i := range 3 {
		mustPut(t, kv, fmt.Sprintf("listed%d", i), "v", function.KVPut{TTL: 100 * time.Millisecond})
	}
	mustPut(t, kv, "stays", "v", function.KVPut{})
	time.Sleep(250 * time.Millisecond)
	// A List reaching the expired members removes them (and returns only live keys).
	if got := names(listAll(t, kv, "listed", 0)); got != "" {
		t.Fatalf("list of expired keys: %s", got)
	}
	if n := c.ZCard(ctx, "apoxy:kvidx:proj:fn").Val(); n != 11 {
		t.Fatalf("index holds %d members after the list, want 11", n)
	}
	// A Put reclaims the rest (up to a batch).
	mustPut(t, kv, "new", "v", function.KVPut{})
	if m := c.ZRange(ctx, "apoxy:kvidx:proj:fn", 0, -1).Val(); fmt.Sprint(m) != "[new stays]" {
		t.Fatalf("index after a put: %v", m)
	}
	if n := c.ZCard(ctx, "apoxy:kvexp:proj:fn").Val(); n != 0 {
		t.Fatalf("expiry set holds %d members, want 0", n)
	}
}

// A List that meets a long run of expired members stops early with a cursor, so one call's
// cost is bounded, and the paging still ends with every live key.
func TestRedisListBudget(t *testing.T) {
	c := redisServer(t)
	kv := NewRedis(c, "proj").Namespace("fn")
	for i := range 50 {
		mustPut(t, kv, fmt.Sprintf("a%02d", i), "v", function.KVPut{TTL: 100 * time.Millisecond})
	}
	mustPut(t, kv, "b", "v", function.KVPut{})
	time.Sleep(250 * time.Millisecond)
	keys, next, err := kv.List(context.Background(), "", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 || next == "" {
		t.Fatalf("first page %s, next %q: want an empty page and a cursor (budget %d members)", names(keys), next, 2*listBudget)
	}
	if got := names(listAll(t, kv, "", 2)); got != "b" {
		t.Fatalf("paging to the end: %s", got)
	}
}

func BenchmarkRedisGet(b *testing.B) {
	kv := NewRedis(redisServer(b), "proj").Namespace("fn")
	ctx := context.Background()
	if err := kv.Put(ctx, "key", make([]byte, 1024), function.KVPut{Metadata: `{"a":1}`}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := kv.Get(ctx, "key"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkRedisPut(b *testing.B) {
	kv := NewRedis(redisServer(b), "proj").Namespace("fn")
	ctx := context.Background()
	v := make([]byte, 1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := kv.Put(ctx, fmt.Sprintf("key%d", i%1000), v, function.KVPut{}); err != nil {
			b.Fatal(err)
		}
	}
}
