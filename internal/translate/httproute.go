package translate

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

// routeCtx collects one route's translation (HTTPRoute or GRPCRoute): its IR routes (shared by
// every listener it attaches to) and the ResolvedRefs outcome.
type routeCtx struct {
	kind, namespace, name string
	generation            int64
	hostnames             []gwapiv1.Hostname
	oldParents            []gwapiv1.RouteParentStatus
	// l4 is the route of a TCPRoute or UDPRoute (it takes a listener's socket whole), or of a
	// TLSRoute (sni: added per hostname).
	l4  *ir.L4Route
	sni bool
	// backends are the keys of the Backends the route's rules resolved.
	backends map[status.Key]bool
	routes   []*ir.Route
	refsOK   bool
	reason   string
	message  string
}

func (r *routeCtx) refError(reason, format string, args ...any) {
	if r.refsOK { // keep the first problem
		r.refsOK, r.reason, r.message = false, reason, fmt.Sprintf(format, args...)
	}
}

// httpRoutes attaches every HTTPRoute to the listeners of its parents and records status.
func (t *translator) translateHTTPRoutes() {
	for rank, hr := range byAge(t.set.HTTPRoutes) {
		rc := newRouteCtx("HTTPRoute", hr.ObjectMeta, hr.Spec.Hostnames, hr.Status.Parents)
		t.buildRules(rc, hr, rank)
		if parents := t.attachParents(rc, hr.Spec.ParentRefs); parents != nil {
			t.report.HTTPRoutes[status.KeyOf(hr.Namespace, hr.Name)] = &gwapiv1.HTTPRouteStatus{RouteStatus: gwapiv1.RouteStatus{Parents: parents}}
		}
	}
}

