// Package status holds the translator's status output (Report) and condition helpers. Status
// is a value the translator returns, never a write to the API; the controller writes it.
package status

import (
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
)

// Key names a namespaced object ("namespace/name"; "name" when cluster-scoped).
type Key string

// KeyOf returns the key of namespace and name.
func KeyOf(namespace, name string) Key {
	if namespace == "" {
		return Key(name)
	}
	return Key(namespace + "/" + name)
}

// Report is the status the translator computed for every object it read. Route statuses hold
// only the parents this controller manages.
type Report struct {
	GatewayClasses map[Key]*gwapiv1.GatewayClassStatus `json:"gatewayClasses,omitempty"`
	Gateways       map[Key]*gwapiv1.GatewayStatus      `json:"gateways,omitempty"`
	ListenerSets   map[Key]*gwapiv1.ListenerSetStatus  `json:"listenerSets,omitempty"`
	HTTPRoutes     map[Key]*gwapiv1.HTTPRouteStatus    `json:"httpRoutes,omitempty"`
	GRPCRoutes     map[Key]*gwapiv1.GRPCRouteStatus    `json:"grpcRoutes,omitempty"`
	TCPRoutes      map[Key]*gwapiv1.TCPRouteStatus     `json:"tcpRoutes,omitempty"`
	UDPRoutes      map[Key]*gwapiv1.UDPRouteStatus     `json:"udpRoutes,omitempty"`
	TLSRoutes      map[Key]*gwapiv1.TLSRouteStatus     `json:"tlsRoutes,omitempty"`
	Backends       map[Key]*corev1a2.BackendStatus     `json:"backends,omitempty"`
	Proxies        map[Key]*corev1a2.ProxyStatus       `json:"proxies,omitempty"`
	// BackendTLSPolicies hold ancestor entries for the Gateways that reach the policy's
	// Backends through routes.
	BackendTLSPolicies map[Key]*gwapiv1.PolicyStatus `json:"backendTLSPolicies,omitempty"`
	// TrafficPolicies hold one ancestor entry per Gateway (or listener) the policy reaches
	// through its targets.
	TrafficPolicies map[Key]*gwapiv1.PolicyStatus `json:"trafficPolicies,omitempty"`
	// AuthPolicies hold one ancestor entry per Gateway (or listener) the policy reaches through
	// its targets, as TrafficPolicies. A policy with no entry keeps its stored status.
	AuthPolicies map[Key]*gwapiv1.PolicyStatus `json:"authPolicies,omitempty"`
	// GatewayBinds are the addresses each Gateway's listeners bind (spec, pool or the server's
	// bind address), so the controller can match data-plane bind errors to the Gateway.
	GatewayBinds map[Key][]string `json:"-"`
	// AuthRuntime names, per AuthPolicy whose blocks depend on something at run time (a
	// remote JWKS, an external authorization service), what the controller asks the data
	// plane about for its Healthy condition.
	AuthRuntime map[Key]AuthRuntime `json:"-"`
	// PolicyStores name, per TrafficPolicy with Global rate-limit rules, the store each of
	// its ancestor Gateways counts them in (by the ancestor's index in its status; "" is the
	// data plane's own store), so the controller can report the policy's Healthy condition.
	PolicyStores map[Key]map[int]string `json:"-"`
	// Integrations say, per CloudMonitoringIntegration, what became of it: disabled, refused
	// (Error), or the sinks it became, whose export state the controller reads from the data
	// plane for its Connected condition.
	Integrations map[Key]Integration `json:"-"`
}

// Integration is what the translator made of a CloudMonitoringIntegration.
type Integration struct {
	Generation int64
	Disabled   bool
	// Error says why it could not become a sink ("" it could).
	Error string
	// Sinks are the sinks it became, one per Proxy it applies to.
	Sinks []IntegrationSink
}

// IntegrationSink names one sink in the data plane: the collector pipeline (ir.Collector
// Name) and the sink's name in it.
type IntegrationSink struct {
	Collector, Sink string
}

// NewReport returns an empty report.
func NewReport() *Report {
	return &Report{
		GatewayClasses: map[Key]*gwapiv1.GatewayClassStatus{},
		Gateways:       map[Key]*gwapiv1.GatewayStatus{},
		ListenerSets:   map[Key]*gwapiv1.ListenerSetStatus{},
		HTTPRoutes:     map[Key]*gwapiv1.HTTPRouteStatus{},
		GRPCRoutes:     map[Key]*gwapiv1.GRPCRouteStatus{},
		TCPRoutes:      map[Key]*gwapiv1.TCPRouteStatus{},
		UDPRoutes:      map[Key]*gwapiv1.UDPRouteStatus{},
		TLSRoutes:      map[Key]*gwapiv1.TLSRouteStatus{},
		Backends:       map[Key]*corev1a2.BackendStatus{},
		Proxies:        map[Key]*corev1a2.ProxyStatus{},
		Integrations:   map[Key]Integration{},

		BackendTLSPolicies: map[Key]*gwapiv1.PolicyStatus{},
		TrafficPolicies:    map[Key]*gwapiv1.PolicyStatus{},
		AuthPolicies:       map[Key]*gwapiv1.PolicyStatus{},
		GatewayBinds:       map[Key][]string{},
	}
}

// Condition builds a condition. LastTransitionTime is now; Merge keeps the old one when the
// status did not change.
func Condition(typ string, ok bool, reason, message string, generation int64, now time.Time) metav1.Condition {
	st := metav1.ConditionFalse
	if ok {
		st = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: st, Reason: reason, Message: message, ObservedGeneration: generation, LastTransitionTime: metav1.NewTime(now)}
}

// Set adds or replaces a condition by type, keeping the list sorted by type.
func Set(conds *[]metav1.Condition, c metav1.Condition) {
	for i := range *conds {
		if (*conds)[i].Type == c.Type {
			(*conds)[i] = c
			return
		}
	}
	*conds = append(*conds, c)
	slices.SortFunc(*conds, func(a, b metav1.Condition) int { return strings.Compare(a.Type, b.Type) })
}

// Find returns the condition of a type, or nil.
func Find(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// KeepTransitionTimes copies LastTransitionTime from old conditions whose status did not
// change, so rewriting status every translation does not move timestamps.
func KeepTransitionTimes(next, old []metav1.Condition) {
	for i := range next {
		if o := Find(old, next[i].Type); o != nil && o.Status == next[i].Status {
			next[i].LastTransitionTime = o.LastTransitionTime
		}
	}
}

// AuthRuntime is what an AuthPolicy's Healthy condition is computed from.
type AuthRuntime struct {
	// ID is the blocks' ir.AuthBlock.ID.
	ID string `json:"id"`
	// Ancestors are the indexes of status.ancestors the policy is accepted under.
	Ancestors []int `json:"ancestors"`
	// ExtAuthFailOpen says an ext authz failure lets requests pass.
	ExtAuthFailOpen bool `json:"extAuthFailOpen,omitempty"`
	// ExtAuthStatus is the status a failure answers with otherwise.
	ExtAuthStatus int `json:"extAuthStatus,omitempty"`
}
