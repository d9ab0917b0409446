package filter

// Flags say what happened to an exchange beyond its status, in Envoy's response-flag
// vocabulary, for the access log.
type Flags uint16

// The flags.
const (
	FlagRateLimited            Flags = 1 << iota // RL: answered by the rate limiter
	FlagDelayInjected                            // DI: a fault delay was injected
	FlagFaultInjected                            // FI: a fault abort answered
	FlagOverloaded                               // UO: the circuit breaker refused
	FlagRetryLimitExceeded                       // URX: retries (or the retry budget) ran out
	FlagNoHealthyUpstream                        // UH: no healthy endpoint
	FlagUpstreamConnectFailure                   // UF: the upstream connection failed
	FlagUpstreamTimeout                          // UT: the upstream timed out
	FlagRateLimitStoreError                      // RLSE: the global rate-limit store failed
	FlagStreamIdleTimeout                        // SI: the stream idled past timeouts.idle
	FlagMaxStreamDuration                        // UMSDR: the stream reached timeouts.maxStreamDuration
)

var flagNames = [...]string{"RL", "DI", "FI", "UO", "URX", "UH", "UF", "UT", "RLSE", "SI", "UMSDR"}

// Append appends the flags as Envoy prints them ("RL,DI"), nothing when none is set.
func (f Flags) Append(b []byte) []byte {
	first := true
	for i, n := range flagNames {
		if f&(1<<i) == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		b = append(b, n...)
		first = false
	}
	return b
}

func (f Flags) String() string { return string(f.Append(nil)) }
