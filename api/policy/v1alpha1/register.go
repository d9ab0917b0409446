package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of the policy kinds.
const GroupName = "policy.apoxy.dev"

// SchemeGroupVersion is the group/version the types in this package are served at.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

var (
	// SchemeBuilder registers the types and their defaulting functions.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes, addDefaultingFuncs)
	// AddToScheme adds this group/version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion, &TrafficPolicy{}, &TrafficPolicyList{}, &AuthPolicy{}, &AuthPolicyList{})
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}

// addDefaultingFuncs registers the defaults. The API server applies a scheme's defaulting
// functions whenever it decodes an object (create, update, patch, server-side apply, and reads
// from storage), so they are persisted and shown by `get -o yaml`; the YAML loader
// (internal/resource/manifest) applies the same ones.
func addDefaultingFuncs(s *runtime.Scheme) error {
	s.AddTypeDefaultingFunc(&TrafficPolicy{}, func(o any) { SetDefaultsTrafficPolicy(o.(*TrafficPolicy)) })
	s.AddTypeDefaultingFunc(&AuthPolicy{}, func(o any) { SetDefaultsAuthPolicy(o.(*AuthPolicy)) })
	return nil
}
