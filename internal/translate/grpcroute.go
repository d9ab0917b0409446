package translate

import (
	"fmt"
	"regexp"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

// translateGRPCRoutes attaches every GRPCRoute to the HTTP and HTTPS listeners of its parents.
// A gRPC method is the HTTP/2 path /<service>/<method>, so its matches become path matches
// and it shares the listeners' virtual hosts with HTTPRoutes.
func (t *translator) translateGRPCRoutes() {
	for i, gr := range byAge(t.set.GRPCRoutes) {
		rc := newRouteCtx("GRPCRoute", gr.ObjectMeta, gr.Spec.Hostnames, gr.Status.Parents)
		t.buildGRPCRules(rc, gr, len(t.set.HTTPRoutes)+i)
		if parents := t.attachParents(rc, gr.Spec.ParentRefs); parents != nil {
			t.report.GRPCRoutes[status.KeyOf(gr.Namespace, gr.Name)] = &gwapiv1.GRPCRouteStatus{RouteStatus: gwapiv1.RouteStatus{Parents: parents}}
		}
	}
}

// buildGRPCRules turns the route's rules into IR routes, one per match. Filters and backendRefs
// are the HTTPRoute ones (GRPCRoute's filters are a subset); responses are never compressed
// (gRPC compresses its messages itself).
func (t *translator) buildGRPCRules(rc *routeCtx, gr *gwapiv1.GRPCRoute, rank int) {
	for ri, rule := range gr.Spec.Rules {
		filters, action := t.ruleFilters(rc, httpFilters(rule.Filters))
		filters = filters[:len(filters)-1] // no compression
		refs := make([]gwapiv1.HTTPBackendRef, 0, len(rule.BackendRefs))
		for _, b := range rule.BackendRefs {
			refs = append(refs, gwapiv1.HTTPBackendRef{BackendRef: b.BackendRef, Filters: httpFilters(b.Filters)})
		}
		backends := t.backendRefs(rc, refs)
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gwapiv1.GRPCRouteMatch{{}}
		}
		for mi, m := range matches {
			r := &ir.Route{
				Name:    t.scoped(fmt.Sprintf("grpcroute/%s/%s/rule/%d/match/%d", gr.Namespace, gr.Name, ri, mi)),
				Origin:  ir.Origin{Kind: "GRPCRoute", Namespace: gr.Namespace, Name: gr.Name, Section: fmt.Sprintf("rule/%d", ri)},
				Match:   grpcMatch(m),
				Filters: filters,
				// No default request timeout: a client stream's response head comes at its end.
				GRPC: true,
			}
			action.apply(r, backends) // GRPCRoute has no redirect filter
			rc.routes = append(rc.routes, r)
			t.order[r] = routeOrder{rank: rank, rule: ri, match: mi}
		}
	}
}

// httpFilters converts GRPCRoute filters to the HTTPRoute filters of the same meaning.
func httpFilters(in []gwapiv1.GRPCRouteFilter) []gwapiv1.HTTPRouteFilter {
	out := make([]gwapiv1.HTTPRouteFilter, 0, len(in))
	for _, f := range in {
		out = append(out, gwapiv1.HTTPRouteFilter{
			Type:                   gwapiv1.HTTPRouteFilterType(f.Type),
			RequestHeaderModifier:  f.RequestHeaderModifier,
			ResponseHeaderModifier: f.ResponseHeaderModifier,
			RequestMirror:          f.RequestMirror,
			ExtensionRef:           f.ExtensionRef,
		})
	}
	return out
}

// grpcMatch turns a service/method match into a path match on /<service>/<method>: both given
// (Exact) is an exact path, a service alone a prefix, a method alone or any RegularExpression
// a regular expression over the two path segments.
func grpcMatch(m gwapiv1.GRPCRouteMatch) ir.Match {
	out := ir.Match{PathType: ir.PathPrefix, Path: "/"}
	if mm := m.Method; mm != nil {
		service, method := ptrString(mm.Service), ptrString(mm.Method)
		regex := mm.Type != nil && *mm.Type == gwapiv1.GRPCMethodMatchRegularExpression
		switch {
		case !regex && service != "" && method != "":
			out.PathType, out.Path = ir.PathExact, "/"+service+"/"+method
		case !regex && service != "":
			out.Path = "/" + service + "/"
		case !regex && method != "":
			out.PathType, out.Path = ir.PathRegularExpression, "/[^/]+/"+regexp.QuoteMeta(method)
		case regex:
			out.PathType, out.Path = ir.PathRegularExpression, "/"+or(service, "[^/]+")+"/"+or(method, "[^/]+")
		}
	}
	for _, h := range m.Headers {
		typ := ir.MatchExact
		if h.Type != nil {
			typ = ir.StringMatchType(*h.Type)
		}
		out.Headers = append(out.Headers, ir.StringMatch{Name: string(h.Name), Type: typ, Value: h.Value})
	}
	return out
}
