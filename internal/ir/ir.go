package ir

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Snapshot is everything one proxy serves. It is immutable once published.
type Snapshot struct {
	// Version identifies the content: equal snapshots have equal versions.
	Version string `json:"version"`
	// Listeners are the sockets to serve, one per address and port.
	Listeners []*Listener `json:"listeners,omitempty"`
	// Backends are the upstream clusters routes send traffic to, by Name.
	Backends []*Backend `json:"backends,omitempty"`
	// Certificates are TLS key pairs listeners present, by Name.
	Certificates []*Certificate `json:"certificates,omitempty"`
	// DrainTimeout bounds how long listeners drain open requests when they stop (from the
	// Proxy's spec.shutdown; 0 means the data plane's default).
	DrainTimeout Duration `json:"drainTimeout,omitempty"`
	// RateLimitStores are the global rate-limit stores Proxies name (spec.rateLimit.redis),
	// by name ("project/namespace/proxy"); routes name theirs in RateLimit.Store.
	RateLimitStores map[string]*RedisStore `json:"rateLimitStores,omitempty"`
	// Telemetry are the telemetry settings routes name (Route.Telemetry), one per Gateway,
	// by key "project/namespace/gateway".
	Telemetry map[string]*Telemetry `json:"telemetry,omitempty"`
}

// RedisStore is how the data plane reaches a Redis that counts Global rate-limit rules.
type RedisStore struct {
	Address  string       `json:"address"`
	Password SecretString `json:"password,omitempty"`
	TLS      bool         `json:"tls,omitempty"`
	Database int          `json:"database,omitempty"`
}

// Origin names the API object (and section) an IR object came from.
type Origin struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Section is a listener name, "rule/N" or "rule/N/match/M".
	Section string `json:"section,omitempty"`
}

func (o Origin) String() string {
	s := o.Kind + "/" + o.Name
	if o.Namespace != "" {
		s = o.Kind + "/" + o.Namespace + "/" + o.Name
	}
	if o.Section != "" {
		s += "/" + o.Section
	}
	return s
}

// Protocol is a listener's application protocol.
type Protocol string

// Listener protocols.
const (
	ProtocolHTTP  Protocol = "HTTP"
	ProtocolHTTPS Protocol = "HTTPS"
	// ProtocolTCP listeners splice each connection to a backend of their L4 route.
	ProtocolTCP Protocol = "TCP"
	// ProtocolUDP listeners relay datagrams per client address (a session) to a backend of
	// their L4 route.
	ProtocolUDP Protocol = "UDP"
	// ProtocolTLS listeners route TLS connections by SNI, passing them through (the backend's
	// certificate is the one the client sees) or terminating them (SNIRoute.Terminate).
	ProtocolTLS Protocol = "TLS"
)

// SNIRoute sends TLS connections whose server name matches Hostname ("a.example.com",
// "*.example.com", or "" for any) to Route's backends.
type SNIRoute struct {
	Hostname string   `json:"hostname"`
	Route    *L4Route `json:"route"`
	// Terminate: the gateway completes the handshake with the listener's certificate for this
	// name (Listener.TLS) and sends the decrypted stream to the backends.
	Terminate bool `json:"terminate,omitempty"`
}

// SocketName names the socket of a listener: "address:port", or "udp/address:port" for UDP
// (a UDP socket and a TCP one may share the address and port).
func SocketName(proto Protocol, addr string, port int32) string {
	name := net.JoinHostPort(addr, strconv.Itoa(int(port)))
	if proto == ProtocolUDP {
		return "udp/" + name
	}
	return name
}

// L4Route is what a TCP listener does with a connection: pick a backend by weight and splice
// bytes both ways until either side closes or the connection idles past IdleTimeout.
type L4Route struct {
	Name   string `json:"name"`
	Origin Origin `json:"origin"`
	// Telemetry names the route's entry in Snapshot.Telemetry ("" the data plane's defaults).
	Telemetry string            `json:"telemetry,omitempty"`
	Backends  []WeightedBackend `json:"backends,omitempty"`
	// IdleTimeout closes a connection (TCP) or session (UDP) with no bytes either way for that
	// long (0: 1 hour for TCP, 1 minute for UDP).
	IdleTimeout Duration `json:"idleTimeout,omitempty"`
}

