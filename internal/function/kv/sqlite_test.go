package kv

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/function"
)

// clock is a settable clock for the SQLite store, so expiry is tested without sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// openSQLite opens a store in a fresh file, closed when the test ends.
func openSQLite(tb testing.TB, opts ...Option) *Store {
	tb.Helper()
	s, err := Open(filepath.Join(tb.TempDir(), "kv.db"), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

func TestSQLiteConformance(t *testing.T) {
	c := &clock{now: time.Now()}
	const ttl = 90 * time.Second
	s := openSQLite(t, WithClock(c.Now), WithMaxValueBytes(64<<10), WithPurgeInterval(-1))
	testKV(t, harness{ns: s.Namespace, ttl: ttl, wait: func() { c.Advance(ttl + time.Millisecond) }, maxValue: 64 << 10})
}

// Expired rows are invisible before they are purged, and Purge deletes exactly them.
func TestSQLitePurge(t *testing.T) {
	c := &clock{now: time.Now()}
	s := openSQLite(t, WithClock(c.Now), WithPurgeInterval(-1))
	ctx := context.Background()
	kv := s.Namespace("fn")
	for i := range 1200 { // more than two purge batches
		mustPut(t, kv, string(rune('a'+i%26))+time.Duration(i).String(), "x", function.KVPut{TTL: time.Minute})
	}
	mustPut(t, kv, "stays", "x", function.KVPut{})
	mustPut(t, kv, "later", "x", function.KVPut{TTL: time.Hour})
	rows := func() (n int) {
		if err := s.db.QueryRow(`SELECT count(*) FROM kv`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := rows(); n != 1202 {
		t.Fatalf("%d rows, want 1202", n)
	}
	c.Advance(2 * time.Minute)
	if got := names(listAll(t, kv, "", 0)); got != "later,stays" {
		t.Fatalf("before the purge, list shows %s", got)
	}
	n, err := s.Purge(ctx)
	if err != nil || n != 1200 {
		t.Fatalf("Purge = %d, %v; want 1200", n, err)
	}
	if n := rows(); n != 2 {
		t.Fatalf("%d rows after the purge, want 2", n)
	}
}

// Without the timer, writes purge as they go: a few hundred writes delete a batch.
func TestSQLitePurgeOnWrites(t *testing.T) {
	c := &clock{now: time.Now()}
	s := openSQLite(t, WithClock(c.Now), WithPurgeInterval(-1))
	kv := s.Namespace("fn")
	for i := range 300 {
		mustPut(t, kv, time.Duration(i).String(), "x", function.KVPut{TTL: time.Minute})
	}
	c.Advance(time.Hour)
	for range purgeEveryWrites {
		mustPut(t, kv, "busy", "x", function.KVPut{})
	}
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM kv`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d rows after %d writes, want the expired 300 purged", n, purgeEveryWrites)
	}
}

// The timer purges on its own.
func TestSQLitePurgeTimer(t *testing.T) {
	c := &clock{now: time.Now()}
	s := openSQLite(t, WithClock(c.Now), WithPurgeInterval(10*time.Millisecond))
	mustPut(t, s.Namespace("fn"), "k", "v", function.KVPut{TTL: time.Second})
	c.Advance(time.Hour)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := s.db.QueryRow(`SELECT count(*) FROM kv`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the expired row is still there after 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Keys outlive the process, the file is in WAL mode, and a closed store refuses calls.
func TestSQLiteReopenAndClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s.Namespace("fn"), "k", "v", function.KVPut{Metadata: `{"a":1}`})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Namespace("fn").Get(context.Background(), "k"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := s.Namespace("fn").Put(context.Background(), "k", nil, function.KVPut{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var mode string
	if err := s2.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode %q %v, want wal", mode, err)
	}
	if v := mustGet(t, s2.Namespace("fn"), "k"); string(v.Value) != "v" || v.Metadata != `{"a":1}` {
		t.Fatalf("after reopening: %q %q", v.Value, v.Metadata)
	}
}

// The default value limit is Workers KV's 25 MiB.
func TestDefaultValueLimit(t *testing.T) {
	if err := checkPut("k", make([]byte, DefaultMaxValueBytes), function.KVPut{}, newOptions(nil).maxValueBytes); err != nil {
		t.Fatalf("25 MiB: %v", err)
	}
	err := checkPut("k", make([]byte, DefaultMaxValueBytes+1), function.KVPut{}, newOptions(nil).maxValueBytes)
	if !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("25 MiB + 1: %v", err)
	}
}

func BenchmarkSQLiteGet(b *testing.B) {
	kv := openSQLite(b).Namespace("fn")
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

func BenchmarkSQLitePut(b *testing.B) {
	kv := openSQLite(b).Namespace("fn")
	ctx := context.Background()
	v := make([]byte, 1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := kv.Put(ctx, "key"+time.Duration(i%1000).String(), v, function.KVPut{}); err != nil {
			b.Fatal(err)
		}
	}
}
