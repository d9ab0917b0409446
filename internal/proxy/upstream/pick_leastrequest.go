package upstream

import (
	"math/rand/v2"
	"time"
)

// LeastRequest is the power of N choices: it draws N addresses at random and keeps the one
// with the fewest requests in flight (Address.Begin/End), the first drawn on a tie. With two
// choices it avoids the herd behaviour of a global "least loaded" (every data-plane instance
// sending to the same idle endpoint) at the cost of two atomic loads. It is the platform
// default. With slow start, each draw is kept with probability the address's ramp weight
// (else drawn again), so a new endpoint is offered less often while it warms up.
type LeastRequest struct {
	choices int
	ss      slowStart
}

// NewLeastRequest returns a least-request Picker comparing choices addresses per pick (below
// 2: 2), with a slow-start window (0: none) measured on now.
func NewLeastRequest(choices int, slowStart time.Duration, now func() time.Time) *LeastRequest {
	if choices < 2 {
		choices = DefaultChoiceCount
	}
	return &LeastRequest{choices: choices, ss: newSlowStart(slowStart, now)}
}

// Prepare notes the slow-start ramps of a new pick set.
func (p *LeastRequest) Prepare(list []*Address) { p.ss.prepare(list) }

// Pick returns the least loaded of N random draws (key is ignored).
func (p *LeastRequest) Pick(list []*Address, _ Key) *Address {
	if len(list) == 1 {
		return list[0]
	}
	now, r := p.ss.active()
	choices := max(p.choices, DefaultChoiceCount)
	var best *Address
	var bestLoad int64
	for range choices {
		a := list[rand.IntN(len(list))]
		if r != nil {
			for i := 0; i < maxSlowStartRejects && !p.ss.accept(a, now, r); i++ {
				a = list[rand.IntN(len(list))]
			}
		}
		if load := a.inflight.Load(); best == nil || load < bestLoad {
			best, bestLoad = a, load
		}
	}
	return best
}

// leastRequest2 is the keyless fallback of the hashing pickers: two choices, no slow start.
func leastRequest2(list []*Address) *Address {
	a := list[rand.IntN(len(list))]
	if len(list) == 1 {
		return a
	}
	if b := list[rand.IntN(len(list))]; b.inflight.Load() < a.inflight.Load() {
		return b
	}
	return a
}
