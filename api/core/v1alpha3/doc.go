// Package v1alpha3 holds the core.apoxy.dev/v1alpha3 kinds: DomainZone (a DNS zone this
// platform answers for with authority) and DomainRecord (one name's records in it, or a name
// pointed at a Gateway, which then gets a certificate from ACME). Both are project-wide
// (cluster-scoped). Types, defaults and validation only; the DNS server lives in
// internal/dns, certificates in internal/acme.
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=dev.apoxy.core.v1alpha3
// +groupName=core.apoxy.dev
package v1alpha3
