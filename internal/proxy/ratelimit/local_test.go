package ratelimit

import (
	"sync"
	"testing"
	"time"
)

func TestWindowAlignment(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 41, 7, 500e6, time.UTC)
	for _, tc := range []struct {
		d     time.Duration
		start time.Time
	}{
		{time.Second, time.Date(2026, 12, 2, 10, 41, 7, 0, time.UTC)},
		{time.Minute, time.Date(2026, 12, 2, 10, 41, 0, 0, time.UTC)},
		{time.Hour, time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)},
		{24 * time.Hour, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)},
	} {
		start, reset := Window(now, tc.d)
		if start != tc.start.Unix() || reset != tc.start.Add(tc.d).Sub(now) {
			t.Errorf("%v: start %v reset %v", tc.d, time.Unix(start, 0).UTC(), reset)
		}
	}
}

func TestCountsPerKeyAndWindow(t *testing.T) {
	s := NewLocal().Set("p/r", 100)
	for i := uint32(1); i <= 3; i++ {
		if n := s.Hit(1, 100); n != i {
			t.Fatalf("hit %d counted %d", i, n)
		}
	}
	if n := s.Hit(2, 100); n != 1 {
		t.Errorf("another key starts at 1, got %d", n)
	}
	if n := s.Hit(1, 160); n != 1 {
		t.Errorf("a new window starts at 1, got %d", n)
	}
}

// The bound holds: the least recently used key goes first, and the set never grows past it.
func TestLRUBound(t *testing.T) {
	s := NewLocal().Set("p/r", 3)
	s.Hit(1, 0)
	s.Hit(2, 0)
	s.Hit(3, 0)
	s.Hit(1, 0) // 1 is now the most recent; 2 the least
	s.Hit(4, 0) // evicts 2
	if s.Len() != 3 {
		t.Fatalf("len %d", s.Len())
	}
	if n := s.Hit(1, 0); n != 3 {
		t.Errorf("key 1 kept its count: %d", n)
	}
	if n := s.Hit(2, 0); n != 1 {
		t.Errorf("key 2 was evicted and starts again: %d", n)
	}
	big := NewLocal().Set("big", 5000)
	for k := range uint64(20000) {
		big.Hit(k, 0)
	}
	if n := big.Len(); n > 5000+shardCount {
		t.Errorf("a 5000-key set holds %d keys", n)
	}
}

// Counters survive a configuration swap: the same counter identity returns the same set, a
// changed bound applies to it, and Retain drops only unused counters.
func TestCountersSurviveSwaps(t *testing.T) {
	l := NewLocal()
	a := l.Set("p/policy/rule", 10)
	a.Hit(7, 0)
	if b := l.Set("p/policy/rule", 20); b != a || b.Hit(7, 0) != 2 {
		t.Fatal("the counter was reset by a new configuration")
	}
	l.Set("p/policy/gone", 10)
	l.Retain(func(c string) bool { return c == "p/policy/rule" })
	if l.Len() != 1 {
		t.Errorf("retained %d sets", l.Len())
	}
}

func TestConcurrentHits(t *testing.T) {
	s := NewLocal().Set("c", 100000)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				s.Hit(uint64(i%50+g*0), 0)
			}
		}()
	}
	wg.Wait()
	var total uint32
	for k := range uint64(50) {
		total += s.Hit(k, 0) - 1
	}
	if total != 8000 {
		t.Errorf("counted %d of 8000 hits", total)
	}
}

func BenchmarkHit(b *testing.B) {
	s := NewLocal().Set("c", 100000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		k := uint64(0)
		for pb.Next() {
			k++
			s.Hit(k%1000, 0)
		}
	})
}