// byAge returns routes oldest first (then by namespace and name), the order Gateway API
// precedence falls back to.
func byAge[T metav1.Object](routes []T) []T {
	out := slices.Clone(routes)
	slices.SortStableFunc(out, func(a, b T) int {
		return cmp.Or(a.GetCreationTimestamp().Compare(b.GetCreationTimestamp().Time), cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	})
	return out
}

func newRouteCtx(kind string, meta metav1.ObjectMeta, hostnames []gwapiv1.Hostname, old []gwapiv1.RouteParentStatus) *routeCtx {
	return &routeCtx{kind: kind, namespace: meta.Namespace, name: meta.Name, generation: meta.Generation,
		hostnames: hostnames, oldParents: old, refsOK: true, backends: map[status.Key]bool{}}
}

// attachParents attaches the route to each of its parents and returns their statuses (with the
// parents other controllers wrote kept), or nil when none of the parents is ours.
func (t *translator) attachParents(rc *routeCtx, refs []gwapiv1.ParentReference) []gwapiv1.RouteParentStatus {
	var parents []gwapiv1.RouteParentStatus
	for _, ref := range refs {
		ps, ok := t.attach(rc, ref)
		if !ok {
			continue // not a parent of ours
		}
		parents = append(parents, ps)
	}
	if len(parents) == 0 {
		return nil
	}
	for _, p := range rc.oldParents {
		if string(p.ControllerName) != t.opts.ControllerName {
			parents = append(parents, p)
		}
	}
	return parents
}

// attach binds the route to the listeners parentRef selects and returns its parent status.
// ok is false when the parent is not one of our Gateways.
func (t *translator) attach(rc *routeCtx, ref gwapiv1.ParentReference) (gwapiv1.RouteParentStatus, bool) {
	group, kind := gatewayGroup, "Gateway"
	if ref.Group != nil {
		group = string(*ref.Group)
	}
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	ns := rc.namespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	if !sameGroup(group, gatewayGroup) {
		return gwapiv1.RouteParentStatus{}, false
	}
	// A Gateway parent offers its own listeners; a ListenerSet parent only the set's.
	var g *gatewayCtx
	var listeners []*listenerCtx
	switch kind {
	case "Gateway":
		if g = t.gateways[status.KeyOf(ns, string(ref.Name))]; g == nil {
			return gwapiv1.RouteParentStatus{}, false
		}
		listeners = g.listeners
	case "ListenerSet":
		lsc := t.listenerSets[status.KeyOf(ns, string(ref.Name))]
		if lsc == nil {
			return gwapiv1.RouteParentStatus{}, false
		}
		g, listeners = lsc.gw, lsc.listeners
	default:
		return gwapiv1.RouteParentStatus{}, false
	}
	gen, now := rc.generation, t.opts.Now
	ps := gwapiv1.RouteParentStatus{ParentRef: ref, ControllerName: gwapiv1.GatewayController(t.opts.ControllerName)}

	var candidates []*listenerCtx
	for _, l := range listeners {
		if ref.SectionName != nil && *ref.SectionName != l.spec.Name {
			continue
		}
		if ref.Port != nil && *ref.Port != l.spec.Port {
			continue
		}
		candidates = append(candidates, l)
	}
	accepted, reason, msg := false, string(gwapiv1.RouteReasonNoMatchingParent), "no listener matches the parentRef's sectionName and port"
	if len(candidates) > 0 {
		reason, msg = string(gwapiv1.RouteReasonNotAllowedByListeners), "no listener allows routes from this namespace and kind"
	}
	hostnameMiss := false
	for _, l := range candidates {
		if !l.acceptsRoutes() || !t.allowsRoute(l, rc.kind, rc.namespace) {
			continue
		}
		if rc.sni {
			hosts := intersectHostnames(l.hostname, rc.hostnames)
			if len(hosts) == 0 {
				hostnameMiss = true
				continue
			}
			for _, s := range l.sockets {
				for _, h := range hosts {
					if h == "*" {
						h = ""
					}
					if !slices.ContainsFunc(s.SNIRoutes, func(r *ir.SNIRoute) bool { return r.Hostname == h }) {
						s.SNIRoutes = append(s.SNIRoutes, &ir.SNIRoute{Hostname: h, Route: t.telemetryL4(rc.l4, g), Terminate: l.terminates()}) // the oldest route keeps a name
					}
				}
			}
			l.attached++
			accepted = true
			continue
		}
		if rc.l4 != nil {
			// A TCP socket carries one route: the oldest. Newer ones are still accepted and
			// counted in attachedRoutes (as upstream Gateway API requires), but get no traffic.
			for _, s := range l.sockets {
				if s.L4 == nil {
					s.L4 = t.telemetryL4(rc.l4, g)
				}
			}
			l.attached++
			accepted = true
			continue
		}
		hosts := intersectHostnames(l.hostname, rc.hostnames)
		if len(hosts) == 0 {
			hostnameMiss = true
			continue
		}
		l.attached++ // only routes the listener accepts count
		accepted = true
		routes := t.telemetryRoutes(t.policyRoutes(t.gatewayRoutes(rc, g), g, l), g)
		for _, s := range l.sockets {
			for _, h := range hosts {
				vh := l.virtualHost(s, h)
				vh.Routes = append(vh.Routes, routes...)
			}
		}
	}
	if !accepted && hostnameMiss {
		reason, msg = string(gwapiv1.RouteReasonNoMatchingListenerHostname), "no listener hostname intersects the route's hostnames"
	}
	if accepted {
		reason, msg = string(gwapiv1.RouteReasonAccepted), "Route is accepted"
		for b := range rc.backends {
			if t.backendGateways[b] == nil {
				t.backendGateways[b] = map[status.Key]bool{}
			}
			t.backendGateways[b][g.key] = true
		}
	}
	status.Set(&ps.Conditions, status.Condition(string(gwapiv1.RouteConditionAccepted), accepted, reason, msg, gen, now))
	status.Set(&ps.Conditions, status.Condition(string(gwapiv1.RouteConditionResolvedRefs), rc.refsOK,
		or(rc.reason, string(gwapiv1.RouteReasonResolvedRefs)), or(rc.message, "All references resolved"), gen, now))
	t.setPolicyAffected(&ps.Conditions, nil, rc.kind, rc.namespace, rc.name, "", gen)
	for _, old := range rc.oldParents {
		if string(old.ControllerName) == t.opts.ControllerName && parentRefEqual(old.ParentRef, ref) {
			status.KeepTransitionTimes(ps.Conditions, old.Conditions)
		}
	}
	return ps, true
}

func parentRefEqual(a, b gwapiv1.ParentReference) bool {
	return ptrString(a.Group) == ptrString(b.Group) && ptrString(a.Kind) == ptrString(b.Kind) &&
		ptrString(a.Namespace) == ptrString(b.Namespace) && a.Name == b.Name &&
		ptrString(a.SectionName) == ptrString(b.SectionName) && deref(a.Port, 0) == deref(b.Port, 0)
}

// buildRules turns the route's rules into IR routes, one per match. rank is the route's
// position by age (oldest first), the last precedence tie-breaker after namespace/name.
func (t *translator) buildRules(rc *routeCtx, hr *gwapiv1.HTTPRoute, rank int) {
	for ri, rule := range hr.Spec.Rules {
		filters, action := t.ruleFilters(rc, rule.Filters)
		backends := t.backendRefs(rc, rule.BackendRefs)
		timeouts := ir.Timeouts{Request: ir.Duration(t.opts.DefaultRequestTimeout)}
		if to := rule.Timeouts; to != nil {
			if d, ok := parseDuration(to.Request); ok {
				timeouts.Request = ir.Duration(d) // 0 disables the timeout, as Gateway API says
			}
			if d, ok := parseDuration(to.BackendRequest); ok {
				timeouts.BackendRequest = ir.Duration(d)
			}
		}
		var retry *ir.Retry
		if r := rule.Retry; r != nil {
			retry = &ir.Retry{Attempts: deref(r.Attempts, 1)}
			for _, c := range r.Codes {
				retry.Codes = append(retry.Codes, int(c))
			}
			if d, ok := parseDuration(r.Backoff); ok {
				retry.Backoff = ir.Duration(d)
			}
		}
		matches := rule.Matches
		if len(matches) == 0 {
			prefix := gwapiv1.PathMatchPathPrefix
			matches = []gwapiv1.HTTPRouteMatch{{Path: &gwapiv1.HTTPPathMatch{Type: &prefix, Value: ptr("/")}}}
		}
		for mi, m := range matches {
			r := &ir.Route{
				Name:     t.scoped(fmt.Sprintf("httproute/%s/%s/rule/%d/match/%d", hr.Namespace, hr.Name, ri, mi)),
				Origin:   ir.Origin{Kind: "HTTPRoute", Namespace: hr.Namespace, Name: hr.Name, Section: fmt.Sprintf("rule/%d", ri)},
				Match:    irMatch(m),
				Filters:  filters,
				Timeouts: timeouts,
				Retry:    retry,
			}
			action.apply(r, backends)
			rc.routes = append(rc.routes, r)
			t.order[r] = routeOrder{rank: rank, rule: ri, match: mi}
		}
	}
}

// ruleAction is what a rule's filters decided to answer with, if anything.
type ruleAction struct {
	redirect *ir.Redirect
	direct   *ir.DirectResponse
}

// apply gives a route its one action: the filters' answer, else the backends, else 500 (no
// backendRefs and nothing that answers, as Gateway API says).
func (act ruleAction) apply(r *ir.Route, backends []ir.WeightedBackend) {
	switch {
	case act.redirect != nil:
		r.Redirect = act.redirect
	case act.direct != nil:
		r.DirectResponse = act.direct
	case len(backends) > 0:
		r.Backends = backends
	default:
		r.DirectResponse = &ir.DirectResponse{StatusCode: http.StatusInternalServerError}
	}
}

// ruleFilters translates a rule's filters in order, with the rule's action (a redirect or a
// direct response) taken out of the list, and compression (on by default, tuned by an
// HTTPRouteFilter) last.
func (t *translator) ruleFilters(rc *routeCtx, in []gwapiv1.HTTPRouteFilter) ([]ir.Filter, ruleAction) {
	var out []ir.Filter
	var act ruleAction
	compression := &ir.Compression{Algorithms: []string{"zstd", "br", "gzip"}, MinContentLength: extv1a2.DefaultMinContentLength}
	for _, f := range in {
		switch f.Type {
		case gwapiv1.HTTPRouteFilterRequestHeaderModifier:
			out = append(out, ir.Filter{Type: ir.FilterRequestHeaders, RequestHeaders: headerModifier(f.RequestHeaderModifier)})
		case gwapiv1.HTTPRouteFilterResponseHeaderModifier:
			out = append(out, ir.Filter{Type: ir.FilterResponseHeaders, ResponseHeaders: headerModifier(f.ResponseHeaderModifier)})
		case gwapiv1.HTTPRouteFilterURLRewrite:
			if f.URLRewrite != nil {
				out = append(out, ir.Filter{Type: ir.FilterURLRewrite, URLRewrite: &ir.URLRewrite{Hostname: ptrString(f.URLRewrite.Hostname), Path: pathModifier(f.URLRewrite.Path)}})
			}
		case gwapiv1.HTTPRouteFilterRequestRedirect:
			if rr := f.RequestRedirect; rr != nil {
				act.redirect = &ir.Redirect{Scheme: ptrString(rr.Scheme), Hostname: ptrString(rr.Hostname), Path: pathModifier(rr.Path), StatusCode: deref(rr.StatusCode, http.StatusFound)}
				if rr.Port != nil {
					act.redirect.Port = int32(*rr.Port)
				}
			}
		case gwapiv1.HTTPRouteFilterRequestMirror:
			if m := f.RequestMirror; m != nil {
				if b, port, ok := t.resolveBackend(rc, m.BackendRef); ok {
					pct := 100.0
					if m.Percent != nil {
						pct = float64(*m.Percent)
					} else if fr := m.Fraction; fr != nil && deref(fr.Denominator, 100) > 0 {
						pct = 100 * float64(fr.Numerator) / float64(deref(fr.Denominator, 100))
					}
					out = append(out, ir.Filter{Type: ir.FilterRequestMirror, Mirror: &ir.Mirror{Backend: b.Name, Port: port, Percent: pct}})
				}
			}
		case gwapiv1.HTTPRouteFilterCORS:
			if c := f.CORS; c != nil {
				cors := &ir.CORS{MaxAge: ir.Duration(time.Duration(c.MaxAge) * time.Second), AllowCredentials: deref(c.AllowCredentials, false)}
				for _, o := range c.AllowOrigins {
					cors.AllowOrigins = append(cors.AllowOrigins, string(o))
				}
				for _, m := range c.AllowMethods {
					cors.AllowMethods = append(cors.AllowMethods, string(m))
				}
				for _, h := range c.AllowHeaders {
					cors.AllowHeaders = append(cors.AllowHeaders, string(h))
				}
				for _, h := range c.ExposeHeaders {
					cors.ExposeHeaders = append(cors.ExposeHeaders, string(h))
				}
				out = append(out, ir.Filter{Type: ir.FilterCORS, CORS: cors})
			}
		case gwapiv1.HTTPRouteFilterExtensionRef:
			if f.ExtensionRef == nil {
				continue
			}
			switch x := t.extensionRef(rc, f.ExtensionRef); {
			case x.direct != nil:
				act.direct = x.direct
			case x.compression != nil:
				compression = x.compression
			case x.function != nil:
				out = append(out, ir.Filter{Type: ir.FilterEdgeFunction, Function: x.function})
			}
		default:
			rc.refError(string(gwapiv1.RouteReasonIncompatibleFilters), "filter type %s is not supported", f.Type)
			act.direct = &ir.DirectResponse{StatusCode: http.StatusInternalServerError}
		}
	}
	out = append(out, ir.Filter{Type: ir.FilterCompression, Compression: compression})
	return out, act
}

// extRef is what an ExtensionRef filter resolved to (at most one field set).
type extRef struct {
	compression *ir.Compression
	direct      *ir.DirectResponse
	function    *ir.Function
}

// extensionRef resolves an ExtensionRef filter: a DirectResponse answers, an HTTPRouteFilter
// replaces the default compression, an EdgeFunction (mode filter) runs its live revision. An
// unresolvable reference makes the rule answer 500, as Gateway API requires for filters that
// cannot be applied.
func (t *translator) extensionRef(rc *routeCtx, ref *gwapiv1.LocalObjectReference) extRef {
	group := string(ref.Group)
	if group != "" && group != extensionsGroup {
		rc.refError(string(gwapiv1.RouteReasonInvalidKind), "extensionRef group %q is not supported; use %s", group, extensionsGroup)
		return extRef{direct: &ir.DirectResponse{StatusCode: http.StatusInternalServerError}}
	}
	key := status.KeyOf(rc.namespace, string(ref.Name))
	switch ref.Kind {
	case "DirectResponse":
		d, ok := t.directResponses[key]
		if !ok {
			rc.refError(string(gwapiv1.RouteReasonBackendNotFound), "DirectResponse %s not found", key)
			return extRef{direct: &ir.DirectResponse{StatusCode: http.StatusInternalServerError}}
		}
		out := &ir.DirectResponse{StatusCode: int(d.Spec.StatusCode), ContentType: d.Spec.ContentType}
		if out.StatusCode == 0 {
			out.StatusCode = http.StatusOK
		}
		for _, h := range d.Spec.Headers {
			out.Headers = append(out.Headers, ir.HeaderPair{Name: h.Name, Value: h.Value})
		}
		if d.Spec.Body != nil && d.Spec.Body.Inline != nil {
			out.Body = *d.Spec.Body.Inline
		}
		return extRef{direct: out}
	case "HTTPRouteFilter":
		f, ok := t.routeFilters[key]
		if !ok {
			rc.refError(string(gwapiv1.RouteReasonBackendNotFound), "HTTPRouteFilter %s not found", key)
			return extRef{direct: &ir.DirectResponse{StatusCode: http.StatusInternalServerError}}
		}
		c := f.Spec.Compressor
		if c == nil {
			return extRef{}
		}
		out := &ir.Compression{Disabled: deref(c.Disabled, false), MinContentLength: int(deref(c.MinContentLength, extv1a2.DefaultMinContentLength)), ContentTypes: c.ContentType}
		if !out.Disabled {
			for _, a := range c.Algorithms {
				out.Algorithms = append(out.Algorithms, map[extv1a2.CompressionAlgorithm]string{extv1a2.CompressionBrotli: "br", extv1a2.CompressionGzip: "gzip", extv1a2.CompressionZstd: "zstd"}[a])
			}
			if len(out.Algorithms) == 0 {
				out.Algorithms = []string{"zstd", "br", "gzip"}
			}
		} else {
			out.MinContentLength = 0
		}
		return extRef{compression: out}
	case "EdgeFunction":
		f, d := t.edgeFunction(rc, string(ref.Name), extv1a2.EdgeFunctionModeFilter)
		return extRef{function: f, direct: d}
	}
	rc.refError(string(gwapiv1.RouteReasonInvalidKind), "extensionRef kind %q is not supported; use DirectResponse, HTTPRouteFilter or EdgeFunction", ref.Kind)
	return extRef{direct: &ir.DirectResponse{StatusCode: http.StatusInternalServerError}}
}

// backendRefs resolves a rule's backendRefs. An unresolvable one stays in the list as Invalid
// so its share of traffic gets 500, as Gateway API requires.
func (t *translator) backendRefs(rc *routeCtx, refs []gwapiv1.HTTPBackendRef) []ir.WeightedBackend {
	var out []ir.WeightedBackend
	for _, ref := range refs {
		wb := ir.WeightedBackend{Weight: deref(ref.Weight, 1)}
		if isEdgeFunctionRef(ref.BackendObjectReference) {
			// A function in backend mode answers for this backendRef's share: its filters run,
			// then the function, which ends the chain.
			wb.Filters = t.backendFilters(rc, ref.Filters)
			f, d := t.edgeFunction(rc, string(ref.Name), extv1a2.EdgeFunctionModeBackend)
			if ref.Namespace != nil && string(*ref.Namespace) != rc.namespace {
				rc.refError(string(gwapiv1.RouteReasonRefNotPermitted), "EdgeFunction %s/%s: a route runs only functions of its own namespace", *ref.Namespace, ref.Name)
				f, d = nil, &ir.DirectResponse{StatusCode: http.StatusInternalServerError}
			}
			if f != nil {
				wb.Filters = append(wb.Filters, ir.Filter{Type: ir.FilterEdgeFunction, Function: f})
			} else {
				wb.Filters = append(wb.Filters, ir.Filter{Type: ir.FilterDirectResponse, DirectResponse: d})
			}
			out = append(out, wb)
			continue
		}
		if b, port, ok := t.resolveBackend(rc, ref.BackendObjectReference); ok {
			wb.Backend, wb.Port = b.Name, port
		} else {
			wb.Invalid = true
		}
		wb.Filters = t.backendFilters(rc, ref.Filters)
		out = append(out, wb)
	}
	return out
}

// backendFilters translates a backendRef's own filters, which run only for requests sent to
// that backend. Every kind Gateway API allows there works, except two that describe the rule
// rather than a backend: RequestRedirect (a redirect answers instead of any backend) and CORS
// (a preflight must not depend on which backend a weighted pick chose). Those are refused
// with ResolvedRefs=False/IncompatibleFilters, and the backend's share of requests answers
// 500, as Gateway API requires for a filter that cannot be applied: nothing is accepted and
// then ignored. An ExtensionRef to a DirectResponse answers for that backend; one to an
// HTTPRouteFilter tunes compression for it.
func (t *translator) backendFilters(rc *routeCtx, in []gwapiv1.HTTPRouteFilter) []ir.Filter {
	if len(in) == 0 {
		return nil
	}
	var out []ir.Filter
	for _, f := range in {
		switch f.Type {
		case gwapiv1.HTTPRouteFilterRequestRedirect, gwapiv1.HTTPRouteFilterCORS:
			rc.refError(string(gwapiv1.RouteReasonIncompatibleFilters), "filter type %s is not supported on a backendRef (it applies to the whole rule); move it to the rule's filters", f.Type)
			return []ir.Filter{{Type: ir.FilterDirectResponse, DirectResponse: &ir.DirectResponse{StatusCode: http.StatusInternalServerError}}}
		case gwapiv1.HTTPRouteFilterExtensionRef:
			if f.ExtensionRef == nil {
				continue
			}
			switch x := t.extensionRef(rc, f.ExtensionRef); {
			case x.direct != nil:
				out = append(out, ir.Filter{Type: ir.FilterDirectResponse, DirectResponse: x.direct})
			case x.compression != nil:
				out = append(out, ir.Filter{Type: ir.FilterCompression, Compression: x.compression})
			case x.function != nil:
				out = append(out, ir.Filter{Type: ir.FilterEdgeFunction, Function: x.function})
			}
		default:
			filters, act := t.ruleFilters(rc, []gwapiv1.HTTPRouteFilter{f})
			out = append(out, filters[:len(filters)-1]...) // without the rule's default compression
			if act.direct != nil {                         // a filter that cannot be applied
				out = append(out, ir.Filter{Type: ir.FilterDirectResponse, DirectResponse: act.direct})
			}
		}
	}
	return out
}

// resolveBackend resolves a reference to a core.apoxy.dev Backend ("Backend" with no group, as
// in the docs, means ours too).
func (t *translator) resolveBackend(rc *routeCtx, ref gwapiv1.BackendObjectReference) (*ir.Backend, int32, bool) {
	group, kind := ptrString(ref.Group), "Service"
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	if kind != "Backend" || (group != "" && group != coreApoxyGroup) {
		rc.refError(string(gwapiv1.RouteReasonInvalidKind), "backendRef %s/%s %q: only kind Backend (group %s) is supported", or(group, "core"), kind, ref.Name, coreApoxyGroup)
		return nil, 0, false
	}
	ns := rc.namespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	if !t.refGrantAllows(gatewayGroup, rc.kind, rc.namespace, coreApoxyGroup, "Backend", ns, string(ref.Name)) {
		rc.refError(string(gwapiv1.RouteReasonRefNotPermitted), "Backend %s/%s is in another namespace and no ReferenceGrant allows it", ns, ref.Name)
		return nil, 0, false
	}
	b, ok := t.backends[status.KeyOf(ns, string(ref.Name))]
	if !ok {
		rc.refError(string(gwapiv1.RouteReasonBackendNotFound), "Backend %s/%s not found", ns, ref.Name)
		return nil, 0, false
	}
	key := status.KeyOf(ns, string(ref.Name))
	rc.backends[key] = true
	if t.tlsPolicyBlocks(key) {
		return nil, 0, false // its BackendTLSPolicy's status says why
	}
	ib := t.irBackend(b)
	port := defaultPort(ib.Protocol)
	if ref.Port != nil {
		port = int32(*ref.Port)
	}
	return ib, port, true
}

func irMatch(m gwapiv1.HTTPRouteMatch) ir.Match {
	out := ir.Match{PathType: ir.PathPrefix, Path: "/"}
	if p := m.Path; p != nil {
		if p.Type != nil {
			out.PathType = ir.PathMatchType(*p.Type)
		}
		if p.Value != nil {
			out.Path = *p.Value
		}
	}
	for _, h := range m.Headers {
		typ := ir.MatchExact
		if h.Type != nil {
			typ = ir.StringMatchType(*h.Type)
		}
		out.Headers = append(out.Headers, ir.StringMatch{Name: string(h.Name), Type: typ, Value: h.Value})
	}
	for _, q := range m.QueryParams {
		typ := ir.MatchExact
		if q.Type != nil {
			typ = ir.StringMatchType(*q.Type)
		}
		out.QueryParams = append(out.QueryParams, ir.StringMatch{Name: string(q.Name), Type: typ, Value: q.Value})
	}
	if m.Method != nil {
		out.Method = string(*m.Method)
	}
	return out
}

func headerModifier(f *gwapiv1.HTTPHeaderFilter) *ir.HeaderModifier {
	if f == nil {
		return &ir.HeaderModifier{}
	}
	out := &ir.HeaderModifier{Remove: f.Remove}
	for _, h := range f.Set {
		out.Set = append(out.Set, ir.HeaderPair{Name: string(h.Name), Value: h.Value})
	}
	for _, h := range f.Add {
		out.Add = append(out.Add, ir.HeaderPair{Name: string(h.Name), Value: h.Value})
	}
	return out
}

func pathModifier(p *gwapiv1.HTTPPathModifier) *ir.PathRewrite {
	if p == nil {
		return nil
	}
	switch p.Type {
	case gwapiv1.FullPathHTTPPathModifier:
		return &ir.PathRewrite{FullPath: ptr(deref(p.ReplaceFullPath, "/"))}
	case gwapiv1.PrefixMatchHTTPPathModifier:
		return &ir.PathRewrite{PrefixReplace: ptr(deref(p.ReplacePrefixMatch, "/"))}
	}
	return nil
}

func parseDuration(d *gwapiv1.Duration) (time.Duration, bool) {
	if d == nil {
		return 0, false
	}
	v, err := time.ParseDuration(string(*d))
	return v, err == nil
}

func ptr[T any](v T) *T { return &v }

// routeOrder holds the tie-breakers of route precedence beyond the match itself: the route's
// age rank (oldest first, then namespace/name), rule index and match index.
type routeOrder struct {
	rank, rule, match int
}

var pathTypeRank = map[ir.PathMatchType]int{ir.PathExact: 0, ir.PathRegularExpression: 1, ir.PathPrefix: 2}

// compareRoutes is Gateway API HTTPRoute precedence, after the gateway's own intercept routes
// (OIDC callback and logout): Exact paths, then (implementation
// specific) regular expressions, then prefixes, longer first; then a method match; then more
// header matches; then more query matches; then the older route, namespace/name, rule order
// and match order.
func (t *translator) compareRoutes(a, b *ir.Route) int {
	am, bm := a.Match, b.Match
	ao, bo := t.order[a], t.order[b]
	return cmp.Or(
		cmp.Compare(boolRank(!a.Intercept), boolRank(!b.Intercept)),
		cmp.Compare(pathTypeRank[am.PathType], pathTypeRank[bm.PathType]),
		cmp.Compare(len(bm.Path), len(am.Path)),
		cmp.Compare(boolRank(am.Method == ""), boolRank(bm.Method == "")),
		cmp.Compare(len(bm.Headers), len(am.Headers)),
		cmp.Compare(len(bm.QueryParams), len(am.QueryParams)),
		cmp.Compare(ao.rank, bo.rank),
		cmp.Compare(ao.rule, bo.rule),
		cmp.Compare(ao.match, bo.match),
	)
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}
