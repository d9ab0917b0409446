// Package v1alpha1 holds the platform.apoxy.dev/v1alpha1 kinds served at the server root, outside
// any project: Project, the isolation boundary. Only the admin key reaches them.
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=dev.apoxy.platform.v1alpha1
// +groupName=platform.apoxy.dev
package v1alpha1
