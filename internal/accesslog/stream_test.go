package accesslog

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestStreamRecentKeepsTheNewestLines(t *testing.T) {
	var s Stream
	if got := s.Recent(time.Time{}, 0, nil); len(got) != 0 {
		t.Fatalf("empty stream returned %d", len(got))
	}
	t0 := time.Unix(1000, 0)
	const n = 10000 // far more than fits: only the newest survive
	for i := range n {
		s.Add(Entry{Time: t0.Add(time.Duration(i) * time.Millisecond), Route: fmt.Sprintf("r%d", i%3), Status: 200 + i%2*300, Line: []byte(fmt.Sprintf("line %05d %s\n", i, strings.Repeat("x", 80)))})
	}
	all := s.Recent(time.Time{}, 0, nil)
	if len(all) == 0 || len(all) > streamEntries {
		t.Fatalf("kept %d entries", len(all))
	}
	for i, e := range all {
		want := n - len(all) + i
		if !strings.HasPrefix(string(e.Line), fmt.Sprintf("line %05d ", want)) || e.Route != fmt.Sprintf("r%d", want%3) {
			t.Fatalf("entry %d = %q (%s), want line %d", i, e.Line[:10], e.Route, want)
		}
	}
	errs := s.Recent(time.Time{}, 5, func(e *Entry) bool { return e.Status >= 500 })
	if len(errs) != 5 || errs[4].Status != 500 || !strings.HasPrefix(string(errs[4].Line), fmt.Sprintf("line %05d", n-1)) {
		t.Fatalf("last 5 errors: %d, last %q", len(errs), errs[len(errs)-1].Line)
	}
	since := s.Recent(t0.Add((n-10)*time.Millisecond), 0, nil)
	if len(since) != 10 {
		t.Fatalf("since: %d entries, want 10", len(since))
	}
}

func TestStreamFollowers(t *testing.T) {
	var s Stream
	f := s.Follow(4, func(e *Entry) bool { return e.Route == "a" })
	line := []byte("l\n")
	for range 10 {
		s.Add(Entry{Route: "a", Line: line})
		s.Add(Entry{Route: "b", Line: line})
	}
	line[0] = 'X' // the follower owns its copy
	got := 0
	for len(f.C()) > 0 {
		e := <-f.C()
		if e.Route != "a" || string(e.Line) != "l\n" {
			t.Fatalf("got %+v", e)
		}
		got++
	}
	if got != 4 || f.Dropped() != 6 {
		t.Fatalf("got %d, dropped %d; want 4 and 6", got, f.Dropped())
	}
	f.Close()
	f.Close()
	if _, ok := <-f.C(); ok || s.Followers() != 0 {
		t.Fatal("closed follower still subscribed")
	}
	s.Add(Entry{Route: "a", Line: line}) // no panic on a closed follower
}

func BenchmarkStreamAdd(b *testing.B) {
	var s Stream
	line := []byte(strings.Repeat("x", 300) + "\n")
	b.ReportAllocs()
	for b.Loop() {
		s.Add(Entry{Route: "r", Status: 200, Line: line})
	}
}
