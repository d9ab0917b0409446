package translate

import (
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/status"
)

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
