// Package v1alpha1 holds the policy.apoxy.dev/v1alpha1 kinds, policies that attach to Gateways,
// listeners, routes and route rules through targetRefs: TrafficPolicy (rate limits, retries,
// timeouts, circuit breaking, outlier detection, load balancing, fault injection) and
// AuthPolicy (CORS, basic auth, JWT, OIDC, authorization rules, external authorization). Types,
// defaults and validation only; the translator (internal/translate) merges the policies that
// apply to a request and reports their status.
//
// The design, with precedence, merging and status, is
// ../shared/reference/policy-api-design.md (outside this repository); docs/api.md summarises it.
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=dev.apoxy.policy.v1alpha1
// +groupName=policy.apoxy.dev
package v1alpha1
