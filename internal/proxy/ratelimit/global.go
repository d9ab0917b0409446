package ratelimit

import (
	"context"
	"time"
)

// Store counts Global rules in a store every gateway process serving a project shares.
type Store interface {
	// Hit counts one request for each key (already namespaced by project, policy, rule and
	// window) in one round trip, each key expiring after its window, and returns the counts
	// in order. An error means the store could not be reached; the caller applies the
	// policy's failure mode.
	Hit(ctx context.Context, keys []string, ttls []time.Duration) ([]uint32, error)
}
