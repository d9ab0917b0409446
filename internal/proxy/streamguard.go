package proxy

import (
	"sync/atomic"
	"time"

	"apoxy.dev/apoxy/internal/proxy/filter"
)

// streamGuard enforces a route's stream timeouts (a TrafficPolicy's timeouts.idle and
// timeouts.maxStreamDuration) once the response head is out: it ends a response stream, or an
// upgraded connection, that passes no byte either way for idle, or that is still running at
// end. Before the head, the request deadline covers both (handler.serve folds
// maxStreamDuration into it).
//
// Bytes either way only store a timestamp; one timer per guarded stream wakes at the earliest
// moment either limit could be reached, and re-arms when activity moved that moment. The guard
// is armed lazily: a response read in one piece never starts a timer.
type streamGuard struct {
	idle time.Duration
	end  time.Time // zero: no maximum
	// last is when the last byte passed either way (unix ns).
	last atomic.Int64
	// fired says which limit ended the stream (0 none, firedIdle, firedMax).
	fired atomic.Uint32
	abort func()
	timer atomic.Pointer[time.Timer]
}

const (
	firedIdle = 1 + iota
	firedMax
)

// newStreamGuard returns the guard for a route's timeouts, nil when it sets neither.
func newStreamGuard(t *streamTimeouts, start time.Time) *streamGuard {
	if t.idle <= 0 && t.max <= 0 {
		return nil
	}
	g := &streamGuard{idle: t.idle}
	if t.max > 0 {
		g.end = start.Add(t.max)
	}
	return g
}

// streamTimeouts are a route's compiled stream limits.
type streamTimeouts struct {
	idle, max time.Duration
}

// touch records activity. Safe on a nil guard.
func (g *streamGuard) touch() {
	if g != nil {
		g.last.Store(time.Now().UnixNano())
	}
}

// start arms the guard: abort is called (once, from the timer's goroutine) when a limit is
// reached, and must make the stream's reads and writes fail.
func (g *streamGuard) start(abort func()) {
	now := time.Now()
	g.abort = abort
	g.last.Store(now.UnixNano())
	t := time.AfterFunc(time.Hour, g.check)
	g.timer.Store(t)
	t.Reset(g.wait(now))
}

// wait is how long until a limit could next be reached.
func (g *streamGuard) wait(now time.Time) time.Duration {
	d := time.Duration(-1)
	if g.idle > 0 {
		d = g.idle - now.Sub(time.Unix(0, g.last.Load()))
	}
	if !g.end.IsZero() {
		if e := g.end.Sub(now); d < 0 || e < d {
			d = e
		}
	}
	return max(d, 0)
}

func (g *streamGuard) check() {
	now := time.Now()
	switch {
	case !g.end.IsZero() && !now.Before(g.end):
		g.fired.Store(firedMax)
	case g.idle > 0 && now.Sub(time.Unix(0, g.last.Load())) >= g.idle:
		g.fired.Store(firedIdle)
	default:
		if t := g.timer.Load(); t != nil {
			t.Reset(g.wait(now))
		}
		return
	}
	g.abort()
}

// stop disarms the guard. Safe on a nil or never started guard.
func (g *streamGuard) stop() {
	if g == nil {
		return
	}
	if t := g.timer.Load(); t != nil {
		t.Stop()
	}
}

// ended reports which limit ended the stream, as the access-log flag and the error text;
// zero when none did.
func (g *streamGuard) ended() (filter.Flags, string) {
	if g == nil {
		return 0, ""
	}
	switch g.fired.Load() {
	case firedIdle:
		return filter.FlagStreamIdleTimeout, "stream idle timeout"
	case firedMax:
		return filter.FlagMaxStreamDuration, "max stream duration reached"
	}
	return 0, ""
}

// guardedRW counts an upgraded connection's bytes both ways as stream activity.
type guardedRW struct {
	rwc interface {
		Read([]byte) (int, error)
		Write([]byte) (int, error)
		Close() error
	}
	g *streamGuard
}

func (c *guardedRW) Read(p []byte) (int, error) {
	n, err := c.rwc.Read(p)
	if n > 0 {
		c.g.touch()
	}
	return n, err
}

func (c *guardedRW) Write(p []byte) (int, error) {
	n, err := c.rwc.Write(p)
	if n > 0 {
		c.g.touch()
	}
	return n, err
}

func (c *guardedRW) Close() error { return c.rwc.Close() }
