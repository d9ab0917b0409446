// Package resource holds resource.Set: every API object one proxy fleet's configuration is
// built from, sorted. It imports only API types (the YAML loader, which applies the server's
// defaults and so needs the schema machinery, is internal/resource/manifest).
package resource

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
)

// Set is the translator's input: the objects of one project, each list sorted by namespace and
// name. It is treated as immutable once built.
type Set struct {
	Namespaces         []*corev1.Namespace         `json:"namespaces,omitempty"`
	Secrets            []*corev1.Secret            `json:"secrets,omitempty"`
	ConfigMaps         []*corev1.ConfigMap         `json:"configMaps,omitempty"`
	GatewayClasses     []*gwapiv1.GatewayClass     `json:"gatewayClasses,omitempty"`
	Gateways           []*gwapiv1.Gateway          `json:"gateways,omitempty"`
	ListenerSets       []*gwapiv1.ListenerSet      `json:"listenerSets,omitempty"`
	HTTPRoutes         []*gwapiv1.HTTPRoute        `json:"httpRoutes,omitempty"`
	GRPCRoutes         []*gwapiv1.GRPCRoute        `json:"grpcRoutes,omitempty"`
	TCPRoutes          []*gwapiv1.TCPRoute         `json:"tcpRoutes,omitempty"`
	UDPRoutes          []*gwapiv1.UDPRoute         `json:"udpRoutes,omitempty"`
	TLSRoutes          []*gwapiv1.TLSRoute         `json:"tlsRoutes,omitempty"`
	ReferenceGrants    []*gwapiv1.ReferenceGrant   `json:"referenceGrants,omitempty"`
	BackendTLSPolicies []*gwapiv1.BackendTLSPolicy `json:"backendTLSPolicies,omitempty"`
	Backends           []*corev1a2.Backend         `json:"backends,omitempty"`
	Proxies            []*corev1a2.Proxy           `json:"proxies,omitempty"`
	DirectResponses    []*extv1a2.DirectResponse   `json:"directResponses,omitempty"`
	HTTPRouteFilters   []*extv1a2.HTTPRouteFilter  `json:"httpRouteFilters,omitempty"`
}

// Add puts an object into its list. Unknown types are an error.
func (s *Set) Add(obj runtime.Object) error {
	switch o := obj.(type) {
	case *corev1.Namespace:
		s.Namespaces = append(s.Namespaces, o)
	case *corev1.Secret:
		s.Secrets = append(s.Secrets, o)
	case *corev1.ConfigMap:
		s.ConfigMaps = append(s.ConfigMaps, o)
	case *gwapiv1.GatewayClass:
		s.GatewayClasses = append(s.GatewayClasses, o)
	case *gwapiv1.Gateway:
		s.Gateways = append(s.Gateways, o)
	case *gwapiv1.ListenerSet:
		s.ListenerSets = append(s.ListenerSets, o)
	case *gwapiv1.HTTPRoute:
		s.HTTPRoutes = append(s.HTTPRoutes, o)
	case *gwapiv1.GRPCRoute:
		s.GRPCRoutes = append(s.GRPCRoutes, o)
	case *gwapiv1.TCPRoute:
		s.TCPRoutes = append(s.TCPRoutes, o)
	case *gwapiv1.UDPRoute:
		s.UDPRoutes = append(s.UDPRoutes, o)
	case *gwapiv1.TLSRoute:
		s.TLSRoutes = append(s.TLSRoutes, o)
	case *gwapiv1.ReferenceGrant:
		s.ReferenceGrants = append(s.ReferenceGrants, o)
	case *gwapiv1.BackendTLSPolicy:
		s.BackendTLSPolicies = append(s.BackendTLSPolicies, o)
	case *corev1a2.Backend:
		s.Backends = append(s.Backends, o)
	case *corev1a2.Proxy:
		s.Proxies = append(s.Proxies, o)
	case *extv1a2.DirectResponse:
		s.DirectResponses = append(s.DirectResponses, o)
	case *extv1a2.HTTPRouteFilter:
		s.HTTPRouteFilters = append(s.HTTPRouteFilters, o)
	default:
		return fmt.Errorf("resource: unsupported type %T", obj)
	}
	return nil
}

// Sort orders every list by namespace, then name, so translation is deterministic.
func (s *Set) Sort() {
	sortObjs(s.Namespaces)
	sortObjs(s.Secrets)
	sortObjs(s.ConfigMaps)
	sortObjs(s.GatewayClasses)
	sortObjs(s.Gateways)
	sortObjs(s.ListenerSets)
	sortObjs(s.HTTPRoutes)
	sortObjs(s.GRPCRoutes)
	sortObjs(s.TCPRoutes)
	sortObjs(s.UDPRoutes)
	sortObjs(s.TLSRoutes)
	sortObjs(s.ReferenceGrants)
	sortObjs(s.BackendTLSPolicies)
	sortObjs(s.Backends)
	sortObjs(s.Proxies)
	sortObjs(s.DirectResponses)
	sortObjs(s.HTTPRouteFilters)
}

func sortObjs[T metav1.Object](list []T) {
	slices.SortStableFunc(list, func(a, b T) int {
		if c := strings.Compare(a.GetNamespace(), b.GetNamespace()); c != 0 {
			return c
		}
		return strings.Compare(a.GetName(), b.GetName())
	})
}
