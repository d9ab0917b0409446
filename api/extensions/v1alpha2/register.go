package v1alpha2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of the extension kinds.
const GroupName = "extensions.apoxy.dev"

// SchemeGroupVersion is the group/version the types in this package are served at.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha2"}

var (
	// SchemeBuilder registers the types and their defaulting functions.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes, addDefaultingFuncs)
	// AddToScheme adds this group/version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion, &DirectResponse{}, &DirectResponseList{}, &HTTPRouteFilter{}, &HTTPRouteFilterList{},
		&EdgeFunction{}, &EdgeFunctionList{}, &EdgeFunctionRevision{}, &EdgeFunctionRevisionList{})
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}

func addDefaultingFuncs(s *runtime.Scheme) error {
	s.AddTypeDefaultingFunc(&DirectResponse{}, func(o any) { SetDefaultsDirectResponse(o.(*DirectResponse)) })
	s.AddTypeDefaultingFunc(&HTTPRouteFilter{}, func(o any) { SetDefaultsHTTPRouteFilter(o.(*HTTPRouteFilter)) })
	s.AddTypeDefaultingFunc(&EdgeFunction{}, func(o any) { SetDefaultsEdgeFunction(o.(*EdgeFunction)) })
	s.AddTypeDefaultingFunc(&EdgeFunctionRevision{}, func(o any) { SetDefaultsEdgeFunctionRevision(o.(*EdgeFunctionRevision)) })
	return nil
}
