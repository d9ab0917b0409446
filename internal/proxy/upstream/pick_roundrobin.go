package upstream

import (
	"sync/atomic"
	"time"
)

// RoundRobin hands out the healthy addresses in turn. Its zero value is ready (no slow start).
// With slow start, an address that recently (re)joined the pick set is skipped with
// probability one minus its ramp weight, so its share grows linearly over the window.
type RoundRobin struct {
	next atomic.Uint64
	ss   slowStart
}

// NewRoundRobin returns a round-robin Picker with a slow-start window (0: none) measured on
// now.
func NewRoundRobin(slowStart time.Duration, now func() time.Time) *RoundRobin {
	return &RoundRobin{ss: newSlowStart(slowStart, now)}
}

// Prepare notes the slow-start ramps of a new pick set.
func (p *RoundRobin) Prepare(list []*Address) { p.ss.prepare(list) }

// Pick returns the next address in turn (key is ignored).
func (p *RoundRobin) Pick(list []*Address, _ Key) *Address {
	a := list[p.next.Add(1)%uint64(len(list))]
	now, r := p.ss.active()
	if r == nil {
		return a
	}
	for i := 0; i < maxSlowStartRejects && !p.ss.accept(a, now, r); i++ {
		a = list[p.next.Add(1)%uint64(len(list))]
	}
	return a
}
