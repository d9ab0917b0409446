// Package v1alpha holds the core.apoxy.dev/v1alpha kind TunnelNode: a site connected to the
// gateway by `apoxy tunnel run` over a QUIC/HTTP-3 CONNECT-IP overlay (RFC 9484), whose
// agents each get an IPv6 ULA prefix the gateway routes into. Project-wide (cluster-scoped).
// Types, defaults and validation only; the tunnel endpoint and agent live in internal/tunnel.
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=dev.apoxy.core.v1alpha
// +groupName=core.apoxy.dev
package v1alpha
