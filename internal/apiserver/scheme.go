package apiserver

import (
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	corev1a "apoxy.dev/apoxy/api/core/v1alpha"
	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	corev1a3 "apoxy.dev/apoxy/api/core/v1alpha3"
	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
	gatewayv1 "apoxy.dev/apoxy/api/gateway/v1"
	platformv1a1 "apoxy.dev/apoxy/api/platform/v1alpha1"
	policyv1a1 "apoxy.dev/apoxy/api/policy/v1alpha1"
	"apoxy.dev/apoxy/internal/resource"
)

var (
	// Scheme knows every served type, at its external version and (as the same Go type) at the
	// internal hub version the request handlers convert through. With one version per group the
	// hub needs no conversion functions.
	Scheme = runtime.NewScheme()
	// Codecs serialises Scheme's types (JSON, YAML, protobuf where the type supports it).
	Codecs = serializer.NewCodecFactory(Scheme)
	// ParameterCodec decodes query parameters (ListOptions, GetOptions...).
	ParameterCodec = runtime.NewParameterCodec(Scheme)
)

// coreGV is the legacy core group ("/api/v1"), from which we serve Namespace, Secret and ConfigMap.
var coreGV = schema.GroupVersion{Version: "v1"}

func init() {
	for _, add := range []func(*runtime.Scheme) error{
		corev1a.AddToScheme, corev1a2.AddToScheme, corev1a3.AddToScheme, extv1a2.AddToScheme, gatewayv1.AddToScheme, platformv1a1.AddToScheme, policyv1a1.AddToScheme, addCoreTypes,
	} {
		if err := add(Scheme); err != nil {
			panic(err)
		}
	}
	for _, gv := range []schema.GroupVersion{corev1a2.SchemeGroupVersion, corev1a3.SchemeGroupVersion, corev1a.SchemeGroupVersion, extv1a2.SchemeGroupVersion, gatewayv1.SchemeGroupVersion, platformv1a1.SchemeGroupVersion, policyv1a1.SchemeGroupVersion, coreGV} {
		internal := schema.GroupVersion{Group: gv.Group, Version: runtime.APIVersionInternal}
		for kind, t := range Scheme.KnownTypes(gv) {
			if _, isOption := Scheme.KnownTypes(metav1.SchemeGroupVersion)[kind]; isOption {
				continue // ListOptions and friends are registered by AddToGroupVersion
			}
			if kind == "WatchEvent" {
				continue
			}
			Scheme.AddKnownTypeWithName(internal.WithKind(kind), reflectNew(t))
		}
	}
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	unversioned := schema.GroupVersion{Group: "", Version: "v1"}
	Scheme.AddUnversionedTypes(unversioned, &metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
}

// addCoreTypes registers only the core kinds we serve, the registry's kinds of the core group
// (Namespace, Secret and ConfigMap: so Gateway certificateRefs and BackendTLSPolicy CA refs keep
// their upstream kinds and `kubectl create secret tls` / `kubectl create configmap` work).
func addCoreTypes(s *runtime.Scheme) error {
	for _, k := range resource.Kinds() {
		if k.GVK.GroupVersion() == coreGV {
			s.AddKnownTypes(coreGV, k.New(), k.NewList())
		}
	}
	return nil
}

func reflectNew(t reflect.Type) runtime.Object {
	return reflect.New(t).Interface().(runtime.Object)
}
