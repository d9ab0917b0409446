package ir

// FilterType names a route filter.
type FilterType string

// Route filters, in Gateway API terms plus Apoxy's compression.
const (
	FilterRequestHeaders  FilterType = "RequestHeaderModifier"
	FilterResponseHeaders FilterType = "ResponseHeaderModifier"
	FilterURLRewrite      FilterType = "URLRewrite"
	FilterRequestMirror   FilterType = "RequestMirror"
	FilterCORS            FilterType = "CORS"
	FilterCompression     FilterType = "Compression"
	// FilterDirectResponse answers instead of the backend. Routes carry their direct
	// response as their action; this filter is how a backendRef's ExtensionRef to a
	// DirectResponse answers for that backend's share of traffic.
	FilterDirectResponse FilterType = "DirectResponse"
	// FilterEdgeFunction runs an EdgeFunction's live revision: in filter mode it may answer
	// or pass the request on (edited); in backend mode (a backendRef of kind EdgeFunction)
	// it answers for that backend's share of traffic.
	FilterEdgeFunction FilterType = "EdgeFunction"
)

// Filter is one filter; the field named by Type is set.
type Filter struct {
	Type            FilterType      `json:"type"`
	RequestHeaders  *HeaderModifier `json:"requestHeaders,omitempty"`
	ResponseHeaders *HeaderModifier `json:"responseHeaders,omitempty"`
	URLRewrite      *URLRewrite     `json:"urlRewrite,omitempty"`
	Mirror          *Mirror         `json:"mirror,omitempty"`
	CORS            *CORS           `json:"cors,omitempty"`
	Compression     *Compression    `json:"compression,omitempty"`
	DirectResponse  *DirectResponse `json:"directResponse,omitempty"`
	Function        *Function       `json:"function,omitempty"`
}

// Function is one EdgeFunction revision as the data plane runs it: the built artifact (by
// digest, in the project's artifact store) and how to run it.
type Function struct {
	// Name is the EdgeFunction's namespace/name; Revision its live EdgeFunctionRevision.
	Name     string `json:"name"`
	Revision string `json:"revision"`
	// Scope is the project whose artifact store holds the code.
	Scope string `json:"scope,omitempty"`
	// Digest ("sha256:...") and Runtime ("js" or "wasm") name the built code.
	Digest  string `json:"digest"`
	Runtime string `json:"runtime"`
	// Mode is "filter" or "backend".
	Mode string `json:"mode"`
	// Env are the revision's environment variables.
	Env map[string]string `json:"env,omitempty"`
	// Timeout preempts one invocation (0: the runtime's default).
	Timeout Duration `json:"timeout,omitempty"`
	// Fetch and KV are the capabilities the revision was given.
	Fetch bool `json:"fetch,omitempty"`
	KV    bool `json:"kv,omitempty"`
	// KVStore names the Redis store (a key of Snapshot.RateLimitStores) that holds the
	// function's KV: the one its project's Proxy names, shared by that Proxy's replicas. Empty:
	// the data plane's own store (apoxy --redis, else the project's SQLite file).
	KVStore string `json:"kvStore,omitempty"`
	// Config is a Go function's plugin configuration (the revision's pluginConfig, or the
	// function's dynamicPluginConfig when set).
	Config string `json:"config,omitempty"`
}

// HeaderModifier sets, adds and removes headers.
type HeaderModifier struct {
	Set    []HeaderPair `json:"set,omitempty"`
	Add    []HeaderPair `json:"add,omitempty"`
	Remove []string     `json:"remove,omitempty"`
}

// URLRewrite changes the host and/or path sent upstream.
type URLRewrite struct {
	Hostname string       `json:"hostname,omitempty"`
	Path     *PathRewrite `json:"path,omitempty"`
}

// Mirror copies requests, fire-and-forget, to another backend.
type Mirror struct {
	Backend string `json:"backend"`
	Port    int32  `json:"port"`
	// Percent of requests mirrored, 0-100.
	Percent float64 `json:"percent"`
}

// CORS answers preflights and decorates responses (Gateway API CORS filter).
type CORS struct {
	AllowOrigins     []string `json:"allowOrigins,omitempty"`
	AllowMethods     []string `json:"allowMethods,omitempty"`
	AllowHeaders     []string `json:"allowHeaders,omitempty"`
	ExposeHeaders    []string `json:"exposeHeaders,omitempty"`
	MaxAge           Duration `json:"maxAge,omitempty"`
	AllowCredentials bool     `json:"allowCredentials,omitempty"`
}

// Compression encodes responses the client accepts. It is on by default on every route.
type Compression struct {
	Disabled         bool     `json:"disabled,omitempty"`
	Algorithms       []string `json:"algorithms,omitempty"` // gzip, br, zstd
	MinContentLength int      `json:"minContentLength,omitempty"`
	ContentTypes     []string `json:"contentTypes,omitempty"`
}
