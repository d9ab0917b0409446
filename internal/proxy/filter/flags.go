package filter

import "apoxy.dev/apoxy/internal/accesslog"

// Flags say what happened to an exchange beyond its status, in Envoy's response-flag
// vocabulary, for the access log. The type lives in internal/accesslog, which prints them.
type Flags = accesslog.Flags

// The flags, as the filters and the proxy name them (accesslog documents each one and its
// Envoy names).
const (
	FlagRateLimited            = accesslog.FlagRateLimited            // RL
	FlagDelayInjected          = accesslog.FlagDelayInjected          // DI
	FlagFaultInjected          = accesslog.FlagFaultInjected          // FI
	FlagOverloaded             = accesslog.FlagOverloaded             // UO
	FlagRetryLimitExceeded     = accesslog.FlagRetryLimitExceeded     // URX
	FlagNoHealthyUpstream      = accesslog.FlagNoHealthyUpstream      // UH
	FlagUpstreamConnectFailure = accesslog.FlagUpstreamConnectFailure // UF
	FlagUpstreamTimeout        = accesslog.FlagUpstreamTimeout        // UT
	FlagRateLimitStoreError    = accesslog.FlagRateLimitStoreError    // RLSE
	FlagStreamIdleTimeout      = accesslog.FlagStreamIdleTimeout      // SI
	FlagMaxStreamDuration      = accesslog.FlagMaxStreamDuration      // UMSDR

	FlagNoRoute                         = accesslog.FlagNoRoute                         // NR
	FlagUpstreamConnectionTermination   = accesslog.FlagUpstreamConnectionTermination   // UC
	FlagDownstreamConnectionTermination = accesslog.FlagDownstreamConnectionTermination // DC
	FlagUnauthorizedExternalService     = accesslog.FlagUnauthorizedExternalService     // UAEX
	FlagUpstreamProtocolError           = accesslog.FlagUpstreamProtocolError           // UPE
	FlagLocalReset                      = accesslog.FlagLocalReset                      // LR
)
