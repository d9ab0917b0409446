package v1alpha2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Backend is an upstream service that routes send traffic to: a set of endpoints (DNS names that
// the gateway re-resolves, or static IPs), the protocol spoken to them, and optional active
// health checking. The port comes from the route's backendRef.
type Backend struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BackendSpec   `json:"spec,omitempty"`
	Status BackendStatus `json:"status,omitempty"`
}

// BackendProtocol is the application protocol the gateway speaks to a Backend's endpoints.
type BackendProtocol string

const (
	// BackendProtocolPlain is HTTP/1.1 over cleartext TCP. The empty string means the same.
	BackendProtocolPlain BackendProtocol = "plain"
	// BackendProtocolTLS is HTTP/1.1 over TLS, verified against the system trust store unless a
	// BackendTLSPolicy says otherwise.
	BackendProtocolTLS BackendProtocol = "tls"
	// BackendProtocolH2 is HTTP/2 over TLS (ALPN h2).
	BackendProtocolH2 BackendProtocol = "h2"
	// BackendProtocolH2C is cleartext HTTP/2 with prior knowledge.
	BackendProtocolH2C BackendProtocol = "h2c"
)

// BackendSpec is the desired state of a Backend.
type BackendSpec struct {
	// Endpoints are the addresses traffic is balanced across. Each entry sets exactly one of
	// fqdn or ip. Required unless dynamicProxy is set, in which case exactly one entry is allowed.
	// +listType=atomic
	Endpoints []BackendEndpoint `json:"endpoints,omitempty"`

	// Protocol is one of "" (same as plain), plain, tls, h2 or h2c.
	// +optional
	Protocol BackendProtocol `json:"protocol,omitempty"`

	// DynamicProxy forwards to the host named by each request instead of fixed endpoints.
	// +optional
	DynamicProxy *DynamicProxySpec `json:"dynamicProxy,omitempty"`

	// HealthCheck enables active health checking. Endpoints that fail it are taken out of the
	// load-balancing pool until they pass again.
	// +optional
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
}

// BackendEndpoint is one upstream address. Exactly one field is set.
type BackendEndpoint struct {
	// FQDN is a DNS name, re-resolved by the gateway (all A/AAAA records, respecting TTL).
	// +optional
	FQDN string `json:"fqdn,omitempty"`
	// IP is a static IPv4 or IPv6 address.
	// +optional
	IP string `json:"ip,omitempty"`
}

// DNSLookupFamily selects which address families the dynamic forward proxy resolves.
type DNSLookupFamily string

// Supported DNS lookup families.
const (
	DNSLookupFamilyAuto        DNSLookupFamily = "auto"
	DNSLookupFamilyV4Only      DNSLookupFamily = "v4_only"
	DNSLookupFamilyV6Only      DNSLookupFamily = "v6_only"
	DNSLookupFamilyV4Preferred DNSLookupFamily = "v4_preferred"
	DNSLookupFamilyAll         DNSLookupFamily = "all"
)

// DynamicProxySpec turns a Backend into a dynamic forward proxy: the upstream host is taken from
// the request and resolved through a DNS cache.
type DynamicProxySpec struct {
	// +optional
	DNSCacheConfig *DNSCacheConfig `json:"dnsCacheConfig,omitempty"`
}

// DNSCacheConfig tunes the dynamic forward proxy's DNS cache.
type DNSCacheConfig struct {
	// DNSLookupFamily defaults to auto.
	// +optional
	DNSLookupFamily DNSLookupFamily `json:"dnsLookupFamily,omitempty"`
	// DNSRefreshRate defaults to 60s and must be at least 1ms.
	// +optional
	DNSRefreshRate *metav1.Duration `json:"dnsRefreshRate,omitempty"`
	// DNSMinRefreshRate defaults to 5s and must be at least 1s.
	// +optional
	DNSMinRefreshRate *metav1.Duration `json:"dnsMinRefreshRate,omitempty"`
	// HostTTL evicts hosts not used for this long; defaults to 5m.
	// +optional
	HostTTL *metav1.Duration `json:"hostTTL,omitempty"`
	// MaxHosts caps the cache; defaults to 1024.
	// +optional
	MaxHosts *int32 `json:"maxHosts,omitempty"`
	// DNSQueryTimeout defaults to 5s.
	// +optional
	DNSQueryTimeout *metav1.Duration `json:"dnsQueryTimeout,omitempty"`
}

// HealthCheck configures active health checks. Exactly one of http or tcp is set.
type HealthCheck struct {
	// HTTP probes send a request and expect one of the expected statuses.
	// +optional
	HTTP *HTTPHealthCheck `json:"http,omitempty"`
	// TCP probes only open a connection.
	// +optional
	TCP *TCPHealthCheck `json:"tcp,omitempty"`

	// Interval between probes of one endpoint; defaults to 10s, at least 100ms.
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
	// Timeout of one probe; defaults to 2s and must not exceed interval.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// HealthyThreshold is how many consecutive successes bring an endpoint back; defaults to 2.
	// +optional
	HealthyThreshold *int32 `json:"healthyThreshold,omitempty"`
	// UnhealthyThreshold is how many consecutive failures take an endpoint out; defaults to 3.
	// +optional
	UnhealthyThreshold *int32 `json:"unhealthyThreshold,omitempty"`
}

// HTTPHealthCheck is an HTTP probe.
type HTTPHealthCheck struct {
	// Path requested by the probe; defaults to "/".
	// +optional
	Path string `json:"path,omitempty"`
	// Method of the probe; defaults to GET.
	// +optional
	Method string `json:"method,omitempty"`
	// Host header of the probe; defaults to the endpoint's FQDN or IP.
	// +optional
	Host string `json:"host,omitempty"`
	// ExpectedStatuses lists the response codes counted as healthy; empty means 200-399.
	// +optional
	// +listType=set
	ExpectedStatuses []int32 `json:"expectedStatuses,omitempty"`
}

// TCPHealthCheck is a connect-only probe.
type TCPHealthCheck struct{}

// BackendStatus is the observed state of a Backend.
type BackendStatus struct {
	// ObservedGeneration is the generation the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Accepted, ResolvedEndpoints, Healthy.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Endpoints reports each resolved address and its health.
	// +optional
	// +listType=atomic
	Endpoints []BackendEndpointStatus `json:"endpoints,omitempty"`
}

// BackendEndpointStatus is the observed state of one resolved endpoint address.
type BackendEndpointStatus struct {
	// Address is an IP the endpoint resolved to.
	Address string `json:"address"`
	// Healthy is false while active health checks fail.
	Healthy bool `json:"healthy"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// BackendList is a list of Backends.
type BackendList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Backend `json:"items"`
}
