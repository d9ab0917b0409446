package authority

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// limiter is response-rate limiting: a token bucket per source prefix (an IPv4 /24, an IPv6
// /56), so that spoofed queries cannot turn the server into an amplifier against a victim. The
// buckets are a fixed table indexed by a hash of the prefix: memory does not grow with the
// number of sources, and two prefixes sharing a bucket share its rate.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	slip  int
	seed  maphash.Seed
	now   func() time.Time

	shards [64]struct {
		sync.Mutex
		buckets [256]bucket
	}
}

type bucket struct {
	tokens  float64
	last    int64 // unix nanoseconds of the last refill
	limited int   // responses limited since the bucket emptied (for slip)
	logged  int64 // unix nanoseconds of the last log line about this bucket
}

// logEvery bounds the log lines about one rate-limited prefix.
const logEvery = int64(time.Minute)

// Verdicts of the limiter.
type verdict int

const (
	send verdict = iota
	drop
	slip
)

func newLimiter(rate, slipEvery int) *limiter {
	return &limiter{rate: float64(rate), burst: float64(rate), slip: slipEvery, seed: maphash.MakeSeed(), now: time.Now}
}

// prefix is the rate-limited block of a source address.
func prefix(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		p, _ := a.Prefix(24)
		return p
	}
	p, _ := a.Prefix(56)
	return p
}

// allow decides a response to src; report is true when the operator should be told that the
// prefix is being limited (its first limited response, then at most once a minute).
func (l *limiter) allow(src netip.Addr) (v verdict, report bool) {
	p := prefix(src).Addr().As16()
	h := maphash.Bytes(l.seed, p[:])
	sh := &l.shards[h%64]
	now := l.now().UnixNano()
	sh.Lock()
	defer sh.Unlock()
	b := &sh.buckets[(h>>6)%256]
	if b.last == 0 {
		b.tokens = l.burst
	} else {
		b.tokens = min(l.burst, b.tokens+float64(now-b.last)/1e9*l.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		b.limited = 0
		return send, false
	}
	b.limited++
	if b.limited == 1 && now-b.logged >= logEvery {
		b.logged, report = now, true
	}
	if l.slip > 0 && b.limited%l.slip == 0 {
		return slip, report
	}
	return drop, report
}

// slipped is the truncated, empty form of a response: header and question, TC set, so the
// client asks again over TCP, where a spoofed source cannot follow.
func slipped(resp []byte, qnameEnd int) []byte {
	end := qnameEnd + 4
	if end > len(resp) || len(resp) < 12 {
		return nil
	}
	resp = resp[:end]
	resp[2] |= 0x02 // TC
	resp[6], resp[7], resp[8], resp[9], resp[10], resp[11] = 0, 0, 0, 0, 0, 0
	return resp
}
