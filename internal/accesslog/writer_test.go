package accesslog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// blockingSink never returns from Write until released: a stuck `| less` or a full pipe.
type blockingSink struct {
	release chan struct{}
	mu      sync.Mutex
	got     bytes.Buffer
}

func (s *blockingSink) Write(p []byte) (int, error) {
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got.Write(p)
}

// TestWriterNeverBlocksOnAStuckSink: with the sink stuck, 100k lines are accepted or dropped
// within a second (never waiting on the sink), drops are counted, and once the sink moves
// every accepted line arrives whole and in order.
func TestWriterNeverBlocksOnAStuckSink(t *testing.T) {
	sink := &blockingSink{release: make(chan struct{})}
	var hook int
	w := NewWriter(sink, WriterOptions{Limit: 64 << 10, FlushInterval: time.Millisecond, OnDrop: func() { hook++ }})
	line := []byte(strings.Repeat("x", 99) + "\n")
	start := time.Now()
	accepted := 0
	for range 100_000 {
		if w.Write(line) {
			accepted++
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("100k writes took %v with the sink stuck", d)
	}
	if w.Dropped() == 0 || int(w.Dropped())+accepted != 100_000 || hook != int(w.Dropped()) {
		t.Fatalf("accepted %d, dropped %d (hook %d): want every line accounted for", accepted, w.Dropped(), hook)
	}
	close(sink.release)
	w.Close()
	got := sink.got.String()
	if n := strings.Count(got, "\n"); n != accepted {
		t.Fatalf("sink got %d lines, %d were accepted", n, accepted)
	}
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if len(l) != 99 {
			t.Fatalf("a torn line: %q", l)
		}
	}
}

// TestWriterConcurrent: lines written from many goroutines never interleave (run with -race).
func TestWriterConcurrent(t *testing.T) {
	var sink lockedBuffer
	w := NewWriter(&sink, WriterOptions{FlushInterval: time.Millisecond})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			line := []byte(strings.Repeat(string(rune('a'+g)), 50) + "\n")
			for range 2000 {
				w.Write(line)
				if g == 0 {
					w.Flush()
				}
			}
		}()
	}
	wg.Wait()
	w.Close()
	lines := strings.Split(strings.TrimSuffix(sink.String(), "\n"), "\n")
	if len(lines) != 16000 {
		t.Fatalf("%d lines, want 16000", len(lines))
	}
	for _, l := range lines {
		if len(l) != 50 || strings.Count(l, l[:1]) != 50 {
			t.Fatalf("interleaved line %q", l)
		}
	}
	if w.Write([]byte("late\n")) {
		t.Fatal("a write after Close was accepted")
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestFileReopen is logrotate's dance: rename the file, signal, and new lines go to a new
// file at the old path while nothing is lost.
func TestFileReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter(f, WriterOptions{})
	w.Write([]byte("one\n"))
	w.Flush()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("two\n")) // still to the renamed file: it is open
	w.Flush()
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("three\n"))
	w.Close()
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "one\ntwo\n" || string(cur) != "three\n" {
		t.Fatalf("rotated %q, current %q", old, cur)
	}
}
