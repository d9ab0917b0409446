package v1alpha2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Proxy says where and how a data plane runs: who runs it, how it drains on shutdown and what
// telemetry it emits. A Gateway links to a Proxy through spec.infrastructure.parametersRef; the
// default Gateway of every project uses the default Proxy.
type Proxy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ProxySpec   `json:"spec,omitempty"`
	Status ProxyStatus `json:"status,omitempty"`
}

// ProxyProvider says who runs a Proxy's data plane.
type ProxyProvider string

const (
	// ProxyProviderCloud means the Apoxy server runs the data plane itself (in-process). This is
	// the default.
	ProxyProviderCloud ProxyProvider = "cloud"
	// ProxyProviderKubernetes means the data plane runs in a Kubernetes cluster.
	ProxyProviderKubernetes ProxyProvider = "kubernetes"
	// ProxyProviderUnmanaged means the user runs it, e.g. `apoxy gateway run --proxy NAME`.
	ProxyProviderUnmanaged ProxyProvider = "unmanaged"
)

// ProxySpec is the desired state of a Proxy.
type ProxySpec struct {
	// Provider is cloud (default), kubernetes or unmanaged.
	// +optional
	Provider ProxyProvider `json:"provider,omitempty"`
	// Shutdown controls connection draining.
	// +optional
	Shutdown *ShutdownConfig `json:"shutdown,omitempty"`
	// Telemetry configures access logs, content logs, tracing and sinks.
	// +optional
	Telemetry *ProxyTelemetry `json:"telemetry,omitempty"`
	// RateLimit names the store that Global rate-limit rules (TrafficPolicy
	// spec.rateLimit.rules[].scope: Global) count in, shared by every data-plane instance that
	// serves Gateways of this Proxy. Without it such rules are not accepted. The project's
	// EdgeFunctions keep their KV in it too, so every instance sees the same keys.
	// +optional
	RateLimit *ProxyRateLimit `json:"rateLimit,omitempty"`
	// HTTP sets what the HTTP and HTTPS listeners of this Proxy's Gateways hold clients to:
	// timeouts, header sizes and HTTP/2 streams and windows. Unset fields keep the defaults.
	// A change reaches connections opened afterwards; open ones keep the limits they began
	// with. When Gateways of several Proxies share a port, the oldest Gateway's Proxy decides.
	// +optional
	HTTP *ProxyHTTP `json:"http,omitempty"`
}

// ProxyHTTP are the client-side limits of HTTP listeners (HTTP/1.1 and HTTP/2).
type ProxyHTTP struct {
	// IdleTimeout closes a client connection with no request in flight for this long: an
	// HTTP/1.1 keep-alive connection between requests, an HTTP/2 connection without open
	// streams (after GOAWAY). Default 120s; at least 1s.
	// +optional
	IdleTimeout *metav1.Duration `json:"idleTimeout,omitempty"`
	// RequestHeaderTimeout bounds the TLS handshake and, once a request's first byte arrived,
	// reading its HTTP/1.1 head; a slower client is disconnected (408 logged). Default 30s;
	// at least 1s.
	// +optional
	RequestHeaderTimeout *metav1.Duration `json:"requestHeaderTimeout,omitempty"`
	// RequestBodyTimeout ends a request whose client sends nothing of its body for this long
	// while the gateway waits for it: the client is answered 408, the upstream request is
	// cut. It bounds each wait, not the whole upload, so a slow but steady upload is not
	// cut. Default 60s; at least 1s.
	// +optional
	RequestBodyTimeout *metav1.Duration `json:"requestBodyTimeout,omitempty"`
	// MaxRequestHeaderBytes bounds a request's headers: the HTTP/1.1 request line and header
	// block as sent, the HTTP/2 header list as decoded (RFC 9113 §6.5.2 size). More is
	// answered 431. Default 61440 (HTTP/1.1) and 65536 (HTTP/2); 1024..1048576.
	// +optional
	MaxRequestHeaderBytes *int32 `json:"maxRequestHeaderBytes,omitempty"`
	// MaxRequestHeaders bounds the number of header fields of an HTTP/1.1 request (431 past
	// it). Default 100; 1..1000.
	// +optional
	MaxRequestHeaders *int32 `json:"maxRequestHeaders,omitempty"`
	// HTTP2 sets HTTP/2's own limits.
	// +optional
	HTTP2 *ProxyHTTP2 `json:"http2,omitempty"`
}

