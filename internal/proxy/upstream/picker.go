package upstream

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// Load-balancer types of ir.LoadBalancer.Type.
const (
	LBRoundRobin   = "RoundRobin"
	LBLeastRequest = "LeastRequest"
	LBRandom       = "Random"
	LBRingHash     = "RingHash"
	LBMaglev       = "Maglev"
)

// Defaults of the load-balancer settings (policy API design §2.3), used where the IR leaves a
// field zero.
const (
	DefaultChoiceCount  = 2
	DefaultRingMin      = 1024
	DefaultRingMax      = 8388608
	DefaultMaglevTable  = 65537
	maxMaglevTable      = 5000011
	minSlowStartWeight  = 0.1 // a new endpoint's weight when its ramp starts
	maxSlowStartRejects = 16  // bound on re-draws while ramping (each accepted with p ≥ 0.1)
)

// PickerFor builds the Picker a Backend's load balancer asks for. nil is the platform default,
// LeastRequest with two choices; an unknown type falls back to it too. now is the clock of
// slow start (nil: time.Now).
func PickerFor(lb *ir.LoadBalancer, now func() time.Time) Picker {
	if now == nil {
		now = time.Now
	}
	if lb == nil {
		return NewLeastRequest(DefaultChoiceCount, 0, now)
	}
	switch lb.Type {
	case LBRoundRobin:
		return NewRoundRobin(time.Duration(lb.SlowStart), now)
	case LBRandom:
		return &Random{}
	case LBRingHash:
		return NewRingHash(lb.RingMin, lb.RingMax)
	case LBMaglev:
		return NewMaglev(lb.MaglevTable)
	default:
		return NewLeastRequest(lb.ChoiceCount, time.Duration(lb.SlowStart), now)
	}
}

// hashes reports whether lb is a consistent-hash balancer with a hash source, i.e. whether
// requests need a Key.
func hashes(lb *ir.LoadBalancer) bool {
	return lb != nil && lb.Hash != nil && (lb.Type == LBRingHash || lb.Type == LBMaglev)
}

// mix64 is the SplitMix64 finaliser: a bijective scramble of 64 bits, used to derive further
// keys from one (a retry's rehash, combining header values).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// slowStart ramps the weight of endpoints that (re)joined the pick set linearly from
// minSlowStartWeight to 1 over window, relative to the set's longest-serving member: when
// every endpoint joined together (a cluster starting) nobody is ramped.
//
// Pickers apply the weight by rejection: a candidate is kept with probability weight, else
// drawn again. The clock is read only while some ramp is running.
type slowStart struct {
	window int64 // nanoseconds; 0: off
	now    func() time.Time
	ramp   atomic.Pointer[ramp]
}

// ramp describes the running ramps of the current pick set.
type ramp struct {
	end    int64 // when the newest member's ramp ends (unix ns)
	oldest int64 // the oldest member's join time (unix ns)
}

func newSlowStart(window time.Duration, now func() time.Time) slowStart {
	if now == nil {
		now = time.Now
	}
	return slowStart{window: int64(max(window, 0)), now: now}
}

// prepare finds the ramps running in a new pick set.
func (s *slowStart) prepare(list []*Address) {
	if s.window == 0 {
		return
	}
	if len(list) < 2 {
		s.ramp.Store(nil)
		return
	}
	oldest, newest := list[0].upSince.Load(), list[0].upSince.Load()
	for _, a := range list[1:] {
		u := a.upSince.Load()
		oldest, newest = min(oldest, u), max(newest, u)
	}
	if newest == oldest {
		s.ramp.Store(nil)
		return
	}
	s.ramp.Store(&ramp{end: newest + s.window, oldest: oldest})
}

// active returns the current time and the running ramp, or nil when none runs (then the
// picker draws uniformly).
func (s *slowStart) active() (int64, *ramp) {
	if s.window == 0 {
		return 0, nil
	}
	r := s.ramp.Load()
	if r == nil {
		return 0, nil
	}
	now := s.now().UnixNano()
	if now >= r.end {
		s.ramp.CompareAndSwap(r, nil)
		return 0, nil
	}
	return now, r
}

// weight is the linear ramp at elapsed nanoseconds since joining.
func (s *slowStart) weight(elapsed int64) float64 {
	if elapsed >= s.window {
		return 1
	}
	if elapsed < 0 {
		elapsed = 0
	}
	return minSlowStartWeight + (1-minSlowStartWeight)*float64(elapsed)/float64(s.window)
}

// accept reports whether a drawn candidate is kept: with probability its weight relative to
// the set's oldest member.
func (s *slowStart) accept(a *Address, now int64, r *ramp) bool {
	w := s.weight(now-a.upSince.Load()) / s.weight(now-r.oldest)
	return w >= 1 || rand.Float64() < w
}
