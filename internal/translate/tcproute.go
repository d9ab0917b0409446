package translate

import (
	"fmt"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

// translateTCPRoutes attaches every TCPRoute to the TCP listeners of its parents. A TCP listener
// carries one route (the oldest that attaches); its first rule's backendRefs share connections
// by weight. An unresolvable backendRef keeps its share, and those connections are closed.
func (t *translator) translateTCPRoutes() {
	for _, tr := range byAge(t.set.TCPRoutes) {
		rc := newRouteCtx("TCPRoute", tr.ObjectMeta, nil, tr.Status.Parents)
		rc.l4 = &ir.L4Route{
			Name:   fmt.Sprintf("tcproute/%s/%s", tr.Namespace, tr.Name),
			Origin: ir.Origin{Kind: "TCPRoute", Namespace: tr.Namespace, Name: tr.Name, Section: "rule/0"},
		}
		if len(tr.Spec.Rules) > 0 {
			refs := make([]gwapiv1.HTTPBackendRef, 0, len(tr.Spec.Rules[0].BackendRefs))
			for _, b := range tr.Spec.Rules[0].BackendRefs {
				refs = append(refs, gwapiv1.HTTPBackendRef{BackendRef: b})
			}
			rc.l4.Backends = t.backendRefs(rc, refs)
		}
		if len(tr.Spec.Rules) > 1 {
			rc.refError(string(gwapiv1.RouteReasonUnsupportedValue), "only the first of %d rules is used: a TCP listener cannot tell connections apart", len(tr.Spec.Rules))
		}
		if parents := t.attachParents(rc, tr.Spec.ParentRefs); parents != nil {
			t.report.TCPRoutes[status.KeyOf(tr.Namespace, tr.Name)] = &gwapiv1.TCPRouteStatus{RouteStatus: gwapiv1.RouteStatus{Parents: parents}}
		}
	}
}
