package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// TrafficPolicy shapes the traffic of the Gateways, listeners, routes and route rules it targets:
// rate limits, retries, timeouts, circuit breaking, outlier detection, load balancing and fault
// injection. Each of those is a block; for a request, each block is taken whole from the most
// specific policy that sets it (route rule, route, listener, Gateway), so a Gateway can set
// timeouts while a route sets retries. Rate-limit rules merge by name across levels.
type TrafficPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec TrafficPolicySpec `json:"spec,omitempty"`
	// Status is the upstream Gateway API policy status: one entry per ancestor (the Gateway, with
	// the listener's sectionName for listener targets), written by the translator.
	Status gwapiv1.PolicyStatus `json:"status,omitempty"`
}

// PolicyStrategy says whether a policy's blocks are defaults lower levels may replace or a
// baseline they may not.
type PolicyStrategy string

const (
	// StrategyDefault: a more specific policy (or a route's own fields) replaces this policy's
	// blocks. The default.
	StrategyDefault PolicyStrategy = "Default"
	// StrategyOverride: each block this policy sets beats every more specific level, including
	// `disabled` and the route's own fields. Only for policies whose targets are all Gateways.
	StrategyOverride PolicyStrategy = "Override"
)

// TrafficPolicySpec is the desired state of a TrafficPolicy. At least one block must be set.
// A block that is set gets its defaults filled in (and stored); an absent block stays absent, so
// it is inherited from a less specific policy.
type TrafficPolicySpec struct {
	// TargetRefs are the objects the policy attaches to, in the policy's namespace: Gateway
	// (sectionName: a listener name), HTTPRoute or GRPCRoute (sectionName: a rule name). The
	// group defaults to gateway.apoxy.dev; gateway.networking.k8s.io is accepted and stored as
	// gateway.apoxy.dev. 1..16 entries, unique by (kind, name, sectionName).
	// +listType=atomic
	TargetRefs []gwapiv1.LocalPolicyTargetReferenceWithSectionName `json:"targetRefs"`
	// Strategy is Default (the default) or Override (only when every target is a Gateway).
	// +optional
	Strategy PolicyStrategy `json:"strategy,omitempty"`

	// RateLimit counts requests in fixed windows and rejects those over a limit.
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// Retry retries failed attempts.
	// +optional
	Retry *Retry `json:"retry,omitempty"`
	// Timeouts bound requests, attempts, connections and idle streams.
	// +optional
	Timeouts *Timeouts `json:"timeouts,omitempty"`
	// CircuitBreaker caps the work sent to a Backend per data-plane instance.
	// +optional
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`
	// OutlierDetection ejects endpoints that keep failing, for a while.
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	// LoadBalancer chooses an endpoint within the Backend a route picked.
	// +optional
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`
	// FaultInjection delays or aborts a share of requests, for chaos testing.
	// +optional
	FaultInjection *FaultInjection `json:"faultInjection,omitempty"`
}

// ---- Common types ----

// RequestMatch selects requests. Every field that is set must hold (AND); the values within one
// list are alternatives (OR). An empty match selects every request.
type RequestMatch struct {
	// Methods are HTTP methods (GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH).
	// +optional
	// +listType=atomic
	Methods []gwapiv1.HTTPMethod `json:"methods,omitempty"`
	// Path matches the normalised request path (the normalisation route matching uses).
	// +optional
	Path *PathMatch `json:"path,omitempty"`
	// Headers match request headers (names case-insensitive); at most 16.
	// +optional
	// +listType=atomic
	Headers []ValueMatch `json:"headers,omitempty"`
	// QueryParams match query parameters (names exact); at most 16.
	// +optional
	// +listType=atomic
	QueryParams []ValueMatch `json:"queryParams,omitempty"`
	// ClientCIDRs match the client address (as trusted forwarding headers give it); at most 32.
	// +optional
	// +listType=atomic
	ClientCIDRs []string `json:"clientCIDRs,omitempty"`
	// JWTClaims match claims of the request's verified JWT, so they need an AuthPolicy that
	// verifies one; rules using them run after authentication. At most 16.
	// +optional
	// +listType=atomic
	JWTClaims []ClaimMatch `json:"jwtClaims,omitempty"`
}

