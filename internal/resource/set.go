// Package resource holds the kind registry (Kinds: every API kind Apoxy serves, and what each
// part of the program needs to know about it) and resource.Set: every API object one proxy
// fleet's configuration is built from, sorted. It imports only API types, apimachinery and
// internal/status (whose Report the registry points into), so the translator can use it; the YAML
// loader, which applies the server's defaults and so needs the schema machinery, is
// internal/resource/manifest, and the API server's own rules stay in internal/apiserver.
package resource

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	corev1a "apoxy.dev/apoxy/api/core/v1alpha"
	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	corev1a3 "apoxy.dev/apoxy/api/core/v1alpha3"
	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
	policyv1a1 "apoxy.dev/apoxy/api/policy/v1alpha1"
)

// Set is the translator's input: the objects of one project, each list sorted by namespace and
// name. It is treated as immutable once built. Each list belongs to one registered kind (its
// entry in kinds.go names the field), which is how Add, Sort and Objects find it.
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
	// CloudMonitoringIntegrations add telemetry sinks to the Proxies of their namespace.
	CloudMonitoringIntegrations []*corev1a2.CloudMonitoringIntegration `json:"cloudMonitoringIntegrations,omitempty"`
	DirectResponses             []*extv1a2.DirectResponse              `json:"directResponses,omitempty"`
	HTTPRouteFilters            []*extv1a2.HTTPRouteFilter             `json:"httpRouteFilters,omitempty"`
	// EdgeFunctions and their EdgeFunctionRevisions: routes run a function's live revision.
	EdgeFunctions         []*extv1a2.EdgeFunction         `json:"edgeFunctions,omitempty"`
	EdgeFunctionRevisions []*extv1a2.EdgeFunctionRevision `json:"edgeFunctionRevisions,omitempty"`
	TrafficPolicies       []*policyv1a1.TrafficPolicy     `json:"trafficPolicies,omitempty"`
	AuthPolicies          []*policyv1a1.AuthPolicy        `json:"authPolicies,omitempty"`
	// DomainZones and DomainRecords: what the DNS server answers, and the names given
	// certificates.
	DomainZones   []*corev1a3.DomainZone   `json:"domainZones,omitempty"`
	DomainRecords []*corev1a3.DomainRecord `json:"domainRecords,omitempty"`
	TunnelNodes   []*corev1a.TunnelNode    `json:"tunnelNodes,omitempty"`
}

// Add puts an object into its kind's list. Kinds the registry does not know, or that the
// translator does not read, are an error.
func (s *Set) Add(obj runtime.Object) error {
	if k, ok := KindOf(obj); ok && k.set != nil && k.set.add(s, obj) {
		return nil
	}
	return fmt.Errorf("resource: unsupported type %T", obj)
}

// Sort orders every list by namespace, then name, so translation is deterministic.
func (s *Set) Sort() {
	for _, k := range registry {
		if k.set != nil {
			k.set.sort(s)
		}
	}
}

// Objects returns the objects of one kind, in list order (nil for a kind the translator does not
// read).
func (s *Set) Objects(k *Kind) []Object {
	if k.set == nil {
		return nil
	}
	return k.set.list(s)
}

func sortObjs[T metav1.Object](list []T) {
	slices.SortStableFunc(list, func(a, b T) int {
		if c := strings.Compare(a.GetNamespace(), b.GetNamespace()); c != 0 {
			return c
		}
		return strings.Compare(a.GetName(), b.GetName())
	})
}
