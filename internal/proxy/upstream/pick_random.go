package upstream

import "math/rand/v2"

// Random picks a healthy address uniformly at random (the runtime's per-thread generator: no
// lock, no allocation).
type Random struct{}

// Pick returns a random address (key is ignored).
func (Random) Pick(list []*Address, _ Key) *Address {
	return list[rand.IntN(len(list))]
}