// PathMatchType is how a path is matched.
type PathMatchType string

// Path match types, as Gateway API's HTTPRoute has them.
const (
	PathMatchExact             PathMatchType = "Exact"
	PathMatchPathPrefix        PathMatchType = "PathPrefix"
	PathMatchRegularExpression PathMatchType = "RegularExpression"
)

// PathMatch matches the request path.
type PathMatch struct {
	// Type is Exact, PathPrefix (the default; whole segments) or RegularExpression (RE2).
	// +optional
	Type PathMatchType `json:"type,omitempty"`
	// Value is the path ("/"-rooted for Exact and PathPrefix) or the expression.
	Value string `json:"value"`
}

// ValueMatchType is how a header or query parameter is matched.
type ValueMatchType string

// Value match types.
const (
	ValueMatchExact             ValueMatchType = "Exact"
	ValueMatchRegularExpression ValueMatchType = "RegularExpression"
	ValueMatchPresent           ValueMatchType = "Present"
)

// ValueMatch matches one header or query parameter.
type ValueMatch struct {
	// Name of the header or query parameter.
	Name string `json:"name"`
	// Type is Exact (the default), RegularExpression (RE2) or Present (any value; value unset).
	// +optional
	Type ValueMatchType `json:"type,omitempty"`
	// Value to compare; required unless type is Present.
	// +optional
	Value string `json:"value,omitempty"`
	// Invert selects the requests that do NOT match.
	// +optional
	Invert bool `json:"invert,omitempty"`
}

// ClaimMatch matches a JWT claim (a dot path for nested claims) against a list of values; a
// claim that is a list matches when any of its items does.
type ClaimMatch struct {
	Name string `json:"name"`
	// +listType=atomic
	Values []string `json:"values"`
}

// HeaderRef names a request header.
type HeaderRef struct {
	Name string `json:"name"`
}

// QueryParamRef names a query parameter.
type QueryParamRef struct {
	Name string `json:"name"`
}

// ClaimRef names a claim of the verified JWT (a dot path for nested claims).
type ClaimRef struct {
	Name string `json:"name"`
}

// ---- rateLimit ----

// RateLimitFailureMode says what happens when a service the data plane depends on is
// unreachable: a Global rate-limit rule's store (rateLimit.failureMode, default FailOpen) or an
// AuthPolicy's external authorization service (extAuth.failureMode, default FailClosed).
type RateLimitFailureMode string

// Failure modes.
const (
	// FailOpen lets requests through: uncounted (rate limits) or unchecked (extAuth).
	FailOpen RateLimitFailureMode = "FailOpen"
	// FailClosed refuses them: 503 for rate limits (not 429: the client is not over any
	// limit), extAuth.statusOnError for external authorization.
	FailClosed RateLimitFailureMode = "FailClosed"
)

// RateLimitHeaders chooses the rate-limit response headers.
type RateLimitHeaders string

// Header styles.
const (
	// HeadersXRateLimit sends X-RateLimit-Limit, -Remaining and -Reset (the default).
	HeadersXRateLimit RateLimitHeaders = "XRateLimit"
	// HeadersIETFDraft sends RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers-09).
	HeadersIETFDraft RateLimitHeaders = "IETFDraft"
	// HeadersNone sends only Retry-After, on 429s.
	HeadersNone RateLimitHeaders = "None"
)

// RateLimit is the rateLimit block: a set of named rules and how they answer.
type RateLimit struct {
	// Disabled turns off the rate limits this policy would inherit (no other field may be set).
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// Inherit keeps the rules of less specific policies and adds these (a rule with the same
	// name replaces the inherited one). false drops the inherited rules first. Default true.
	// +optional
	Inherit *bool `json:"inherit,omitempty"`
	// FailureMode is FailOpen (default) or FailClosed, for Global rules whose store is down.
	// +optional
	FailureMode RateLimitFailureMode `json:"failureMode,omitempty"`
	// ResponseHeaders is XRateLimit (default), IETFDraft or None.
	// +optional
	ResponseHeaders RateLimitHeaders `json:"responseHeaders,omitempty"`
	// Response is what a limited request gets.
	// +optional
	Response *RateLimitResponse `json:"response,omitempty"`
	// Exempt requests are never counted nor limited; at most 16 matches, each setting a field.
	// +optional
	// +listType=atomic
	Exempt []RequestMatch `json:"exempt,omitempty"`
	// Rules are the limits, 1..64, with unique names.
	// +optional
	// +listType=atomic
	Rules []RateLimitRule `json:"rules,omitempty"`
}

