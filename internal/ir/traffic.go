package ir

// Traffic policy IR: what a route's effective TrafficPolicy (merged by the translator from
// the policies attached to its rule, route, listener and Gateway) asks of the data plane.
// Blocks that affect a request before it is forwarded (rate limits, fault injection) live on
// Route; blocks that shape the upstream cluster (load balancing, circuit breaking, outlier
// detection, connection timeouts) live on Backend, and the translator gives a Backend reached
// under different effective policies a cluster of its own per policy.

// RequestMatch selects requests; every set field must hold (AND), values within a list OR.
type RequestMatch struct {
	Methods     []string     `json:"methods,omitempty"`
	Path        *PathMatch   `json:"path,omitempty"`
	Headers     []ValueMatch `json:"headers,omitempty"`
	QueryParams []ValueMatch `json:"queryParams,omitempty"`
	ClientCIDRs []string     `json:"clientCIDRs,omitempty"`
	JWTClaims   []ClaimMatch `json:"jwtClaims,omitempty"`
}

// PathMatch matches the normalised request path.
type PathMatch struct {
	Type  PathMatchType `json:"type"` // Exact, PathPrefix or RegularExpression
	Value string        `json:"value"`
}

// ValueMatchType is how a header or query parameter is matched.
type ValueMatchType string

// Value match types.
const (
	ValueExact             ValueMatchType = "Exact"
	ValueRegularExpression ValueMatchType = "RegularExpression"
	ValuePresent           ValueMatchType = "Present"
)

// ValueMatch matches a header (case-insensitive name) or query parameter (exact name).
type ValueMatch struct {
	Name   string         `json:"name"`
	Type   ValueMatchType `json:"type"`
	Value  string         `json:"value,omitempty"`
	Invert bool           `json:"invert,omitempty"`
}

// ClaimMatch matches a claim of the request's verified JWT (dot path for nested claims).
type ClaimMatch struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

// RateLimit is a route's effective rate limiting.
type RateLimit struct {
	// FailClosed rejects requests when a Global rule's store is unreachable (default: they pass).
	FailClosed bool `json:"failClosed,omitempty"`
	// Store names the snapshot's RateLimitStores entry that Global rules count in (the
	// route's Gateway's Proxy); "" is the data plane's own store (apoxy --redis).
	Store string `json:"store,omitempty"`
	// Headers is XRateLimit, IETFDraft or None.
	Headers string `json:"headers"`
	// StatusCode answers a limited request (default 429; gRPC requests get RESOURCE_EXHAUSTED).
	StatusCode int `json:"statusCode"`
	// Exempt requests are never counted or limited.
	Exempt []RequestMatch  `json:"exempt,omitempty"`
	Rules  []RateLimitRule `json:"rules"`
}

// KeyPartKind names what a rate-limit key part is read from.
type KeyPartKind string

// Key part kinds.
const (
	KeyClientIP   KeyPartKind = "ClientIP"
	KeyHeader     KeyPartKind = "Header"
	KeyQueryParam KeyPartKind = "QueryParam"
	KeyJWTClaim   KeyPartKind = "JWTClaim"
	KeyMethod     KeyPartKind = "Method"
	KeyPath       KeyPartKind = "Path"
)

// KeyPart is one part of a rate-limit bucket key.
type KeyPart struct {
	Kind KeyPartKind `json:"kind"`
	// Name is the header, query parameter or claim.
	Name string `json:"name,omitempty"`
	// IPv4PrefixLength and IPv6PrefixLength mask a client address (ClientIP).
	IPv4PrefixLength int `json:"ipv4PrefixLength,omitempty"`
	IPv6PrefixLength int `json:"ipv6PrefixLength,omitempty"`
}