// Listener is one socket: every Gateway listener on the same address and port shares it and is
// told apart by hostname (and, for HTTPS, by SNI).
type Listener struct {
	// Name is "address:port".
	Name     string   `json:"name"`
	Address  string   `json:"address"`
	Port     int32    `json:"port"`
	Protocol Protocol `json:"protocol"`
	// TLS lists the certificates to choose from by SNI (HTTPS only).
	TLS *ListenerTLS `json:"tls,omitempty"`
	// VirtualHosts are matched against the request's host, most specific first.
	VirtualHosts []*VirtualHost `json:"virtualHosts,omitempty"`
	// L4 is the route of a TCP or UDP listener (nil: connections are closed, datagrams dropped).
	L4 *L4Route `json:"l4,omitempty"`
	// SNIRoutes route a TLS listener's connections by server name, most specific first.
	SNIRoutes []*SNIRoute `json:"sniRoutes,omitempty"`
	// NoHTTP3: an HTTPS listener does not serve HTTP/3 (another project holds the UDP port).
	NoHTTP3 bool `json:"noHTTP3,omitempty"`
	// HTTP are the limits an HTTP or HTTPS listener holds its clients to (the Proxy's
	// spec.http); nil: the data plane's defaults.
	HTTP *HTTPLimits `json:"http,omitempty"`
}

// HTTPLimits are client-side limits of an HTTP listener; a zero field keeps the data plane's
// default. They change without rebinding: connections opened afterwards take them.
type HTTPLimits struct {
	// IdleTimeout closes a connection with no request in flight for this long.
	IdleTimeout Duration `json:"idleTimeout,omitempty"`
	// RequestHeaderTimeout bounds receiving a request's head (and the TLS handshake).
	RequestHeaderTimeout Duration `json:"requestHeaderTimeout,omitempty"`
	// RequestBodyTimeout bounds a wait for the next byte of a request body (408 past it).
	RequestBodyTimeout Duration `json:"requestBodyTimeout,omitempty"`
	// MaxRequestHeaderBytes bounds a request's head (HTTP/1.1) or header list (HTTP/2).
	MaxRequestHeaderBytes int32 `json:"maxRequestHeaderBytes,omitempty"`
	// MaxRequestHeaders bounds the number of header fields of an HTTP/1.1 request.
	MaxRequestHeaders int32 `json:"maxRequestHeaders,omitempty"`
	// HTTP/2: streams per connection, receive windows and the socket write timeout.
	MaxConcurrentStreams        int32    `json:"maxConcurrentStreams,omitempty"`
	InitialStreamWindowSize     int32    `json:"initialStreamWindowSize,omitempty"`
	InitialConnectionWindowSize int32    `json:"initialConnectionWindowSize,omitempty"`
	WriteTimeout                Duration `json:"writeTimeout,omitempty"`
}

// ListenerTLS chooses a certificate per SNI.
type ListenerTLS struct {
	// Certificates are tried by SNI: exact hostname, then the longest wildcard, then the
	// entry with hostname "" (the listener's default).
	Certificates []SNICertificate `json:"certificates"`
}

// SNICertificate binds a certificate (by name) to a server name pattern.
type SNICertificate struct {
	Hostname    string `json:"hostname"`
	Certificate string `json:"certificate"`
	// ClientValidation, when set, asks TLS clients of this server name for a certificate.
	ClientValidation *ClientValidation `json:"clientValidation,omitempty"`
}

// ClientValidation is a listener's client certificate check (Gateway spec.tls.frontend).
type ClientValidation struct {
	// CAPEM are the CA certificates client certificates must chain to.
	CAPEM []byte `json:"caPEM"`
	// AllowInsecureFallback accepts connections whose client sends no certificate or one
	// that does not verify (Gateway API AllowInsecureFallback); otherwise both are refused
	// during the handshake.
	AllowInsecureFallback bool `json:"allowInsecureFallback,omitempty"`
}

// Certificate is a PEM key pair. Key material is redacted when printed.
type Certificate struct {
	Name    string `json:"name"`
	CertPEM []byte `json:"certPEM"`
	KeyPEM  Secret `json:"keyPEM"`
}