// RateLimitResponse is the answer to a limited request.
type RateLimitResponse struct {
	// StatusCode is 400..599, default 429. GRPCRoute requests always get grpc-status 8
	// (RESOURCE_EXHAUSTED).
	// +optional
	StatusCode *int32 `json:"statusCode,omitempty"`
}

// RateLimitScope says where a rule's counters live.
type RateLimitScope string

// Scopes.
const (
	// ScopeLocal counts in each data-plane instance (the default).
	ScopeLocal RateLimitScope = "Local"
	// ScopeGlobal counts in the store the Proxy names (spec.rateLimit.redis), shared by every
	// instance serving the project.
	ScopeGlobal RateLimitScope = "Global"
)

// MissingKeyPolicy says what happens to a request that lacks a countBy part.
type MissingKeyPolicy string

// Missing-key policies.
const (
	// MissingKeyShared: such requests share one bucket (the default), so they are not unlimited.
	MissingKeyShared MissingKeyPolicy = "Shared"
	// MissingKeySkip: the rule does not apply to them (clients can evade it by omitting the part).
	MissingKeySkip MissingKeyPolicy = "Skip"
)

// RateLimitCounters says which routes share a rule's buckets.
type RateLimitCounters string

// Counter sharing.
const (
	// CountersPerRoute: one set of buckets per HTTPRoute/GRPCRoute the rule applies to (default).
	CountersPerRoute RateLimitCounters = "PerRoute"
	// CountersShared: one set of buckets for the rule wherever it applies.
	CountersShared RateLimitCounters = "Shared"
)

// RateLimitUnit is a fixed window aligned to Unix time (Day: UTC midnight).
type RateLimitUnit string

// Units.
const (
	UnitSecond RateLimitUnit = "Second"
	UnitMinute RateLimitUnit = "Minute"
	UnitHour   RateLimitUnit = "Hour"
	UnitDay    RateLimitUnit = "Day"
)

// RateLimitRule is one named limit: which requests it counts (match), how they are bucketed
// (countBy) and how many each bucket allows per window (limit).
type RateLimitRule struct {
	// Name is a DNS label, unique within the policy; the key rules merge by across levels.
	// Renaming a rule resets its counters.
	Name string `json:"name"`
	// Scope is Local (default) or Global.
	// +optional
	Scope RateLimitScope `json:"scope,omitempty"`
	// Match selects the requests the rule counts; absent: all of them.
	// +optional
	Match *RequestMatch `json:"match,omitempty"`
	// CountBy are the parts of a bucket's key, 0..4, each naming one source; empty: one bucket
	// for all matched requests.
	// +optional
	// +listType=atomic
	CountBy []KeyPart `json:"countBy,omitempty"`
	// MissingKey is Shared (default when countBy is set) or Skip; only with countBy.
	// +optional
	MissingKey MissingKeyPolicy `json:"missingKey,omitempty"`
	// Limit is how many requests a bucket allows per window.
	Limit *RateLimitValue `json:"limit,omitempty"`
	// Counters is PerRoute (default) or Shared.
	// +optional
	Counters RateLimitCounters `json:"counters,omitempty"`
	// Shadow counts, logs and emits metrics but never rejects nor sends rate-limit headers.
	// +optional
	Shadow bool `json:"shadow,omitempty"`
	// MaxTrackedKeys caps the distinct keys a Local rule tracks (least recently used go first);
	// 1..10000000, default 100000. Only with scope Local.
	// +optional
	MaxTrackedKeys *int32 `json:"maxTrackedKeys,omitempty"`
}

// RateLimitValue is a limit: requests per unit.
type RateLimitValue struct {
	// Requests per window, 0..4294967295; 0 rejects every matching request.
	Requests *int64 `json:"requests,omitempty"`
	// Unit is Second, Minute, Hour or Day.
	Unit RateLimitUnit `json:"unit"`
}

