package translate

import (
	"cmp"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
	policyv1a1 "apoxy.dev/apoxy/api/policy/v1alpha1"
	"apoxy.dev/apoxy/internal/hostname"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/resource"
	"apoxy.dev/apoxy/internal/status"
)

// translator carries one translation's indexes and intermediate contexts.
type translator struct {
	set    *resource.Set
	opts   Options
	report *status.Report
	snap   *ir.Snapshot

	namespaces      map[string]*corev1.Namespace
	secrets         map[status.Key]*corev1.Secret
	configMaps      map[status.Key]*corev1.ConfigMap
	backends        map[status.Key]*corev1a2.Backend
	directResponses map[status.Key]*extv1a2.DirectResponse
	routeFilters    map[status.Key]*extv1a2.HTTPRouteFilter
	functions       map[status.Key]*extv1a2.EdgeFunction
	revisions       map[status.Key]*extv1a2.EdgeFunctionRevision

	// classes are the accepted GatewayClasses (ours).
	classes  map[string]bool
	gateways map[status.Key]*gatewayCtx
	// gatewayOrder is oldest first: on conflicts the older Gateway wins.
	gatewayOrder []*gatewayCtx
	sockets      map[string]*ir.Listener
	// hostClaims maps "socket|listener hostname" to the Gateway serving it.
	hostClaims map[string]status.Key
	// limitsBy maps an HTTP socket to the Gateway whose Proxy set its client limits.
	limitsBy map[string]status.Key
	// listenerSets are the ListenerSets whose parent is one of our Gateways.
	listenerSets map[status.Key]*listenerSetCtx
	certs        map[string]*ir.Certificate
	// usedBackends are the backends some route refers to, by IR name.
	usedBackends map[string]*ir.Backend
	// order holds each IR route's precedence tie-breakers.
	order map[*ir.Route]routeOrder
	// allocated are pool addresses given out in this translation.
	allocated map[string]bool
	// inSpec are the addresses Gateways name in spec.addresses; reportedBy maps each address a
	// Gateway reports in status to the oldest such Gateway. Both are built on first allocate.
	inSpec     map[string]bool
	reportedBy map[string]*gwapiv1.Gateway
	// tlsPolicies maps a Backend key to the BackendTLSPolicy that applies to it.
	tlsPolicies map[status.Key]*tlsPolicyCtx
	// tlsPolicyOf is every BackendTLSPolicy's resolution, applied or not.
	tlsPolicyOf map[*gwapiv1.BackendTLSPolicy]*tlsPolicyCtx
	// backendGateways records, per Backend key, the Gateways that route to it.
	backendGateways map[status.Key]map[status.Key]bool
	// tp indexes the TrafficPolicies by exact target.
	tp *policyIndex[*policyv1a1.TrafficPolicy]
	// ap indexes the AuthPolicies by exact target; apc holds each one's compiled blocks.
	ap  *policyIndex[*policyv1a1.AuthPolicy]
	apc map[*policyv1a1.AuthPolicy]*apCompiled
	// rules indexes the route rules policies may target (routeRuleIndex).
	rules *routeRules
	// telemetry are the Proxies' translated telemetry settings; integrationErrors say why a
	// CloudMonitoringIntegration could not become a sink.
	telemetry         map[status.Key]*proxyTelemetry
	integrationErrors map[status.Key]string
	// telemetryCopies are routes copied for a Gateway with other telemetry (telemetryRoutes).
	telemetryCopies map[routeCopyKey]*ir.Route
}