// Secret is sensitive bytes that print as "<redacted>".
type Secret []byte

// MarshalJSON redacts.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"<redacted>"`), nil }

// String redacts.
func (Secret) String() string { return "<redacted>" }

// SecretString is a sensitive string that prints as "<redacted>".
type SecretString string

// MarshalJSON redacts.
func (SecretString) MarshalJSON() ([]byte, error) { return []byte(`"<redacted>"`), nil }

// String redacts.
func (SecretString) String() string { return "<redacted>" }

// VirtualHost is the routes served for one hostname on a listener.
//
// A request first picks the most specific ListenerHostname that matches its host (that is the
// Gateway listener serving it); among that listener's virtual hosts it tries those whose
// Hostname matches, most specific first, and the first route that matches wins.
type VirtualHost struct {
	// ListenerHostname is the Gateway listener's hostname ("" = any host).
	ListenerHostname string `json:"listenerHostname,omitempty"`
	// Hostname is exact ("api.example.com"), a wildcard ("*.example.com") or "*" (any).
	Hostname string `json:"hostname"`
	// Origin is the Gateway listener this virtual host comes from.
	Origin Origin `json:"origin"`
	// Routes are in Gateway API precedence order: the first that matches wins.
	Routes []*Route `json:"routes,omitempty"`
}

// Route is one match of one rule of one route, with what to do on a match.
type Route struct {
	Name   string `json:"name"`
	Origin Origin `json:"origin"`
	// Telemetry names the route's entry in Snapshot.Telemetry ("" the data plane's defaults).
	Telemetry string `json:"telemetry,omitempty"`
	Match     Match  `json:"match"`
	// Filters run in order before the action.
	Filters []Filter `json:"filters,omitempty"`
	// Exactly one action: Backends (weighted), Redirect or DirectResponse. A route whose
	// backends are all invalid has Backends with total weight > 0 but Invalid set, answering 500.
	Backends       []WeightedBackend `json:"backends,omitempty"`
	Redirect       *Redirect         `json:"redirect,omitempty"`
	DirectResponse *DirectResponse   `json:"directResponse,omitempty"`
	// Timeouts: Request bounds the whole exchange (default 100 s), BackendRequest one attempt.
	Timeouts Timeouts `json:"timeouts"`
	// Retry is the rule's retry policy; nil means the default (one retry on connection
	// failure, idempotent methods only).
	Retry *Retry `json:"retry,omitempty"`
	// GRPC marks routes of GRPCRoutes: errors the proxy itself answers are gRPC statuses
	// (HTTP 200 with grpc-status), not HTTP error pages.
	GRPC bool `json:"grpc,omitempty"`
	// RateLimit and Fault come from the route's effective TrafficPolicy (nil: none).
	RateLimit *RateLimit      `json:"rateLimit,omitempty"`
	Fault     *FaultInjection `json:"fault,omitempty"`
	// CORS is a policy's cors block (an AuthPolicy's; nil when none applies or the route rule
	// has its own CORS filter, which wins). Preflights are answered before authentication.
	CORS *CORS `json:"cors,omitempty"`
	// Auth is the route's effective AuthPolicy (nil: none).
	Auth *Auth `json:"auth,omitempty"`
	// Intercept routes match before every other route of their virtual host (an OIDC
	// callback or logout path, which no route of the user's may shadow).
	Intercept bool `json:"intercept,omitempty"`
	// PolicySources say which object each block of the effective policies came from
	// (set only when a policy applies). For `apoxy explain` and status; the data plane
	// ignores them.
	PolicySources []PolicySource `json:"policySources,omitempty"`
}

// PathMatchType is how a path is matched.
type PathMatchType string

// Path match types, as in Gateway API.
const (
	PathExact             PathMatchType = "Exact"
	PathPrefix            PathMatchType = "PathPrefix"
	PathRegularExpression PathMatchType = "RegularExpression"
)

// StringMatchType is how a header or query value is matched.
type StringMatchType string

// String match types.
const (
	MatchExact             StringMatchType = "Exact"
	MatchRegularExpression StringMatchType = "RegularExpression"
)