// KeyPart is one part of a rate-limit bucket key; exactly one field is set.
type KeyPart struct {
	// ClientIP buckets by client address, masked to the prefix lengths.
	// +optional
	ClientIP *ClientIPKey `json:"clientIP,omitempty"`
	// Header buckets by a request header's value.
	// +optional
	Header *HeaderRef `json:"header,omitempty"`
	// QueryParam buckets by a query parameter's value.
	// +optional
	QueryParam *QueryParamRef `json:"queryParam,omitempty"`
	// JWTClaim buckets by a claim of the verified JWT (the rule then runs after authentication).
	// +optional
	JWTClaim *ClaimRef `json:"jwtClaim,omitempty"`
	// Method buckets by request method.
	// +optional
	Method *MethodKey `json:"method,omitempty"`
	// Path buckets by normalised path (high cardinality).
	// +optional
	Path *PathKey `json:"path,omitempty"`
}

// ClientIPKey masks the client address before it becomes part of a key.
type ClientIPKey struct {
	// IPv4PrefixLength is 1..32, default 32.
	// +optional
	IPv4PrefixLength *int32 `json:"ipv4PrefixLength,omitempty"`
	// IPv6PrefixLength is 1..128, default 64 (IPv6 clients rotate addresses within a /64).
	// +optional
	IPv6PrefixLength *int32 `json:"ipv6PrefixLength,omitempty"`
}

// MethodKey selects the request method as a key part; it has no settings.
type MethodKey struct{}

// PathKey selects the normalised request path as a key part; it has no settings.
type PathKey struct{}

// ---- retry ----

// RetryCondition is a failure, other than a status code, that triggers a retry.
type RetryCondition string

// Retry conditions.
const (
	// RetryOnConnectFailure: no connection could be made (the request never left the gateway).
	RetryOnConnectFailure RetryCondition = "ConnectFailure"
	// RetryOnRefusedStream: HTTP/2 REFUSED_STREAM (the backend did not process the request).
	RetryOnRefusedStream RetryCondition = "RefusedStream"
	// RetryOnReset: the connection was reset before a response.
	RetryOnReset RetryCondition = "Reset"
	// RetryOnTimeout: the attempt timed out (timeouts.backendRequest).
	RetryOnTimeout RetryCondition = "Timeout"
	// RetryOnGatewayError: a 502, 503 or 504 response.
	RetryOnGatewayError RetryCondition = "GatewayError"
	// RetryOnServerError: any 5xx response.
	RetryOnServerError RetryCondition = "ServerError"
)

// GRPCCode is a gRPC status code by name.
type GRPCCode string

// Retry is the retry block.
type Retry struct {
	// Disabled turns off the retries this policy would inherit: the platform default applies.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// Attempts are retries after the first try, 0..10, default 2 (as HTTPRoute's retry.attempts).
	// +optional
	Attempts *int32 `json:"attempts,omitempty"`
	// RetryOn says which failures are retried.
	// +optional
	RetryOn *RetryOn `json:"retryOn,omitempty"`
	// Methods are retried on any retryOn trigger; other methods only when the request never
	// reached the backend (ConnectFailure, RefusedStream). Default: the idempotent methods GET,
	// HEAD, OPTIONS, PUT, DELETE, TRACE. An empty list is kept (not defaulted).
	// +optional
	// +listType=atomic
	Methods []gwapiv1.HTTPMethod `json:"methods"`
	// Backoff spaces attempts (exponential, full jitter).
	// +optional
	Backoff *RetryBackoff `json:"backoff,omitempty"`
	// Budget caps retries as a share of active requests; absent: no budget.
	// +optional
	Budget *RetryBudget `json:"budget,omitempty"`
}

