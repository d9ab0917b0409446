package translate

import (
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

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