// Match is a conjunction: path AND every header AND every query parameter AND method.
type Match struct {
	PathType    PathMatchType `json:"pathType"`
	Path        string        `json:"path"`
	Headers     []StringMatch `json:"headers,omitempty"`
	QueryParams []StringMatch `json:"queryParams,omitempty"`
	Method      string        `json:"method,omitempty"`
}

// StringMatch matches a header (case-insensitive name) or query parameter (exact name).
type StringMatch struct {
	Name  string          `json:"name"`
	Type  StringMatchType `json:"type"`
	Value string          `json:"value"`
}

// WeightedBackend is one backendRef of a rule.
type WeightedBackend struct {
	// Backend names an entry of Snapshot.Backends; empty when Invalid.
	Backend string `json:"backend,omitempty"`
	Port    int32  `json:"port,omitempty"`
	Weight  int32  `json:"weight"`
	// Invalid marks a reference that did not resolve: its share of traffic gets 500.
	Invalid bool `json:"invalid,omitempty"`
	// Filters apply only to requests sent to this backend.
	Filters []Filter `json:"filters,omitempty"`
}

// Answers reports whether the backendRef's own filters answer every request sent to it (it
// names an EdgeFunction in backend mode, or a reference to one that failed), so it needs no
// Backend.
func (b *WeightedBackend) Answers() bool {
	if len(b.Filters) == 0 || b.Backend != "" {
		return false
	}
	switch f := b.Filters[len(b.Filters)-1]; f.Type {
	case FilterEdgeFunction:
		return f.Function != nil && f.Function.Mode == "backend"
	case FilterDirectResponse:
		return true
	}
	return false
}

// Timeouts bound a request. Zero means no timeout, for each.
type Timeouts struct {
	// Request bounds the wait for the response head from the request's arrival (retries
	// included); BackendRequest one attempt's.
	Request        Duration `json:"request"`
	BackendRequest Duration `json:"backendRequest,omitempty"`
	// StreamIdle ends a response stream (and an upgraded connection) that passes no byte
	// either way for this long.
	StreamIdle Duration `json:"streamIdle,omitempty"`
	// MaxStreamDuration ends a stream this long after the request arrived, whatever it does.
	MaxStreamDuration Duration `json:"maxStreamDuration,omitempty"`
}

// Duration is a time.Duration that prints as "100s" in JSON and YAML.
type Duration time.Duration

// MarshalJSON renders the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON parses a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// Retry retries failed attempts.
type Retry struct {
	// Codes are response codes that trigger a retry (besides connection errors).
	Codes []int `json:"codes,omitempty"`
	// Attempts is the number of retries after the first try.
	Attempts int `json:"attempts"`
	// Backoff is the base interval of exponential backoff with full jitter; MaxBackoff caps
	// it (default 10 × Backoff).
	Backoff    Duration `json:"backoff,omitempty"`
	MaxBackoff Duration `json:"maxBackoff,omitempty"`
	// Conditions are failures that trigger a retry: ConnectFailure, RefusedStream, Reset,
	// Timeout, GatewayError (502/503/504), ServerError (any 5xx). Empty: connection failures
	// only (ConnectFailure, RefusedStream, Reset), as before TrafficPolicy.
	Conditions []string `json:"conditions,omitempty"`
	// Methods may be retried on any condition; other methods only when the request never
	// reached the backend (ConnectFailure, RefusedStream). Empty: the idempotent methods.
	Methods []string `json:"methods,omitempty"`
	// Budget caps retries to a share of the route's requests (nil: no budget).
	Budget *RetryBudget `json:"budget,omitempty"`
	// GRPCCodes are grpc-status codes that trigger a retry when a gRPC response carries
	// one in its head (a trailers-only answer, before any message).
	GRPCCodes []int `json:"grpcCodes,omitempty"`
}

// RetryBudget lets retries be at most Percent of the requests of the last Interval, but
// always MinRetries per MinInterval.
type RetryBudget struct {
	Percent     int      `json:"percent"`
	Interval    Duration `json:"interval"`
	MinRetries  int      `json:"minRetries"`
	MinInterval Duration `json:"minInterval"`
}

