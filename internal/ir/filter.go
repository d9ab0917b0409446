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
