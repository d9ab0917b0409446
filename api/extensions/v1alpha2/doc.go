// Package v1alpha2 holds the extensions.apoxy.dev/v1alpha2 kinds that HTTPRoute rules reference
// through ExtensionRef filters: DirectResponse (answer from the gateway) and HTTPRouteFilter
// (per-route compression settings).
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=dev.apoxy.extensions.v1alpha2
// +groupName=extensions.apoxy.dev
package v1alpha2