// RateLimitRule is one counted limit.
type RateLimitRule struct {
	// Name is the rule's name in its policy.
	Name string `json:"name"`
	// Policy is the defining policy, "namespace/name".
	Policy string `json:"policy"`
	// Counter identifies the rule's buckets: the same Counter on two routes shares counts
	// ("namespace/policy/rule" for Shared counters, plus "/route namespace/name" for PerRoute).
	Counter string        `json:"counter"`
	Global  bool          `json:"global,omitempty"`
	Match   *RequestMatch `json:"match,omitempty"`
	CountBy []KeyPart     `json:"countBy,omitempty"`
	// SkipMissing: a request lacking a key part is not counted by this rule (default: such
	// requests share one bucket).
	SkipMissing bool `json:"skipMissing,omitempty"`
	// Requests per Window; 0 rejects every matching request.
	Requests uint32   `json:"requests"`
	Window   Duration `json:"window"`
	// Shadow counts and logs but never rejects.
	Shadow bool `json:"shadow,omitempty"`
	// MaxTrackedKeys bounds a Local rule's distinct keys (least recently used go first).
	MaxTrackedKeys int `json:"maxTrackedKeys,omitempty"`
	// AfterAuth: the rule reads JWT claims, so it runs after authentication.
	AfterAuth bool `json:"afterAuth,omitempty"`
}

// FaultInjection delays and aborts a share of (matching) requests.
type FaultInjection struct {
	Match        *RequestMatch `json:"match,omitempty"`
	Delay        Duration      `json:"delay,omitempty"`
	DelayPercent float64       `json:"delayPercent,omitempty"`
	// AbortStatus is an HTTP status; AbortGRPC a gRPC status code (1..16). At most one is set.
	AbortStatus  int     `json:"abortStatus,omitempty"`
	AbortGRPC    int     `json:"abortGRPC,omitempty"`
	AbortPercent float64 `json:"abortPercent,omitempty"`
}

// LoadBalancer chooses an endpoint within a Backend.
type LoadBalancer struct {
	// Type: RoundRobin, LeastRequest, Random, RingHash or Maglev.
	Type        string      `json:"type"`
	ChoiceCount int         `json:"choiceCount,omitempty"`
	Hash        *HashSource `json:"hash,omitempty"`
	RingMin     int         `json:"ringMin,omitempty"`
	RingMax     int         `json:"ringMax,omitempty"`
	MaglevTable int         `json:"maglevTable,omitempty"`
	SlowStart   Duration    `json:"slowStart,omitempty"`
}

// HashSource is what a consistent hash reads; exactly one field is set.
type HashSource struct {
	Header     string      `json:"header,omitempty"`
	QueryParam string      `json:"queryParam,omitempty"`
	SourceIP   bool        `json:"sourceIP,omitempty"`
	Cookie     *HashCookie `json:"cookie,omitempty"`
}

// HashCookie is a cookie the gateway sets when the request has none.
type HashCookie struct {
	Name     string   `json:"name"`
	TTL      Duration `json:"ttl,omitempty"`
	Path     string   `json:"path,omitempty"`
	SameSite string   `json:"sameSite,omitempty"`
	Secure   bool     `json:"secure,omitempty"`
}

// CircuitBreaker caps a cluster's work per data-plane instance; zero means no limit.
type CircuitBreaker struct {
	MaxConnections           int `json:"maxConnections,omitempty"`
	MaxPendingRequests       int `json:"maxPendingRequests,omitempty"`
	MaxParallelRequests      int `json:"maxParallelRequests,omitempty"`
	MaxParallelRetries       int `json:"maxParallelRetries,omitempty"`
	MaxRequestsPerConnection int `json:"maxRequestsPerConnection,omitempty"`
}

// OutlierDetection ejects endpoints that keep failing, per data-plane instance.
type OutlierDetection struct {
	Consecutive5xx           int      `json:"consecutive5xx,omitempty"`
	ConsecutiveGatewayErrors int      `json:"consecutiveGatewayErrors,omitempty"`
	Interval                 Duration `json:"interval"`
	BaseEjectionTime         Duration `json:"baseEjectionTime"`
	MaxEjectionTime          Duration `json:"maxEjectionTime"`
	MaxEjectionPercent       int      `json:"maxEjectionPercent"`
}
