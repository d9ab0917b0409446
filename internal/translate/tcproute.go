package translate

import (
	"fmt"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

// translateTLSRoutes attaches every TLSRoute to the (passthrough) TLS listeners of its parents:
// each hostname the route and listener share sends connections with that server name to the
// route's backends (the oldest route keeps a hostname).
func (t *translator) translateTLSRoutes() {
	for _, tr := range byAge(t.set.TLSRoutes) {
		rc := newRouteCtx("TLSRoute", tr.ObjectMeta, tr.Spec.Hostnames, tr.Status.Parents)
		t.l4Route(rc, "tlsroute", ruleRefs(tr.Spec.Rules, func(r gwapiv1.TLSRouteRule) []gwapiv1.BackendRef { return r.BackendRefs }))
		rc.sni = true
		if parents := t.attachParents(rc, tr.Spec.ParentRefs); parents != nil {
			t.report.TLSRoutes[status.KeyOf(tr.Namespace, tr.Name)] = &gwapiv1.TLSRouteStatus{RouteStatus: gwapiv1.RouteStatus{Parents: parents}}
		}
	}
}

// translateUDPRoutes attaches every UDPRoute to the UDP listeners of its parents, as TCPRoutes
// to TCP listeners: one route per socket, its first rule's backendRefs by weight per session.
func (t *translator) translateUDPRoutes() {
	for _, ur := range byAge(t.set.UDPRoutes) {
		rc := newRouteCtx("UDPRoute", ur.ObjectMeta, nil, ur.Status.Parents)
		t.l4Route(rc, "udproute", ruleRefs(ur.Spec.Rules, func(r gwapiv1.UDPRouteRule) []gwapiv1.BackendRef { return r.BackendRefs }))
		if parents := t.attachParents(rc, ur.Spec.ParentRefs); parents != nil {
			t.report.UDPRoutes[status.KeyOf(ur.Namespace, ur.Name)] = &gwapiv1.UDPRouteStatus{RouteStatus: gwapiv1.RouteStatus{Parents: parents}}
		}
	}
}

// ruleRefs lists each rule's backendRefs.
func ruleRefs[R any](rules []R, refs func(R) []gwapiv1.BackendRef) [][]gwapiv1.BackendRef {
	out := make([][]gwapiv1.BackendRef, 0, len(rules))
	for _, r := range rules {
		out = append(out, refs(r))
	}
	return out
}

// l4Route builds a TCPRoute's or UDPRoute's IR route from its rules' backendRefs (the first rule).
func (t *translator) l4Route(rc *routeCtx, prefix string, rules [][]gwapiv1.BackendRef) {
	rc.l4 = &ir.L4Route{
		Name:   t.scoped(fmt.Sprintf("%s/%s/%s", prefix, rc.namespace, rc.name)),
		Origin: ir.Origin{Kind: rc.kind, Namespace: rc.namespace, Name: rc.name, Section: "rule/0"},
	}
	if len(rules) > 0 {
		refs := make([]gwapiv1.HTTPBackendRef, 0, len(rules[0]))
		for _, b := range rules[0] {
			refs = append(refs, gwapiv1.HTTPBackendRef{BackendRef: b})
		}
		rc.l4.Backends = t.backendRefs(rc, refs)
	}
	if len(rules) > 1 {
		rc.refError(string(gwapiv1.RouteReasonUnsupportedValue), "only the first of %d rules is used: an L4 listener cannot tell connections apart", len(rules))
	}
}

// translateTCPRoutes attaches every TCPRoute to the TCP listeners of its parents. A TCP listener
// carries one route (the oldest that attaches); its first rule's backendRefs share connections
// by weight. An unresolvable backendRef keeps its share, and those connections are closed.
func (t *translator) translateTCPRoutes() {
	for _, tr := range byAge(t.set.TCPRoutes) {
		rc := newRouteCtx("TCPRoute", tr.ObjectMeta, nil, tr.Status.Parents)
		t.l4Route(rc, "tcproute", ruleRefs(tr.Spec.Rules, func(r gwapiv1.TCPRouteRule) []gwapiv1.BackendRef { return r.BackendRefs }))
		if parents := t.attachParents(rc, tr.Spec.ParentRefs); parents != nil {
			t.report.TCPRoutes[status.KeyOf(tr.Namespace, tr.Name)] = &gwapiv1.TCPRouteStatus{RouteStatus: gwapiv1.RouteStatus{Parents: parents}}
		}
	}
}