// RetryOn lists retry triggers. Its lists are never omitted when set, so an empty list (no
// trigger of that kind) stays empty instead of returning to the default.
type RetryOn struct {
	// Conditions: ConnectFailure, RefusedStream, Reset, Timeout, GatewayError, ServerError.
	// Default [ConnectFailure, RefusedStream].
	// +optional
	// +listType=atomic
	Conditions []RetryCondition `json:"conditions"`
	// StatusCodes (400..599) are retried when answered; default [503].
	// +optional
	// +listType=atomic
	StatusCodes []int32 `json:"statusCodes"`
	// GRPCCodes (Cancelled, DeadlineExceeded, Internal, ResourceExhausted, Unavailable) are
	// retried on GRPCRoutes.
	// +optional
	// +listType=atomic
	GRPCCodes []GRPCCode `json:"grpcCodes,omitempty"`
}

// RetryBackoff is exponential backoff with full jitter between baseInterval and maxInterval.
type RetryBackoff struct {
	// BaseInterval is > 0, default 25ms.
	// +optional
	BaseInterval *gwapiv1.Duration `json:"baseInterval,omitempty"`
	// MaxInterval is ≥ baseInterval, default 10 × baseInterval.
	// +optional
	MaxInterval *gwapiv1.Duration `json:"maxInterval,omitempty"`
}

// RetryBudget caps retries to a share of active requests, with a floor.
type RetryBudget struct {
	// Percent of active requests that may be retries, 0..100, default 20.
	// +optional
	Percent *int32 `json:"percent,omitempty"`
	// Interval over which active requests are counted, 1s..1h, default 10s.
	// +optional
	Interval *gwapiv1.Duration `json:"interval,omitempty"`
	// MinRetryRate is always allowed whatever the percentage says; default 10 per 1s.
	// +optional
	MinRetryRate *RetryRate `json:"minRetryRate,omitempty"`
}

// RetryRate is count retries per interval.
type RetryRate struct {
	// Count is ≥ 0.
	// +optional
	Count *int32 `json:"count,omitempty"`
	// Interval is > 0.
	// +optional
	Interval *gwapiv1.Duration `json:"interval,omitempty"`
}

// ---- timeouts ----

// Timeouts is the timeouts block. request and backendRequest are never defaulted here: when
// unset, the route's own timeouts or the platform's (100s for HTTPRoutes, none for GRPCRoutes)
// apply, decided by the translator.
type Timeouts struct {
	// Disabled turns off the timeouts this policy would inherit: the platform defaults apply.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// Request bounds the whole transaction including retries; "0s" means none.
	// +optional
	Request *gwapiv1.Duration `json:"request,omitempty"`
	// BackendRequest bounds one attempt (the per-try timeout); ≤ request.
	// +optional
	BackendRequest *gwapiv1.Duration `json:"backendRequest,omitempty"`
	// Connect bounds the TCP and TLS handshake to an endpoint; > 0, default 10s.
	// +optional
	Connect *gwapiv1.Duration `json:"connect,omitempty"`
	// Idle closes a stream with no bytes either way for this long; default 5m, "0s" means none.
	// +optional
	Idle *gwapiv1.Duration `json:"idle,omitempty"`
	// MaxStreamDuration caps a stream's lifetime (gRPC streams, SSE, WebSocket); default none.
	// +optional
	MaxStreamDuration *gwapiv1.Duration `json:"maxStreamDuration,omitempty"`
	// ConnectionIdle closes pooled upstream connections idle this long; > 0, default 60s.
	// +optional
	ConnectionIdle *gwapiv1.Duration `json:"connectionIdle,omitempty"`
}

// ---- circuitBreaker ----

// CircuitBreaker caps concurrent work per (Backend, route rule, data-plane instance). Unset
// limits are unlimited: there is no hidden default. Over a limit the gateway answers 503 with
// x-apoxy-overloaded: true at once.
type CircuitBreaker struct {
	// Disabled turns off the limits this policy would inherit.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// MaxConnections to the Backend's endpoints, ≥ 1.
	// +optional
	MaxConnections *int32 `json:"maxConnections,omitempty"`
	// MaxPendingRequests waiting for a connection, ≥ 1.
	// +optional
	MaxPendingRequests *int32 `json:"maxPendingRequests,omitempty"`
	// MaxParallelRequests in flight, ≥ 1.
	// +optional
	MaxParallelRequests *int32 `json:"maxParallelRequests,omitempty"`
	// MaxParallelRetries in flight, ≥ 1.
	// +optional
	MaxParallelRetries *int32 `json:"maxParallelRetries,omitempty"`
	// MaxRequestsPerConnection before a connection is retired, ≥ 0 (0: unlimited).
	// +optional
	MaxRequestsPerConnection *int32 `json:"maxRequestsPerConnection,omitempty"`
}

