package accesslog

import (
	"net/http"
	"net/netip"
	"time"
)

// Record is what one exchange left for its log line. The formatter reads it; it keeps nothing.
//
// Empty strings, invalid addresses and unknown (negative) durations are missing values: a
// text line prints "-" for them, a JSON line null (or what the field's Empty says).
type Record struct {
	Start time.Time
	// HTTP only (zero for L4): the request's pseudo-headers and headers as they are when the
	// exchange ends (after filters edited them), the response head and trailers.
	Method, Scheme, Authority, Path string // Path is path?query as received (":path")
	// OriginalPath is the path before a URLRewrite changed it ("" when not rewritten): it is
	// what %REQ(X-ENVOY-ORIGINAL-PATH)% prints (a client's own header of that name is never read).
	OriginalPath                   string
	ReqHeader, RespHeader, Trailer http.Header
	Protocol                       string // "HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3"; "" for TCP/UDP (prints "-"); printed as given
	// Status is the response status; 0: none (L4, or the client left before a response):
	// prints "0" like Envoy for RESPONSE_CODE, and counts as empty for EmptyOmit.
	Status      int
	CodeDetails string // e.g. "via_upstream", "route_not_found", "rate_limited" ("" prints "-")
	Flags       Flags
	Duration    time.Duration // whole exchange
	// RequestDuration is from the start to the request's last byte read; <0 unknown -> "-".
	RequestDuration time.Duration
	// ResponseDuration is from the start to the response's first byte; <0 unknown -> "-".
	ResponseDuration time.Duration
	// ResponseTxDuration is from the first to the last response byte; <0 unknown -> "-".
	ResponseTxDuration             time.Duration
	BytesReceived, BytesSent       int64  // body bytes (L4: all bytes)
	UpstreamHost                   string // "ip:port" of the endpoint the last attempt used
	UpstreamCluster                string
	UpstreamTransportFailureReason string
	UpstreamAttempts               int // %UPSTREAM_REQUEST_ATTEMPT_COUNT%
	// DownstreamRemote and DownstreamLocal are the client's and the listener's address of the
	// connection (IPv4-mapped IPv6 addresses print as IPv4).
	DownstreamRemote, DownstreamLocal netip.AddrPort
	ServerName                        string // TLS SNI
	RouteName                         string
	TraceID                           string
	ConnectionID                      uint64
	// Metadata are the gateway's dynamic metadata: (namespace, key, value) triples such as
	// ("apoxy.ratelimit", "decision", "over_limit"), ("apoxy.auth", "identity", "alice").
	// When a (namespace, key) pair repeats, the last one counts.
	Metadata []Metadata

	// Apoxy additions, for the gateway's own line (DefaultJSON) and its extension operators.

	// UpstreamDuration is how long the last upstream attempt took to answer: from its start to
	// the response head (HTTP), or to the connection (TCP, TLS, UDP). Under a microsecond
	// (zero included): no upstream answered, a missing value. -> %UPSTREAM_DURATION_MS%.
	UpstreamDuration time.Duration
	// Error is the gateway's own account of what went wrong (a dial error, a TLS handshake
	// failure, "no route", a broken request body...); "" when nothing did. -> %ERROR%.
	Error string
}

// Metadata is one dynamic-metadata entry: a filter's namespace, a key in it, and its value.
type Metadata struct {
	Namespace, Key, Value string
}

// The dynamic-metadata entries the gateway's DefaultJSON line reads.
const (
	// MetaRateLimit is the rate limiter's namespace; its MetaDecision key holds the decision
	// ("ok", "over_limit", "shadow_over_limit", "store_error").
	MetaRateLimit = "apoxy.ratelimit"
	// MetaAuth is the auth phases' namespace; its MetaDecision key holds the decision (the
	// method and provider that authenticated the client, or what refused it).
	MetaAuth = "apoxy.auth"
	// MetaDecision is the key of a namespace's decision.
	MetaDecision = "decision"
	// MetaFunction is the edge functions' namespace: MetaRevision names the revision that
	// filtered or answered the exchange (function@revision), MetaError why it failed.
	MetaFunction = "apoxy.function"
	MetaRevision = "revision"
	MetaError    = "error"
)
