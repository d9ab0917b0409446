// Package v1 re-hosts the upstream Gateway API kinds (sigs.k8s.io/gateway-api/apis/v1, the
// pinned module version) under gateway.apoxy.dev/v1. The Go types are the upstream ones, never
// re-declared, so fields and semantics are identical; only the group differs.
package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// GroupName is the API group Gateway API kinds are served under.
const GroupName = "gateway.apoxy.dev"

// UpstreamGroupName is the Gateway API group as published upstream. References that name it are
// rewritten to GroupName on the server.
const UpstreamGroupName = gwapiv1.GroupName

// SchemeGroupVersion is the group/version the Gateway API kinds are served at.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1"}

var (
	// SchemeBuilder registers the upstream types under our group.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds gateway.apoxy.dev/v1 to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion,
		&gwapiv1.GatewayClass{}, &gwapiv1.GatewayClassList{},
		&gwapiv1.Gateway{}, &gwapiv1.GatewayList{},
		&gwapiv1.HTTPRoute{}, &gwapiv1.HTTPRouteList{},
		&gwapiv1.GRPCRoute{}, &gwapiv1.GRPCRouteList{},
		&gwapiv1.TLSRoute{}, &gwapiv1.TLSRouteList{},
		&gwapiv1.TCPRoute{}, &gwapiv1.TCPRouteList{},
		&gwapiv1.UDPRoute{}, &gwapiv1.UDPRouteList{},
		&gwapiv1.ReferenceGrant{}, &gwapiv1.ReferenceGrantList{},
		&gwapiv1.BackendTLSPolicy{}, &gwapiv1.BackendTLSPolicyList{},
		&gwapiv1.ListenerSet{}, &gwapiv1.ListenerSetList{},
	)
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}

// ControllerName is the GatewayClass controllerName our controllers reconcile.
const ControllerName gwapiv1.GatewayController = "gateway.apoxy.dev/gatewayclass-controller"

// DefaultGatewayClassName, DefaultGatewayName and DefaultTLSSecretName name the objects every
// project is born with (in namespace "default").
const (
	DefaultGatewayClassName = "apoxy"
	DefaultGatewayName      = "default"
	DefaultTLSSecretName    = "default-tls"
)
