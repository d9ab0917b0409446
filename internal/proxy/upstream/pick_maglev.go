package upstream

import (
	"slices"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// Maglev is the consistent hashing of Google's Maglev load balancer (Eisenbud et al., NSDI
// 2016): a lookup table of a prime size M where each address owns about M/N slots, so a pick
// is one modulo and one load. Each address has a permutation of the slots, (offset + j·skip)
// mod M, from two hashes of its IP; the addresses take turns claiming their next preferred
// free slot until the table is full. Removing one of N addresses moves its slots and a few
// more (slightly above 1/N of keys). Addresses are taken in IP order and hashed by IP, so the
// table depends only on the set of addresses: every data-plane instance maps a key to the
// same endpoint. The table is rebuilt by Prepare when the pick set changes and read
// lock-free by Pick; a request without a key is balanced by least request.
type Maglev struct {
	size  uint64
	table atomic.Pointer[maglevTable]
}

// maglevTable maps slot → index into addrs.
type maglevTable struct {
	slots []uint32
	addrs []*Address
}

// Seeds of the two address hashes (offset and skip).
const (
	maglevOffsetSeed = 0x6d61676c65762d6f // "maglev-o"
	maglevSkipSeed   = 0x6d61676c65762d73 // "maglev-s"
)

// NewMaglev returns a Maglev Picker with a lookup table of size slots (0: 65537). A size that
// is not prime (the API refuses those) is raised to the next prime, since the permutations
// cover the table only when M is prime; sizes above 5000011 are lowered to it.
func NewMaglev(size int) *Maglev {
	if size <= 0 {
		size = DefaultMaglevTable
	}
	size = min(size, maxMaglevTable)
	for !isPrime(size) {
		size++
	}
	return &Maglev{size: uint64(size)}
}

// Prepare fills the lookup table of a new pick set.
func (p *Maglev) Prepare(list []*Address) {
	n := len(list)
	if n == 0 {
		p.table.Store(&maglevTable{})
		return
	}
	addrs := slices.Clone(list)
	slices.SortFunc(addrs, func(x, y *Address) int { return x.IP.Compare(y.IP) })
	m := p.size
	// next[i] is address i's next preferred slot; skip[i] its stride through the table.
	next := make([]uint64, n)
	skip := make([]uint64, n)
	buf := make([]byte, 0, 48)
	d := xxhash.NewWithSeed(maglevOffsetSeed)
	for i, a := range addrs {
		buf = a.IP.AppendTo(buf[:0])
		d.ResetWithSeed(maglevOffsetSeed)
		d.Write(buf)
		next[i] = d.Sum64() % m
		d.ResetWithSeed(maglevSkipSeed)
		d.Write(buf)
		skip[i] = d.Sum64()%(m-1) + 1
	}
	const empty = ^uint32(0)
	slots := make([]uint32, m)
	for i := range slots {
		slots[i] = empty
	}
	for filled := uint64(0); filled < m; {
		for i := range n {
			c := next[i]
			for slots[c] != empty {
				c = (c + skip[i]) % m
			}
			slots[c] = uint32(i)
			next[i] = (c + skip[i]) % m
			if filled++; filled == m {
				break
			}
		}
	}
	p.table.Store(&maglevTable{slots: slots, addrs: addrs})
}

// Pick returns the address of key's slot, or a least-request choice without a key.
func (p *Maglev) Pick(list []*Address, key Key) *Address {
	t := p.table.Load()
	if !key.Set || t == nil || len(t.slots) == 0 {
		return leastRequest2(list)
	}
	return t.addrs[t.slots[key.Hash%uint64(len(t.slots))]]
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}
