package translate

import (
	"fmt"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

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
