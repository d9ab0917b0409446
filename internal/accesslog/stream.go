package accesslog

import (
	"sync"
	"time"
)

// Entry is one access-log line of a stream, with what `apoxy logs` filters on.
type Entry struct {
	Time   time.Time
	Route  string
	Status int
	// Function is the edge function that served or filtered the exchange ("" none).
	Function string
	// Line is the formatted line, ending in "\n". Entries handed out by a Stream own it.
	Line []byte
	// Seq numbers the stream's lines in the order they were added (set by Add), so a reader
	// of kept lines that then follows can skip what it already has.
	Seq uint64
}

// Stream is one tenant's recent access-log lines and its followers: `apoxy logs` reads the
// recent lines, `apoxy logs -f` follows. Lines are kept in a few fixed chunks of memory that
// are reused round-robin (so keeping them allocates nothing per line, and an idle stream
// holds nothing until its first line), up to ChunkCount×ChunkSize bytes. A follower that
// reads too slowly loses lines (counted) rather than slowing requests.
type Stream struct {
	mu     sync.Mutex
	chunks [streamChunks][]byte
	gens   [streamChunks]uint64 // generation of the data in each chunk
	gen    uint64               // generation of the chunk being filled
	cur    int                  // chunk being filled
	ring   []streamEntry        // metadata, oldest first from head
	head   int
	n      int
	subs   map[*Follower]struct{}
	seq    uint64
}

const (
	streamChunks    = 4
	streamChunkSize = 64 << 10
	streamEntries   = 2048
)

type streamEntry struct {
	seq      uint64
	time     time.Time
	route    string
	function string
	status   int
	gen      uint64
	chunk    uint8
	off, len int32
}

// Add records a line (copied). Lines over one chunk are not kept, only handed to followers.
func (s *Stream) Add(e Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	e.Seq = s.seq
	if len(e.Line) <= streamChunkSize {
		s.keep(e)
	}
	for f := range s.subs {
		f.offer(e)
	}
}

func (s *Stream) keep(e Entry) {
	if s.ring == nil {
		s.ring = make([]streamEntry, streamEntries)
		s.gen = 1
		s.gens[0] = 1
		s.chunks[0] = make([]byte, 0, streamChunkSize)
	}
	c := s.chunks[s.cur]
	if len(c)+len(e.Line) > streamChunkSize { // next chunk; its old lines are gone
		s.cur = (s.cur + 1) % streamChunks
		s.gen++
		s.gens[s.cur] = s.gen
		if s.chunks[s.cur] == nil {
			s.chunks[s.cur] = make([]byte, 0, streamChunkSize)
		}
		c = s.chunks[s.cur][:0]
	}
	off := len(c)
	s.chunks[s.cur] = append(c, e.Line...)
	se := streamEntry{seq: e.Seq, time: e.Time, route: e.Route, function: e.Function, status: e.Status, gen: s.gen, chunk: uint8(s.cur), off: int32(off), len: int32(len(e.Line))}
	if s.n < len(s.ring) {
		s.ring[(s.head+s.n)%len(s.ring)] = se
		s.n++
	} else {
		s.ring[s.head] = se
		s.head = (s.head + 1) % len(s.ring)
	}
}

// Recent returns up to max kept entries at or after since that match, oldest first.
func (s *Stream) Recent(since time.Time, max int, match func(*Entry) bool) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Entry
	for i := 0; i < s.n; i++ {
		se := &s.ring[(s.head+i)%len(s.ring)]
		if s.gens[se.chunk] != se.gen || se.time.Before(since) {
			continue // its bytes were reused
		}
		e := Entry{Time: se.time, Route: se.route, Function: se.function, Status: se.status, Seq: se.seq}
		if match != nil && !match(&e) {
			continue
		}
		e.Line = append([]byte(nil), s.chunks[se.chunk][se.off:se.off+se.len]...)
		out = append(out, e)
	}
	if max > 0 && len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}

// Follow starts handing new lines that match to a follower, buffering up to buf of them.
func (s *Stream) Follow(buf int, match func(*Entry) bool) *Follower {
	f := &Follower{c: make(chan Entry, buf), match: match, s: s}
	s.mu.Lock()
	if s.subs == nil {
		s.subs = map[*Follower]struct{}{}
	}
	s.subs[f] = struct{}{}
	s.mu.Unlock()
	return f
}

// Followers counts the followers (tests, metrics).
func (s *Stream) Followers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// Follower receives a stream's new lines.
type Follower struct {
	c       chan Entry
	match   func(*Entry) bool
	s       *Stream
	dropped uint64 // under s.mu
	closed  bool
}

// C delivers the lines; it is closed by Close.
func (f *Follower) C() <-chan Entry { return f.c }

// Dropped counts lines lost because the follower read too slowly.
func (f *Follower) Dropped() uint64 {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return f.dropped
}

// offer hands e over without waiting (under s.mu).
func (f *Follower) offer(e Entry) {
	if f.match != nil && !f.match(&e) {
		return
	}
	e.Line = append([]byte(nil), e.Line...)
	select {
	case f.c <- e:
	default:
		f.dropped++
	}
}

// Close stops the follower and closes C.
func (f *Follower) Close() {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	delete(f.s.subs, f)
	close(f.c)
}