// ---- outlierDetection ----

// OutlierDetection ejects an endpoint after consecutive failures, for baseEjectionTime × the
// number of times it was ejected (up to maxEjectionTime); the last healthy endpoint is never
// ejected.
type OutlierDetection struct {
	// Disabled turns off the detection this policy would inherit.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// Consecutive5xx responses (and connect failures or timeouts) eject; default 5, 0 turns
	// this detector off.
	// +optional
	Consecutive5xx *int32 `json:"consecutive5xx,omitempty"`
	// ConsecutiveGatewayErrors (502, 503, 504, connect failures, timeouts) eject; default 0 (off).
	// +optional
	ConsecutiveGatewayErrors *int32 `json:"consecutiveGatewayErrors,omitempty"`
	// Interval between sweeps, > 0, default 10s.
	// +optional
	Interval *gwapiv1.Duration `json:"interval,omitempty"`
	// BaseEjectionTime is > 0, default 30s.
	// +optional
	BaseEjectionTime *gwapiv1.Duration `json:"baseEjectionTime,omitempty"`
	// MaxEjectionTime caps the ejection time, ≥ baseEjectionTime; default 300s (or
	// baseEjectionTime when that is longer).
	// +optional
	MaxEjectionTime *gwapiv1.Duration `json:"maxEjectionTime,omitempty"`
	// MaxEjectionPercent of a pool's endpoints may be ejected at once, 1..100, default 50 (at
	// least one in a pool of two or more).
	// +optional
	MaxEjectionPercent *int32 `json:"maxEjectionPercent,omitempty"`
}

// ---- loadBalancer ----

// LoadBalancerType is a load-balancing algorithm.
type LoadBalancerType string

// Algorithms.
const (
	LoadBalancerRoundRobin   LoadBalancerType = "RoundRobin"
	LoadBalancerLeastRequest LoadBalancerType = "LeastRequest"
	LoadBalancerRandom       LoadBalancerType = "Random"
	LoadBalancerRingHash     LoadBalancerType = "RingHash"
	LoadBalancerMaglev       LoadBalancerType = "Maglev"
)

// LoadBalancer is the loadBalancer block. It picks an endpoint within the Backend the route's
// weighted backendRefs chose.
type LoadBalancer struct {
	// Disabled turns off the settings this policy would inherit: the platform default applies.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// Type is RoundRobin, LeastRequest (default), Random, RingHash or Maglev.
	// +optional
	Type LoadBalancerType `json:"type,omitempty"`
	// LeastRequest tunes LeastRequest (only with it).
	// +optional
	LeastRequest *LeastRequest `json:"leastRequest,omitempty"`
	// Hash is the consistent-hash input; required with RingHash and Maglev, forbidden otherwise.
	// A request without the input is balanced by LeastRequest and is not sticky.
	// +optional
	Hash *HashPolicy `json:"hash,omitempty"`
	// RingHash tunes RingHash (only with it).
	// +optional
	RingHash *RingHash `json:"ringHash,omitempty"`
	// Maglev tunes Maglev (only with it).
	// +optional
	Maglev *Maglev `json:"maglev,omitempty"`
	// SlowStart ramps traffic to new and returning endpoints (RoundRobin, LeastRequest only).
	// +optional
	SlowStart *SlowStart `json:"slowStart,omitempty"`
}

// LeastRequest picks the least busy of choiceCount random endpoints.
type LeastRequest struct {
	// ChoiceCount is 2..10, default 2.
	// +optional
	ChoiceCount *int32 `json:"choiceCount,omitempty"`
}

// HashPolicy is the input of a consistent hash; exactly one field is set.
type HashPolicy struct {
	// Cookie hashes a cookie the gateway sets when the request has none.
	// +optional
	Cookie *HashCookie `json:"cookie,omitempty"`
	// Header hashes a request header.
	// +optional
	Header *HeaderRef `json:"header,omitempty"`
	// SourceIP hashes the client address.
	// +optional
	SourceIP *SourceIPHash `json:"sourceIP,omitempty"`
	// QueryParam hashes a query parameter.
	// +optional
	QueryParam *QueryParamRef `json:"queryParam,omitempty"`
}

