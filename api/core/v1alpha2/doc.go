// Package v1alpha2 holds the core.apoxy.dev/v1alpha2 kinds: Backend (where traffic goes) and
// Proxy (where and how a data plane runs). Types, defaults and validation only; serving lives in
// internal/apiserver.
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=dev.apoxy.core.v1alpha2
// +groupName=core.apoxy.dev
package v1alpha2