func (t *translator) index() {
	t.namespaces = map[string]*corev1.Namespace{}
	for _, ns := range t.set.Namespaces {
		t.namespaces[ns.Name] = ns
	}
	t.secrets = indexBy(t.set.Secrets)
	t.configMaps = indexBy(t.set.ConfigMaps)
	t.backends = indexBy(t.set.Backends)
	t.directResponses = indexBy(t.set.DirectResponses)
	t.routeFilters = indexBy(t.set.HTTPRouteFilters)
	t.functions = indexBy(t.set.EdgeFunctions)
	t.revisions = indexBy(t.set.EdgeFunctionRevisions)
	t.classes = map[string]bool{}
	t.gateways = map[status.Key]*gatewayCtx{}
	t.sockets = map[string]*ir.Listener{}
	t.hostClaims = map[string]status.Key{}
	t.limitsBy = map[string]status.Key{}
	t.listenerSets = map[status.Key]*listenerSetCtx{}
	t.certs = map[string]*ir.Certificate{}
	t.usedBackends = map[string]*ir.Backend{}
	t.order = map[*ir.Route]routeOrder{}
	t.backendGateways = map[status.Key]map[status.Key]bool{}
	t.integrationErrors = map[status.Key]string{}
	t.indexTLSPolicies()
}

type namespacedObj interface {
	GetNamespace() string
	GetName() string
}

func indexBy[T namespacedObj](list []T) map[status.Key]T {
	m := make(map[status.Key]T, len(list))
	for _, o := range list {
		m[status.KeyOf(o.GetNamespace(), o.GetName())] = o
	}
	return m
}

// scoped prefixes a name with Options.Scope.
func (t *translator) scoped(name string) string {
	if t.opts.Scope == "" {
		return name
	}
	return t.opts.Scope + "/" + name
}

// socket returns the IR listener for an address and port, creating it.
func (t *translator) socket(addr string, port int32, proto ir.Protocol) *ir.Listener {
	name := ir.SocketName(proto, addr, port)
	if l, ok := t.sockets[name]; ok {
		return l
	}
	l := &ir.Listener{Name: name, Address: addr, Port: port, Protocol: proto}
	t.sockets[name] = l
	return l
}

// finish orders everything, fills listener status counts and stamps the version.
func (t *translator) finish() {
	for _, g := range t.gatewayOrder {
		g.finish(t)
	}
	t.finishListenerSets()
	t.finishTLSPolicies()
	for _, l := range t.sockets {
		slices.SortStableFunc(l.VirtualHosts, compareVirtualHosts)
		slices.SortStableFunc(l.SNIRoutes, func(a, b *ir.SNIRoute) int { return hostname.Compare(a.Hostname, b.Hostname) })
		for _, vh := range l.VirtualHosts {
			slices.SortStableFunc(vh.Routes, t.compareRoutes)
		}
		if l.TLS != nil {
			slices.SortStableFunc(l.TLS.Certificates, func(a, b ir.SNICertificate) int {
				return cmp.Or(cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.Certificate, b.Certificate))
			})
			l.TLS.Certificates = slices.Compact(l.TLS.Certificates)
		}
		t.snap.Listeners = append(t.snap.Listeners, l)
	}
	slices.SortFunc(t.snap.Listeners, func(a, b *ir.Listener) int { return cmp.Compare(a.Name, b.Name) })
	for _, b := range t.usedBackends {
		t.snap.Backends = append(t.snap.Backends, b)
	}
	slices.SortFunc(t.snap.Backends, func(a, b *ir.Backend) int { return cmp.Compare(a.Name, b.Name) })
	for _, c := range t.certs {
		t.snap.Certificates = append(t.snap.Certificates, c)
	}
	slices.SortFunc(t.snap.Certificates, func(a, b *ir.Certificate) int { return cmp.Compare(a.Name, b.Name) })
	t.snap.SetVersion()
	if err := t.snap.Validate(); err != nil {
		// A translator bug: the snapshot must be valid by construction.
		panic(fmt.Sprintf("translate: produced an invalid snapshot: %v", err))
	}
}

// compareVirtualHosts orders virtual hosts most specific first (listener hostname, then route
// hostname), so a request finds its host's routes before the wildcard's.
func compareVirtualHosts(a, b *ir.VirtualHost) int {
	return hostname.ComparePairs(a.ListenerHostname, a.Hostname, b.ListenerHostname, b.Hostname)
}