// CookieSameSite is a cookie's SameSite attribute.
type CookieSameSite string

// SameSite values.
const (
	SameSiteStrict CookieSameSite = "Strict"
	SameSiteLax    CookieSameSite = "Lax"
	SameSiteNone   CookieSameSite = "None"
)

// HashCookie is the affinity cookie.
type HashCookie struct {
	// Name of the cookie.
	Name string `json:"name"`
	// TTL is the cookie's lifetime (> 0); unset: a session cookie.
	// +optional
	TTL *gwapiv1.Duration `json:"ttl,omitempty"`
	// Path attribute ("/"-rooted).
	// +optional
	Path string `json:"path,omitempty"`
	// SameSite is Strict, Lax or None (None needs secure).
	// +optional
	SameSite CookieSameSite `json:"sameSite,omitempty"`
	// Secure sets the Secure attribute.
	// +optional
	Secure bool `json:"secure,omitempty"`
}

// SourceIPHash selects the client address as hash input; it has no settings.
type SourceIPHash struct{}

// RingHash sizes the hash ring.
type RingHash struct {
	// MinRingSize is 1..8388608, default 1024, ≤ maxRingSize.
	// +optional
	MinRingSize *int32 `json:"minRingSize,omitempty"`
	// MaxRingSize is 1..8388608, default 8388608.
	// +optional
	MaxRingSize *int32 `json:"maxRingSize,omitempty"`
}

// Maglev sizes the Maglev lookup table.
type Maglev struct {
	// TableSize is a prime ≤ 5000011, default 65537.
	// +optional
	TableSize *int32 `json:"tableSize,omitempty"`
}

// SlowStart ramps an endpoint's share linearly over window after it joins or returns.
type SlowStart struct {
	// Window is > 0.
	Window gwapiv1.Duration `json:"window"`
}

// ---- faultInjection ----

// FaultInjection delays and aborts a share of the requests it matches. Delay comes first, then
// abort, each sampled on its own. Aborted requests never reach the backend and are not retried.
type FaultInjection struct {
	// Disabled turns off the faults this policy would inherit.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// Match limits the faults to matching requests (e.g. a chaos header); absent: all.
	// +optional
	Match *RequestMatch `json:"match,omitempty"`
	// Delay holds a share of requests before forwarding them. At least one of delay and abort.
	// +optional
	Delay *FaultDelay `json:"delay,omitempty"`
	// Abort answers a share of requests without forwarding them.
	// +optional
	Abort *FaultAbort `json:"abort,omitempty"`
}

// FaultDelay is an injected delay; it counts toward timeouts.request.
type FaultDelay struct {
	// FixedDelay is > 0.
	FixedDelay gwapiv1.Duration `json:"fixedDelay"`
	// Percent of matching requests delayed, 0..100; default 100 when fraction is not set either.
	// +optional
	Percent *int32 `json:"percent,omitempty"`
	// Fraction of matching requests delayed (numerator ≤ denominator); instead of percent.
	// +optional
	Fraction *gwapiv1.Fraction `json:"fraction,omitempty"`
}

// FaultAbort is an injected error answer.
type FaultAbort struct {
	// HTTPStatus is 400..599 (HTTPRoute and Gateway targets). Exactly one of httpStatus and
	// grpcStatus.
	// +optional
	HTTPStatus *int32 `json:"httpStatus,omitempty"`
	// GRPCStatus is a gRPC status name (Unavailable) or number 1..16 (GRPCRoute targets).
	// +optional
	GRPCStatus *intstr.IntOrString `json:"grpcStatus,omitempty"`
	// Percent of matching requests aborted, 0..100; default 100 when fraction is not set either.
	// +optional
	Percent *int32 `json:"percent,omitempty"`
	// Fraction of matching requests aborted; instead of percent.
	// +optional
	Fraction *gwapiv1.Fraction `json:"fraction,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// TrafficPolicyList is a list of TrafficPolicies.
type TrafficPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrafficPolicy `json:"items"`
}
