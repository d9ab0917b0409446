package accesslog

// Flags say what happened to an exchange beyond its status, in Envoy's response-flag
// vocabulary, for %RESPONSE_FLAGS% and %RESPONSE_FLAGS_LONG%. The gateway's filters set them
// (internal/proxy/filter aliases this type); the formatter only reads them.
type Flags uint32

// The flags. Bits never move: the first eleven are the gateway's original set, later ones are
// appended after them. Each line names the short and the long (Pascal case) name Envoy prints.
const (
	FlagRateLimited                     Flags = 1 << iota // RL, RateLimited: answered by the rate limiter
	FlagDelayInjected                                     // DI, DelayInjected: a fault delay was injected
	FlagFaultInjected                                     // FI, FaultInjected: a fault abort answered
	FlagOverloaded                                        // UO, UpstreamOverflow: the circuit breaker refused
	FlagRetryLimitExceeded                                // URX, UpstreamRetryLimitExceeded: retries (or the retry budget) ran out
	FlagNoHealthyUpstream                                 // UH, NoHealthyUpstream: no healthy endpoint
	FlagUpstreamConnectFailure                            // UF, UpstreamConnectionFailure: the upstream connection failed
	FlagUpstreamTimeout                                   // UT, UpstreamRequestTimeout: the upstream timed out
	FlagRateLimitStoreError                               // RLSE, RateLimitServiceError: the global rate-limit store failed
	FlagStreamIdleTimeout                                 // SI, StreamIdleTimeout: the stream idled past timeouts.idle
	FlagMaxStreamDuration                                 // UMSDR, UpstreamMaxStreamDurationReached: the stream reached timeouts.maxStreamDuration
	FlagNoRoute                                           // NR, NoRouteFound: no route (or no TLS/TCP route) matched
	FlagUpstreamConnectionTermination                     // UC, UpstreamConnectionTermination: the upstream closed the connection mid-exchange
	FlagDownstreamConnectionTermination                   // DC, DownstreamConnectionTermination: the client went away
	FlagUnauthorizedExternalService                       // UAEX, UnauthorizedExternalService: the external authorization service denied
	FlagUpstreamProtocolError                             // UPE, UpstreamProtocolError: the upstream's response broke HTTP
	FlagLocalReset                                        // LR, LocalReset: the gateway reset the stream itself
)

// flagNames are each bit's short and long names, in bit order (the order Append prints).
var flagNames = [...]struct{ short, long string }{
	{"RL", "RateLimited"},
	{"DI", "DelayInjected"},
	{"FI", "FaultInjected"},
	{"UO", "UpstreamOverflow"},
	{"URX", "UpstreamRetryLimitExceeded"},
	{"UH", "NoHealthyUpstream"},
	{"UF", "UpstreamConnectionFailure"},
	{"UT", "UpstreamRequestTimeout"},
	{"RLSE", "RateLimitServiceError"},
	{"SI", "StreamIdleTimeout"},
	{"UMSDR", "UpstreamMaxStreamDurationReached"},
	{"NR", "NoRouteFound"},
	{"UC", "UpstreamConnectionTermination"},
	{"DC", "DownstreamConnectionTermination"},
	{"UAEX", "UnauthorizedExternalService"},
	{"UPE", "UpstreamProtocolError"},
	{"LR", "LocalReset"},
}

// Append appends the flags' short names as Envoy prints them ("RL,DI"), nothing when none is
// set. Flags print in bit order.
func (f Flags) Append(b []byte) []byte { return f.appendNames(b, false) }

// AppendLong appends the flags' long names ("RateLimited,DelayInjected"), as Envoy prints
// %RESPONSE_FLAGS_LONG%; nothing when none is set.
func (f Flags) AppendLong(b []byte) []byte { return f.appendNames(b, true) }

func (f Flags) appendNames(b []byte, long bool) []byte {
	first := true
	for i := range flagNames {
		if f&(1<<i) == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		if long {
			b = append(b, flagNames[i].long...)
		} else {
			b = append(b, flagNames[i].short...)
		}
		first = false
	}
	return b
}

// String returns the short names ("RL,DI"), "" when none is set.
func (f Flags) String() string { return string(f.Append(nil)) }