// Redirect answers with a redirect.
type Redirect struct {
	Scheme   string `json:"scheme,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	// Port 0 means: derived from the scheme or the listener as Gateway API says.
	Port       int32        `json:"port,omitempty"`
	Path       *PathRewrite `json:"path,omitempty"`
	StatusCode int          `json:"statusCode"`
}

// PathRewrite replaces the whole path or the prefix the route matched.
type PathRewrite struct {
	// Exactly one is set.
	FullPath      *string `json:"fullPath,omitempty"`
	PrefixReplace *string `json:"prefixReplace,omitempty"`
}

// DirectResponse answers from the gateway.
type DirectResponse struct {
	StatusCode  int          `json:"statusCode"`
	ContentType string       `json:"contentType,omitempty"`
	Headers     []HeaderPair `json:"headers,omitempty"`
	Body        string       `json:"body,omitempty"`
}

// HeaderPair is a header name and value.
type HeaderPair struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Validate checks invariants the data plane relies on. The translator must only produce valid
// snapshots; the proxy refuses invalid ones.
func (s *Snapshot) Validate() error {
	backends := map[string]bool{}
	for _, b := range s.Backends {
		if b.Name == "" || backends[b.Name] {
			return fmt.Errorf("ir: backend name %q empty or duplicated", b.Name)
		}
		backends[b.Name] = true
	}
	certs := map[string]bool{}
	for _, c := range s.Certificates {
		certs[c.Name] = true
	}
	seen := map[string]bool{}
	for _, l := range s.Listeners {
		if seen[l.Name] {
			return fmt.Errorf("ir: listener %q duplicated", l.Name)
		}
		seen[l.Name] = true
		if l.Port < 1 || l.Port > 65535 {
			return fmt.Errorf("ir: listener %q: port %d out of range", l.Name, l.Port)
		}
		if l.Protocol == ProtocolHTTPS && (l.TLS == nil || len(l.TLS.Certificates) == 0) {
			return fmt.Errorf("ir: listener %q: HTTPS without certificates", l.Name)
		}
		if l.Protocol == ProtocolTLS && slices.ContainsFunc(l.SNIRoutes, func(r *SNIRoute) bool { return r.Terminate }) && (l.TLS == nil || len(l.TLS.Certificates) == 0) {
			return fmt.Errorf("ir: listener %q: TLS termination without certificates", l.Name)
		}
		if l.TLS != nil {
			for _, c := range l.TLS.Certificates {
				if !certs[c.Certificate] {
					return fmt.Errorf("ir: listener %q: unknown certificate %q", l.Name, c.Certificate)
				}
			}
		}
		if l.L4 != nil {
			if l.Protocol != ProtocolTCP && l.Protocol != ProtocolUDP {
				return fmt.Errorf("ir: listener %q: an L4 route on a %s listener", l.Name, l.Protocol)
			}
			for _, b := range l.L4.Backends {
				if !b.Invalid && !backends[b.Backend] {
					return fmt.Errorf("ir: listener %q: unknown backend %q", l.Name, b.Backend)
				}
			}
			if t := l.L4.Telemetry; t != "" && s.Telemetry[t] == nil {
				return fmt.Errorf("ir: listener %q: unknown telemetry %q", l.Name, t)
			}
		}
		for _, sr := range l.SNIRoutes {
			if l.Protocol != ProtocolTLS {
				return fmt.Errorf("ir: listener %q: SNI routes on a %s listener", l.Name, l.Protocol)
			}
			for _, b := range sr.Route.Backends {
				if !b.Invalid && !backends[b.Backend] {
					return fmt.Errorf("ir: listener %q: unknown backend %q", l.Name, b.Backend)
				}
			}
			if t := sr.Route.Telemetry; t != "" && s.Telemetry[t] == nil {
				return fmt.Errorf("ir: listener %q: unknown telemetry %q", l.Name, t)
			}
		}
		for _, vh := range l.VirtualHosts {
			for _, r := range vh.Routes {
				if err := r.validate(backends); err != nil {
					return fmt.Errorf("ir: listener %q host %q route %q: %w", l.Name, vh.Hostname, r.Name, err)
				}
				if rl := r.RateLimit; rl != nil && rl.Store != "" && s.RateLimitStores[rl.Store] == nil {
					return fmt.Errorf("ir: listener %q host %q route %q: unknown rate-limit store %q", l.Name, vh.Hostname, r.Name, rl.Store)
				}
				if r.Telemetry != "" && s.Telemetry[r.Telemetry] == nil {
					return fmt.Errorf("ir: listener %q host %q route %q: unknown telemetry %q", l.Name, vh.Hostname, r.Name, r.Telemetry)
				}
			}
		}
	}
	return nil
}

func (r *Route) validate(backends map[string]bool) error {
	actions := 0
	if len(r.Backends) > 0 {
		actions++
	}
	if r.Redirect != nil {
		actions++
	}
	if r.DirectResponse != nil {
		actions++
	}
	if actions > 1 {
		return fmt.Errorf("more than one action")
	}
	switch r.Match.PathType {
	case PathExact, PathPrefix:
		if !strings.HasPrefix(r.Match.Path, "/") {
			return fmt.Errorf("path %q must start with /", r.Match.Path)
		}
	case PathRegularExpression:
		if _, err := regexp.Compile(r.Match.Path); err != nil {
			return fmt.Errorf("path regex: %w", err)
		}
	default:
		return fmt.Errorf("path type %q", r.Match.PathType)
	}
	for _, m := range append(append([]StringMatch{}, r.Match.Headers...), r.Match.QueryParams...) {
		if m.Type == MatchRegularExpression {
			if _, err := regexp.Compile(m.Value); err != nil {
				return fmt.Errorf("%s regex: %w", m.Name, err)
			}
		}
	}
	for _, b := range r.Backends {
		if !b.Invalid && !backends[b.Backend] && !b.Answers() {
			return fmt.Errorf("unknown backend %q", b.Backend)
		}
		if b.Weight < 0 {
			return fmt.Errorf("negative weight")
		}
	}
	return nil
}

// SetVersion sets Version to a hash of the content.
func (s *Snapshot) SetVersion() {
	s.Version = ""
	data, err := json.Marshal(s)
	if err != nil {
		panic(err) // only plain data types
	}
	// Secrets print redacted, but a changed key, password or htpasswd file is a changed
	// snapshot.
	h := sha256.New()
	h.Write(data)
	for _, c := range s.Certificates {
		h.Write(c.KeyPEM)
	}
	eachSecret(reflect.ValueOf(s), func(v SecretString) {
		h.Write([]byte(v))
		h.Write([]byte{0})
	})
	s.Version = hex.EncodeToString(h.Sum(nil)[:8])
}

var secretStringType = reflect.TypeFor[SecretString]()

// eachSecret calls fn with every SecretString reachable from v, in a deterministic order (map
// entries by sorted key).
func eachSecret(v reflect.Value, fn func(SecretString)) {
	if !holdsSecrets(v.Type(), map[reflect.Type]bool{}) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			eachSecret(v.Elem(), fn)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				eachSecret(v.Field(i), fn)
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := range v.Len() {
			eachSecret(v.Index(i), fn)
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			return strings.Compare(fmt.Sprint(a.Interface()), fmt.Sprint(b.Interface()))
		})
		for _, k := range keys {
			eachSecret(v.MapIndex(k), fn)
		}
	case reflect.String:
		if v.Type() == secretStringType {
			fn(SecretString(v.String()))
		}
	}
}

// secretTypes caches whether a type can hold a SecretString.
var secretTypes sync.Map // reflect.Type -> bool

// holdsSecrets reports whether a value of type t can hold a SecretString (seen breaks cycles).
func holdsSecrets(t reflect.Type, seen map[reflect.Type]bool) bool {
	if v, ok := secretTypes.Load(t); ok {
		return v.(bool)
	}
	if seen[t] {
		return false
	}
	seen[t] = true
	defer delete(seen, t)
	var out bool
	switch t.Kind() {
	case reflect.String:
		out = t == secretStringType
	case reflect.Pointer, reflect.Slice, reflect.Array:
		out = holdsSecrets(t.Elem(), seen)
	case reflect.Map:
		out = holdsSecrets(t.Elem(), seen)
	case reflect.Interface:
		out = true
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && holdsSecrets(f.Type, seen) {
				out = true
				break
			}
		}
	}
	if len(seen) == 1 {
		// Only a root's answer is complete: an inner type cut short by a cycle may not be.
		secretTypes.Store(t, out)
	}
	return out
}
