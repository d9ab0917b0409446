package v1alpha

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of the core Apoxy kinds.
const GroupName = "core.apoxy.dev"

// SchemeGroupVersion is the group/version the types in this package are served at.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha"}

var (
	// SchemeBuilder registers the types.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds this group/version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion, &TunnelNode{}, &TunnelNodeList{})
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