// ProxyHTTP2 are HTTP/2 settings advertised to clients and enforced on them.
type ProxyHTTP2 struct {
	// MaxConcurrentStreams is how many requests a client may have open on one connection
	// (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused (REFUSED_STREAM, safe to retry).
	// Default 250; 1..10000.
	// +optional
	MaxConcurrentStreams *int32 `json:"maxConcurrentStreams,omitempty"`
	// InitialStreamWindowSize is how many request-body bytes a client may send on one stream
	// before the gateway has read them (SETTINGS_INITIAL_WINDOW_SIZE). Larger helps fast
	// uploads over long round trips, smaller bounds the memory a connection can make the
	// gateway hold. Default 1048576 (1 MiB); 65535..2147483647.
	// +optional
	InitialStreamWindowSize *int32 `json:"initialStreamWindowSize,omitempty"`
	// InitialConnectionWindowSize is the same for all streams of a connection together.
	// Default 4194304 (4 MiB); 65535..2147483647, and not below initialStreamWindowSize.
	// +optional
	InitialConnectionWindowSize *int32 `json:"initialConnectionWindowSize,omitempty"`
	// WriteTimeout bounds each write to a client's socket: a client that stops reading its
	// responses loses its connection instead of pinning it. Default 30s; at least 1s.
	// +optional
	WriteTimeout *metav1.Duration `json:"writeTimeout,omitempty"`
}

// ProxyRateLimit configures the global rate-limit store.
type ProxyRateLimit struct {
	// Redis is the store: a Redis server (or anything speaking its protocol) that every
	// data-plane instance of the Proxy can reach.
	Redis *RedisStore `json:"redis,omitempty"`
}

// RedisStore is how a data plane reaches Redis.
type RedisStore struct {
	// Address is host:port (a DNS name or an IP address; IPv6 in brackets).
	Address string `json:"address"`
	// PasswordSecretRef names a Secret in the Proxy's namespace holding the password (AUTH).
	// +optional
	PasswordSecretRef *SecretKeyRef `json:"passwordSecretRef,omitempty"`
	// TLS speaks TLS to Redis, verified against the system roots.
	// +optional
	TLS bool `json:"tls,omitempty"`
	// Database is the logical database number, 0..15 (default 0).
	// +optional
	Database int32 `json:"database,omitempty"`
}

// SecretKeyRef names one key of a Secret in the referring object's namespace.
type SecretKeyRef struct {
	// Name of the Secret.
	Name string `json:"name"`
	// Key in the Secret's data; defaults to "password".
	// +optional
	Key string `json:"key,omitempty"`
}

// ShutdownConfig controls how a data plane drains when it stops.
type ShutdownConfig struct {
	// DrainTimeout is the longest a drain may take; defaults to 30s.
	// +optional
	DrainTimeout *metav1.Duration `json:"drainTimeout,omitempty"`
	// MinimumDrainTime is the least time spent draining; defaults to 0 and must not exceed
	// drainTimeout.
	// +optional
	MinimumDrainTime *metav1.Duration `json:"minimumDrainTime,omitempty"`
}

// ProxyStatus is the observed state of a Proxy.
type ProxyStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Addresses the data plane accepts traffic on.
	// +optional
	// +listType=atomic
	Addresses []string `json:"addresses,omitempty"`
	// Replicas are the data-plane instances connected to the control plane.
	// +optional
	// +listType=atomic
	Replicas []ProxyReplicaStatus `json:"replicas,omitempty"`
}

// ProxyReplicaStatus describes one running data-plane instance.
type ProxyReplicaStatus struct {
	Name string `json:"name"`
	// +optional
	ConnectedAt *metav1.Time `json:"connectedAt,omitempty"`
	// +optional
	Locality string `json:"locality,omitempty"`
	// +optional
	// +listType=atomic
	Addresses []ReplicaAddress `json:"addresses,omitempty"`
}

// ReplicaAddress is an address of a replica: ExternalIP, InternalIP or InternalULA.
type ReplicaAddress struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ProxyList is a list of Proxies.
type ProxyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Proxy `json:"items"`
}
