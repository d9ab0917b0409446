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
