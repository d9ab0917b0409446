package translate

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	policyv1a1 "apoxy.dev/apoxy/api/policy/v1alpha1"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

// TrafficPolicy attachment (docs/policy.md, from the policy API design §2.2): for each
// (Gateway listener, route rule) the effective policy is merged per feature block from the
// policies on the rule, the route, the listener and the Gateway, most specific first, with
// Gateway Override policies winning the blocks they set, rate-limit rules merged by name,
// and the route rule's own timeouts and retry fields winning field by field.

// tpTarget is an exact policy target: kind, namespace, name and section (listener or rule
// name; "" for the whole object).
type tpTarget struct {
	kind, namespace, name, section string
}

// tpRuleInfo is what a route rule says itself (level 0) and its name.
type tpRuleInfo struct {
	name                                 string
	hasRequestTimeout, hasBackendTimeout bool
	retry                                *gwapiv1.HTTPRouteRetry
}

// trafficPolicies is the attachment index of one translation.
type trafficPolicies struct {
	byTarget map[tpTarget]*policyv1a1.TrafficPolicy
	// rules maps "Kind/namespace/name/rule/N" to the rule's name and own fields.
	rules map[string]tpRuleInfo
	// results are each policy's per-target outcome, for its status.
	results map[status.Key][]tpResult
	// affected names the accepted policies targeting each object directly, for the objects'
	// TrafficPolicyAffected condition (route keys have no section: a rule target counts
	// for its route).
	affected map[tpTarget][]string
	// outcomes are what each policy's blocks did on the routes under each of its ancestors,
	// for its Programmed condition.
	outcomes map[tpOutcomeKey]*tpOutcome
}

type tpResult struct {
	ref    gwapiv1.LocalPolicyTargetReferenceWithSectionName
	reason string // Accepted, Conflicted, TargetNotFound, Invalid
	msg    string
}

func policyKey(p *policyv1a1.TrafficPolicy) string { return p.Namespace + "/" + p.Name }

// indexTrafficPolicies assigns each exact target to its oldest policy and checks that every
// target exists.
func (t *translator) indexTrafficPolicies() {
	tp := &trafficPolicies{byTarget: map[tpTarget]*policyv1a1.TrafficPolicy{}, rules: map[string]tpRuleInfo{}, results: map[status.Key][]tpResult{},
		affected: map[tpTarget][]string{}, outcomes: map[tpOutcomeKey]*tpOutcome{}}
	t.tp = tp
	if len(t.set.TrafficPolicies) == 0 {
		return
	}
	routeRules := map[tpTarget][]string{} // route -> rule names
	for _, hr := range t.set.HTTPRoutes {
		k := tpTarget{"HTTPRoute", hr.Namespace, hr.Name, ""}
		for i, r := range hr.Spec.Rules {
			info := tpRuleInfo{retry: r.Retry}
			if r.Name != nil {
				info.name = string(*r.Name)
			}
			if r.Timeouts != nil {
				info.hasRequestTimeout, info.hasBackendTimeout = r.Timeouts.Request != nil, r.Timeouts.BackendRequest != nil
			}
			tp.rules[fmt.Sprintf("HTTPRoute/%s/%s/rule/%d", hr.Namespace, hr.Name, i)] = info
			routeRules[k] = append(routeRules[k], info.name)
		}
	}
	for _, gr := range t.set.GRPCRoutes {
		k := tpTarget{"GRPCRoute", gr.Namespace, gr.Name, ""}
		for i, r := range gr.Spec.Rules {
			info := tpRuleInfo{}
			if r.Name != nil {
				info.name = string(*r.Name)
			}
			tp.rules[fmt.Sprintf("GRPCRoute/%s/%s/rule/%d", gr.Namespace, gr.Name, i)] = info
			routeRules[k] = append(routeRules[k], info.name)
		}
	}
	policies := slices.Clone(t.set.TrafficPolicies)
	slices.SortStableFunc(policies, func(a, b *policyv1a1.TrafficPolicy) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(policyKey(a), policyKey(b))
	})
	for _, p := range policies {
		pk := status.KeyOf(p.Namespace, p.Name)
		for _, ref := range p.Spec.TargetRefs {
			tg := tpTarget{string(ref.Kind), p.Namespace, string(ref.Name), ptrString(ref.SectionName)}
			res := tpResult{ref: ref, reason: "Accepted", msg: "Policy accepted"}
			if ok, why := t.tpTargetExists(tg, routeRules); !ok {
				res.reason, res.msg = string(gwapiv1.PolicyReasonTargetNotFound), why
			} else if winner, taken := tp.byTarget[tg]; taken {
				res.reason, res.msg = string(gwapiv1.PolicyReasonConflicted), "conflicts with "+policyKey(winner)+" (older)"
			} else if msg := t.tpInvalid(p, tg); msg != "" {
				res.reason, res.msg = string(gwapiv1.PolicyReasonInvalid), msg
			} else {
				tp.byTarget[tg] = p
				tp.addAffected(tg, p)
			}
			tp.results[pk] = append(tp.results[pk], res)
		}
	}
}

// tpTargetExists checks a target: the object exists, and a sectionName names one of its
// listeners (Gateway) or rules (routes).
func (t *translator) tpTargetExists(tg tpTarget, routeRules map[tpTarget][]string) (bool, string) {
	obj := tpTarget{tg.kind, tg.namespace, tg.name, ""}
	switch tg.kind {
	case "Gateway":
		g := t.gateways[status.KeyOf(tg.namespace, tg.name)]
		if g == nil {
			return false, fmt.Sprintf("Gateway %s/%s not found", tg.namespace, tg.name)
		}
		if tg.section != "" && !slices.ContainsFunc(g.gw.Spec.Listeners, func(l gwapiv1.Listener) bool { return string(l.Name) == tg.section }) {
			return false, fmt.Sprintf("Gateway %s/%s has no listener %q", tg.namespace, tg.name, tg.section)
		}
	case "HTTPRoute", "GRPCRoute":
		names, ok := routeRules[obj]
		if !ok {
			return false, fmt.Sprintf("%s %s/%s not found", tg.kind, tg.namespace, tg.name)
		}
		if tg.section != "" && !slices.Contains(names, tg.section) {
			return false, fmt.Sprintf("%s %s/%s has no rule named %q", tg.kind, tg.namespace, tg.name, tg.section)
		}
	default:
		return false, fmt.Sprintf("kind %s cannot be a TrafficPolicy target", tg.kind)
	}
	return true, ""
}

// tpInvalid reports what makes a policy unusable for a target though it is well-formed: an
// abort status of the wrong protocol for the target.
func (t *translator) tpInvalid(p *policyv1a1.TrafficPolicy, tg tpTarget) string {
	if rl := p.Spec.RateLimit; rl != nil && !t.opts.GlobalRateLimitStore &&
		slices.ContainsFunc(rl.Rules, func(r policyv1a1.RateLimitRule) bool { return r.Scope == policyv1a1.ScopeGlobal }) {
		if msg := t.tpStoreMissing(tg); msg != "" {
			return msg
		}
	}
	if f := p.Spec.FaultInjection; f != nil && f.Abort != nil {
		if f.Abort.GRPCStatus != nil && tg.kind == "HTTPRoute" {
			return "faultInjection.abort.grpcStatus applies to GRPCRoutes; use httpStatus for HTTPRoute " + tg.name
		}
		if f.Abort.HTTPStatus != nil && tg.kind == "GRPCRoute" {
			return "faultInjection.abort.httpStatus applies to HTTPRoutes; use grpcStatus for GRPCRoute " + tg.name
		}
	}
	return ""
}

// tpStoreMissing says why a target's Gateways have no global rate-limit store ("" when
// every one has): the store is the one of the Proxy each Gateway names.
func (t *translator) tpStoreMissing(tg tpTarget) string {
	var gws []*gatewayCtx
	switch tg.kind {
	case "Gateway":
		gws = append(gws, t.gateways[status.KeyOf(tg.namespace, tg.name)])
	default:
		for _, pr := range t.routeParents(tg.kind, tg.namespace, tg.name) {
			if g := t.gateways[status.KeyOf(string(deref(pr.Namespace, gwapiv1.Namespace(tg.namespace))), string(pr.Name))]; g != nil {
				gws = append(gws, g)
			}
		}
	}
	var missing []string
	for _, g := range gws {
		if msg := g.storeMissing(); msg != "" {
			missing = append(missing, msg)
		}
	}
	if len(missing) == 0 || len(missing) < len(gws) {
		return "" // Invalid only on the ancestors without one (tpAncestorInvalid)
	}
	return "a Global rate-limit rule needs a store: " + strings.Join(missing, "; ") + " (or start the server with --redis)"
}

// storeMissing says why the Gateway has no global rate-limit store, "" when it has one.
func (g *gatewayCtx) storeMissing() string {
	switch {
	case g == nil:
		return ""
	case g.rateLimitStoreErr != "":
		return fmt.Sprintf("Gateway %s: %s", g.key, g.rateLimitStoreErr)
	case g.rateLimitStore == "":
		return fmt.Sprintf("Gateway %s names no Proxy with spec.rateLimit.redis", g.key)
	}
	return ""
}

// tpAncestorInvalid says why an accepted policy is Invalid under one ancestor Gateway: it has
// Global rate-limit rules and that Gateway has no store (its Proxy names none), while others
// do. Its routes under that Gateway serve without the Global rules.
func (t *translator) tpAncestorInvalid(p *policyv1a1.TrafficPolicy, ref gwapiv1.ParentReference) string {
	if t.opts.GlobalRateLimitStore || !hasGlobalRules(p) || deref(ref.Kind, "Gateway") != "Gateway" {
		return ""
	}
	g := t.gateways[status.KeyOf(string(deref(ref.Namespace, gwapiv1.Namespace(p.Namespace))), string(ref.Name))]
	if msg := g.storeMissing(); msg != "" {
		return "a Global rate-limit rule needs a store: " + msg
	}
	return ""
}

// tpAncestorStore names the store an ancestor Gateway counts the policy's Global rules in
// ("" the data plane's own); ok is false when the policy has none or there is no store.
func (t *translator) tpAncestorStore(p *policyv1a1.TrafficPolicy, ref gwapiv1.ParentReference) (string, bool) {
	if !hasGlobalRules(p) || deref(ref.Kind, "Gateway") != "Gateway" {
		return "", false
	}
	g := t.gateways[status.KeyOf(string(deref(ref.Namespace, gwapiv1.Namespace(p.Namespace))), string(ref.Name))]
	switch {
	case g != nil && g.rateLimitStore != "":
		return g.rateLimitStore, true
	case t.opts.GlobalRateLimitStore:
		return "", true
	}
	return "", false
}

func hasGlobalRules(p *policyv1a1.TrafficPolicy) bool {
	return p.Spec.RateLimit != nil && slices.ContainsFunc(p.Spec.RateLimit.Rules, func(r policyv1a1.RateLimitRule) bool { return r.Scope == policyv1a1.ScopeGlobal })
}

// routeParents are the parentRefs of an HTTPRoute or GRPCRoute.
func (t *translator) routeParents(kind, ns, name string) []gwapiv1.ParentReference {
	switch kind {
	case "HTTPRoute":
		for _, hr := range t.set.HTTPRoutes {
			if hr.Namespace == ns && hr.Name == name {
				return hr.Spec.ParentRefs
			}
		}
	case "GRPCRoute":
		for _, gr := range t.set.GRPCRoutes {
			if gr.Namespace == ns && gr.Name == name {
				return gr.Spec.ParentRefs
			}
		}
	}
	return nil
}

// tpLevels are the policies that apply to one route rule under one listener, most specific
// first: rule, route, listener, Gateway.
type tpLevels [4]*policyv1a1.TrafficPolicy

func (t *translator) tpLevelsFor(r *ir.Route, g *gatewayCtx, l *listenerCtx) (tpLevels, tpRuleInfo) {
	tp := t.tp
	info := tp.rules[r.Origin.Kind+"/"+r.Origin.Namespace+"/"+r.Origin.Name+"/"+r.Origin.Section]
	var lv tpLevels
	if info.name != "" {
		lv[0] = tp.byTarget[tpTarget{r.Origin.Kind, r.Origin.Namespace, r.Origin.Name, info.name}]
	}
	lv[1] = tp.byTarget[tpTarget{r.Origin.Kind, r.Origin.Namespace, r.Origin.Name, ""}]
	if l != nil && l.set == nil {
		lv[2] = tp.byTarget[tpTarget{"Gateway", g.gw.Namespace, g.gw.Name, string(l.spec.Name)}]
	}
	lv[3] = tp.byTarget[tpTarget{"Gateway", g.gw.Namespace, g.gw.Name, ""}]
	return lv, info
}

func overrides(p *policyv1a1.TrafficPolicy) bool {
	return p != nil && p.Spec.Strategy == policyv1a1.StrategyOverride
}

// pickBlock chooses a feature block as Rules B and E say (pickLevel). A chosen block that
// is disabled means the platform default (nil); the policy is returned either way.
func pickBlock[T any](lv tpLevels, get func(*policyv1a1.TrafficPolicySpec) *T, disabled func(*T) bool) (*T, *policyv1a1.TrafficPolicy) {
	i := pickLevel(lv, func(s *policyv1a1.TrafficPolicySpec) bool { return get(s) != nil })
	if i < 0 {
		return nil, nil
	}
	return live(get(&lv[i].Spec), disabled), lv[i]
}

// pickLevel returns the level whose policy's block wins, or -1 when no policy sets it: a
// Gateway's Override beats a listener's Override, which beats the most specific policy
// that sets the block.
func pickLevel(lv tpLevels, sets func(*policyv1a1.TrafficPolicySpec) bool) int {
	for _, i := range []int{3, 2} {
		if p := lv[i]; overrides(p) && sets(&p.Spec) {
			return i
		}
	}
	for i, p := range lv {
		if p != nil && sets(&p.Spec) {
			return i
		}
	}
	return -1
}

func live[T any](b *T, disabled func(*T) bool) *T {
	if disabled(b) {
		return nil
	}
	return b
}

// policyRoutes returns a route's IR routes as served through listener l of Gateway g, each
// carrying its effective TrafficPolicy (copies where a policy applies).
func (t *translator) policyRoutes(routes []*ir.Route, g *gatewayCtx, l *listenerCtx) []*ir.Route {
	if t.tp == nil || len(t.tp.byTarget) == 0 {
		return routes
	}
	var out []*ir.Route
	for i, r := range routes {
		lv, info := t.tpLevelsFor(r, g, l)
		if lv == (tpLevels{}) {
			if out != nil {
				out = append(out, r)
			}
			continue
		}
		if out == nil {
			out = append(make([]*ir.Route, 0, len(routes)), routes[:i]...)
		}
		c := *r
		ev := t.newTPEval(&c, lv, info, g, l)
		t.applyTrafficPolicy(&c, ev)
		if c.RateLimit != nil && (g.rateLimitStore != "" || !t.opts.GlobalRateLimitStore) && slices.ContainsFunc(c.RateLimit.Rules, func(rr ir.RateLimitRule) bool { return rr.Global }) {
			rl := *c.RateLimit
			if g.rateLimitStore != "" {
				// Global rules count in the Gateway's Proxy's store (before the process's).
				rl.Store = g.rateLimitStore
			} else {
				// No store under this Gateway (its policy is Invalid here): serve without them.
				rl.Rules = slices.DeleteFunc(slices.Clone(rl.Rules), func(rr ir.RateLimitRule) bool { return rr.Global })
			}
			c.RateLimit = &rl
			if len(rl.Rules) == 0 {
				c.RateLimit = nil
			}
		}
		ev.pruneRateLimit()
		ev.commit()
		t.order[&c] = t.order[r]
		out = append(out, &c)
	}
	if out == nil {
		return routes
	}
	return out
}

// applyTrafficPolicy sets a route's effective policy from its levels and records where each
// block came from (ev).
func (t *translator) applyTrafficPolicy(r *ir.Route, ev *tpEval) {
	ev.info = overrideOwnFields(ev.lv, ev.info)
	lv, info := ev.lv, ev.info
	if rl := t.effectiveRateLimit(r, lv, ev); rl != nil {
		r.RateLimit = rl
	}
	if f, _ := pickBlock(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.FaultInjection { return s.FaultInjection },
		func(b *policyv1a1.FaultInjection) bool { return b.Disabled }); f != nil {
		r.Fault = irFault(f)
	}
	to, _ := pickBlock(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.Timeouts { return s.Timeouts },
		func(b *policyv1a1.Timeouts) bool { return b.Disabled })
	if to != nil {
		// Rule D: the route rule's own timeouts win field by field.
		if d, ok := policyv1a1.ParseDuration(deref(to.Request, "")); ok && !info.hasRequestTimeout {
			r.Timeouts.Request = ir.Duration(d)
		}
		if d, ok := policyv1a1.ParseDuration(deref(to.BackendRequest, "")); ok && !info.hasBackendTimeout {
			r.Timeouts.BackendRequest = ir.Duration(d)
		}
		if d, ok := policyv1a1.ParseDuration(deref(to.Idle, "")); ok {
			r.Timeouts.StreamIdle = ir.Duration(d)
		}
		if d, ok := policyv1a1.ParseDuration(deref(to.MaxStreamDuration, "")); ok {
			r.Timeouts.MaxStreamDuration = ir.Duration(d)
		}
	}
	if rt, _ := pickBlock(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.Retry { return s.Retry },
		func(b *policyv1a1.Retry) bool { return b.Disabled }); rt != nil {
		r.Retry = irRetry(rt, info.retry)
	}
	lb, _ := pickBlock(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.LoadBalancer { return s.LoadBalancer },
		func(b *policyv1a1.LoadBalancer) bool { return b.Disabled })
	cb, _ := pickBlock(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.CircuitBreaker { return s.CircuitBreaker },
		func(b *policyv1a1.CircuitBreaker) bool { return b.Disabled })
	od, _ := pickBlock(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.OutlierDetection { return s.OutlierDetection },
		func(b *policyv1a1.OutlierDetection) bool { return b.Disabled })
	cluster := clusterPolicy{LoadBalancer: irLoadBalancer(lb), CircuitBreaker: irCircuitBreaker(cb), Outlier: irOutlier(od)}
	if to != nil {
		// The defaults are the data plane's own: only other values need a cluster of their own.
		if d, ok := policyv1a1.ParseDuration(deref(to.Connect, "")); ok && d != policyv1a1.DefaultConnectTimeout {
			cluster.ConnectTimeout = ir.Duration(d)
		}
		if d, ok := policyv1a1.ParseDuration(deref(to.ConnectionIdle, "")); ok && d != policyv1a1.DefaultConnectionIdleTimeout {
			cluster.ConnectionIdle = ir.Duration(d)
		}
	}
	if cluster != (clusterPolicy{}) {
		r.Backends = slices.Clone(r.Backends)
		for i := range r.Backends {
			if !r.Backends[i].Invalid {
				r.Backends[i].Backend = t.policyVariant(r.Backends[i].Backend, cluster)
			}
		}
	}
	ev.recordBlocks()
}

// overrideOwnFields applies Rule E to level 0: the fields an Override policy's winning
// timeouts or retry block sets beat the route rule's own (Rule D lets the rule's own fields win
// over every other policy). The rule's fields the Override leaves unset still win.
func overrideOwnFields(lv tpLevels, info tpRuleInfo) tpRuleInfo {
	if to, p := pickBlock(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.Timeouts { return s.Timeouts },
		func(b *policyv1a1.Timeouts) bool { return b.Disabled }); to != nil && overrides(p) {
		info.hasRequestTimeout = info.hasRequestTimeout && to.Request == nil
		info.hasBackendTimeout = info.hasBackendTimeout && to.BackendRequest == nil
	}
	if rt, p := pickBlock(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.Retry { return s.Retry },
		func(b *policyv1a1.Retry) bool { return b.Disabled }); rt != nil && overrides(p) && info.retry != nil {
		own := *info.retry
		if rt.Attempts != nil {
			own.Attempts = nil
		}
		if rt.RetryOn != nil && rt.RetryOn.StatusCodes != nil {
			own.Codes = nil
		}
		if rt.Backoff != nil && rt.Backoff.BaseInterval != nil {
			own.Backoff = nil
		}
		info.retry = &own
	}
	return info
}

// clusterPolicy is what a TrafficPolicy asks of a Backend's cluster.
type clusterPolicy struct {
	LoadBalancer   *ir.LoadBalancer     `json:"lb,omitempty"`
	CircuitBreaker *ir.CircuitBreaker   `json:"cb,omitempty"`
	Outlier        *ir.OutlierDetection `json:"od,omitempty"`
	ConnectTimeout ir.Duration          `json:"connect,omitempty"`
	ConnectionIdle ir.Duration          `json:"connIdle,omitempty"`
}

// policyVariant returns the IR backend carrying a cluster policy: route rules that reach one
// Backend under different effective policies get separate clusters (pools, breaker counters,
// ejections), and rules under the same policy share one.
func (t *translator) policyVariant(name string, cp clusterPolicy) string {
	ib, ok := t.usedBackends[name]
	if !ok {
		return name
	}
	b, _ := json.Marshal(cp)
	sum := sha256.Sum256(b)
	variant := name + "@policy/" + hex.EncodeToString(sum[:6])
	if _, ok := t.usedBackends[variant]; ok {
		return variant
	}
	vb := *ib
	vb.Name, vb.LoadBalancer, vb.CircuitBreaker, vb.Outlier = variant, cp.LoadBalancer, cp.CircuitBreaker, cp.Outlier
	vb.ConnectTimeout, vb.ConnectionIdle = cp.ConnectTimeout, cp.ConnectionIdle
	t.usedBackends[variant] = &vb
	return variant
}

// effectiveRateLimit merges rate-limit rules by name from the Gateway down to the rule
// (Rule C); the block's other settings come from the block Rule B picks. ev records each
// rule's source and the rules a policy lost.
func (t *translator) effectiveRateLimit(r *ir.Route, lv tpLevels, ev *tpEval) *ir.RateLimit {
	block, _ := pickBlock(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.RateLimit { return s.RateLimit },
		func(b *policyv1a1.RateLimit) bool { return b.Disabled })
	ev.rateLimitSettings()
	type named struct {
		rule     ir.RateLimitRule
		override bool
		level    int
	}
	var rules []named
	for i := len(lv) - 1; i >= 0; i-- {
		p := lv[i]
		if p == nil || p.Spec.RateLimit == nil {
			continue
		}
		rl := p.Spec.RateLimit
		keepOverrides := func(why string) {
			rules = slices.DeleteFunc(rules, func(n named) bool {
				if !n.override {
					ev.lose(lv[n.level], p, "rateLimit rule "+n.rule.Name+" "+why+" "+ev.source(i))
					ev.took(p)
				}
				return !n.override
			})
		}
		if rl.Disabled {
			keepOverrides("dropped (rateLimit disabled) by")
			continue
		}
		if rl.Inherit != nil && !*rl.Inherit {
			keepOverrides("dropped (rateLimit.inherit false) by")
		}
		for _, pr := range rl.Rules {
			n := named{rule: t.irRateLimitRule(p, &pr, r), override: overrides(p), level: i}
			if j := slices.IndexFunc(rules, func(x named) bool { return x.rule.Name == pr.Name }); j >= 0 {
				if rules[j].override {
					// Lower levels cannot replace an Override's rule.
					ev.lose(p, lv[rules[j].level], "rateLimit rule "+pr.Name+" superseded by "+ev.source(rules[j].level))
					continue
				}
				ev.lose(lv[rules[j].level], p, "rateLimit rule "+pr.Name+" superseded by "+ev.source(i))
				rules[j] = n
				continue
			}
			rules = append(rules, n)
		}
	}
	for _, n := range rules {
		ev.add("rateLimit.rules["+n.rule.Name+"]", n.level, false)
		ev.took(lv[n.level])
	}
	if len(rules) == 0 {
		return nil
	}
	out := &ir.RateLimit{Headers: "XRateLimit", StatusCode: 429}
	if block != nil {
		out.FailClosed = block.FailureMode == policyv1a1.FailClosed
		if block.ResponseHeaders != "" {
			out.Headers = string(block.ResponseHeaders)
		}
		if block.Response != nil && block.Response.StatusCode != nil {
			out.StatusCode = int(*block.Response.StatusCode)
		}
		for i := range block.Exempt {
			out.Exempt = append(out.Exempt, *irRequestMatch(&block.Exempt[i]))
		}
	}
	for _, n := range rules {
		out.Rules = append(out.Rules, n.rule)
	}
	return out
}

var rateLimitUnits = map[policyv1a1.RateLimitUnit]time.Duration{
	policyv1a1.UnitSecond: time.Second, policyv1a1.UnitMinute: time.Minute, policyv1a1.UnitHour: time.Hour, policyv1a1.UnitDay: 24 * time.Hour,
}

func (t *translator) irRateLimitRule(p *policyv1a1.TrafficPolicy, pr *policyv1a1.RateLimitRule, r *ir.Route) ir.RateLimitRule {
	out := ir.RateLimitRule{Name: pr.Name, Policy: policyKey(p), Global: pr.Scope == policyv1a1.ScopeGlobal, Shadow: pr.Shadow,
		SkipMissing: pr.MissingKey == policyv1a1.MissingKeySkip, Match: irRequestMatch(pr.Match)}
	// Counters are named by project, policy and rule (and route for PerRoute counters),
	// never by anything of one process, so every gateway process shares a Global rule's.
	out.Counter = t.scoped(p.Namespace + "/" + p.Name + "/" + pr.Name)
	if pr.Counters != policyv1a1.CountersShared {
		out.Counter += "/" + r.Origin.Kind + "/" + r.Origin.Namespace + "/" + r.Origin.Name
	}
	if pr.Limit != nil {
		if pr.Limit.Requests != nil {
			out.Requests = uint32(min(max(*pr.Limit.Requests, 0), int64(^uint32(0))))
		}
		out.Window = ir.Duration(rateLimitUnits[pr.Limit.Unit])
	}
	if pr.MaxTrackedKeys != nil {
		out.MaxTrackedKeys = int(*pr.MaxTrackedKeys)
	}
	if out.Match != nil && len(out.Match.JWTClaims) > 0 {
		out.AfterAuth = true
	}
	for _, k := range pr.CountBy {
		switch {
		case k.ClientIP != nil:
			out.CountBy = append(out.CountBy, ir.KeyPart{Kind: ir.KeyClientIP, IPv4PrefixLength: int(deref(k.ClientIP.IPv4PrefixLength, 32)), IPv6PrefixLength: int(deref(k.ClientIP.IPv6PrefixLength, 64))})
		case k.Header != nil:
			out.CountBy = append(out.CountBy, ir.KeyPart{Kind: ir.KeyHeader, Name: k.Header.Name})
		case k.QueryParam != nil:
			out.CountBy = append(out.CountBy, ir.KeyPart{Kind: ir.KeyQueryParam, Name: k.QueryParam.Name})
		case k.JWTClaim != nil:
			out.CountBy = append(out.CountBy, ir.KeyPart{Kind: ir.KeyJWTClaim, Name: k.JWTClaim.Name})
			out.AfterAuth = true
		case k.Method != nil:
			out.CountBy = append(out.CountBy, ir.KeyPart{Kind: ir.KeyMethod})
		case k.Path != nil:
			out.CountBy = append(out.CountBy, ir.KeyPart{Kind: ir.KeyPath})
		}
	}
	return out
}

func irRequestMatch(m *policyv1a1.RequestMatch) *ir.RequestMatch {
	if m == nil {
		return nil
	}
	out := &ir.RequestMatch{ClientCIDRs: m.ClientCIDRs}
	for _, meth := range m.Methods {
		out.Methods = append(out.Methods, string(meth))
	}
	if m.Path != nil {
		out.Path = &ir.PathMatch{Type: ir.PathMatchType(cmp.Or(string(m.Path.Type), string(ir.PathPrefix))), Value: m.Path.Value}
	}
	for _, h := range m.Headers {
		out.Headers = append(out.Headers, ir.ValueMatch{Name: h.Name, Type: ir.ValueMatchType(cmp.Or(string(h.Type), string(ir.ValueExact))), Value: h.Value, Invert: h.Invert})
	}
	for _, q := range m.QueryParams {
		out.QueryParams = append(out.QueryParams, ir.ValueMatch{Name: q.Name, Type: ir.ValueMatchType(cmp.Or(string(q.Type), string(ir.ValueExact))), Value: q.Value, Invert: q.Invert})
	}
	for _, c := range m.JWTClaims {
		out.JWTClaims = append(out.JWTClaims, ir.ClaimMatch{Name: c.Name, Values: c.Values})
	}
	return out
}

func percentOf(p *int32, f *gwapiv1.Fraction) float64 {
	switch {
	case p != nil:
		return float64(*p)
	case f != nil && deref(f.Denominator, 100) > 0:
		return 100 * float64(f.Numerator) / float64(deref(f.Denominator, 100))
	}
	return 100
}

// grpcCodes are the gRPC status names a fault abort may use.
var grpcCodes = map[string]int{"Cancelled": 1, "Unknown": 2, "InvalidArgument": 3, "DeadlineExceeded": 4, "NotFound": 5, "AlreadyExists": 6,
	"PermissionDenied": 7, "ResourceExhausted": 8, "FailedPrecondition": 9, "Aborted": 10, "OutOfRange": 11, "Unimplemented": 12,
	"Internal": 13, "Unavailable": 14, "DataLoss": 15, "Unauthenticated": 16}

func irFault(f *policyv1a1.FaultInjection) *ir.FaultInjection {
	out := &ir.FaultInjection{Match: irRequestMatch(f.Match)}
	if d := f.Delay; d != nil {
		if v, ok := policyv1a1.ParseDuration(d.FixedDelay); ok {
			out.Delay = ir.Duration(v)
		}
		out.DelayPercent = percentOf(d.Percent, d.Fraction)
	}
	if a := f.Abort; a != nil {
		out.AbortPercent = percentOf(a.Percent, a.Fraction)
		if a.HTTPStatus != nil {
			out.AbortStatus = int(*a.HTTPStatus)
		}
		if g := a.GRPCStatus; g != nil {
			if n, ok := grpcCodes[g.StrVal]; ok {
				out.AbortGRPC = n
			} else if g.IntVal > 0 {
				out.AbortGRPC = int(g.IntVal)
			} else if n, err := strconv.Atoi(g.StrVal); err == nil {
				out.AbortGRPC = n
			}
		}
	}
	return out
}

// irRetry converts a retry block, with the route rule's own retry fields winning field by
// field (Rule D: attempts, codes, backoff).
func irRetry(rt *policyv1a1.Retry, own *gwapiv1.HTTPRouteRetry) *ir.Retry {
	out := &ir.Retry{Attempts: int(deref(rt.Attempts, 2))}
	if on := rt.RetryOn; on != nil {
		for _, c := range on.Conditions {
			out.Conditions = append(out.Conditions, string(c))
		}
		for _, c := range on.StatusCodes {
			out.Codes = append(out.Codes, int(c))
		}
		for _, c := range on.GRPCCodes {
			out.GRPCCodes = append(out.GRPCCodes, grpcCodes[string(c)])
		}
	}
	if rt.Methods != nil {
		out.Methods = []string{} // an explicit empty list retries no method past a connect failure
		for _, m := range rt.Methods {
			out.Methods = append(out.Methods, string(m))
		}
	}
	if b := rt.Backoff; b != nil {
		if d, ok := policyv1a1.ParseDuration(deref(b.BaseInterval, "")); ok {
			out.Backoff = ir.Duration(d)
		}
		if d, ok := policyv1a1.ParseDuration(deref(b.MaxInterval, "")); ok {
			out.MaxBackoff = ir.Duration(d)
		}
	}
	if b := rt.Budget; b != nil {
		bud := &ir.RetryBudget{Percent: int(deref(b.Percent, 20)), Interval: ir.Duration(10 * time.Second), MinRetries: 10, MinInterval: ir.Duration(time.Second)}
		if d, ok := policyv1a1.ParseDuration(deref(b.Interval, "")); ok {
			bud.Interval = ir.Duration(d)
		}
		if m := b.MinRetryRate; m != nil {
			bud.MinRetries = int(deref(m.Count, 10))
			if d, ok := policyv1a1.ParseDuration(deref(m.Interval, "")); ok {
				bud.MinInterval = ir.Duration(d)
			}
		}
		out.Budget = bud
	}
	if own != nil {
		if own.Attempts != nil {
			out.Attempts = *own.Attempts
		}
		if len(own.Codes) > 0 {
			out.Codes = nil
			for _, c := range own.Codes {
				out.Codes = append(out.Codes, int(c))
			}
		}
		if d, ok := parseDuration(own.Backoff); ok {
			out.Backoff = ir.Duration(d)
		}
	}
	return out
}

func irLoadBalancer(lb *policyv1a1.LoadBalancer) *ir.LoadBalancer {
	if lb == nil {
		return nil
	}
	out := &ir.LoadBalancer{Type: string(cmp.Or(lb.Type, policyv1a1.LoadBalancerLeastRequest))}
	if lb.LeastRequest != nil {
		out.ChoiceCount = int(deref(lb.LeastRequest.ChoiceCount, 2))
	}
	if h := lb.Hash; h != nil {
		hs := &ir.HashSource{SourceIP: h.SourceIP != nil}
		if h.Header != nil {
			hs.Header = h.Header.Name
		}
		if h.QueryParam != nil {
			hs.QueryParam = h.QueryParam.Name
		}
		if c := h.Cookie; c != nil {
			hc := &ir.HashCookie{Name: c.Name, Path: c.Path, SameSite: string(c.SameSite), Secure: c.Secure}
			if d, ok := policyv1a1.ParseDuration(deref(c.TTL, "")); ok {
				hc.TTL = ir.Duration(d)
			}
			hs.Cookie = hc
		}
		out.Hash = hs
	}
	if rh := lb.RingHash; rh != nil {
		out.RingMin, out.RingMax = int(deref(rh.MinRingSize, 1024)), int(deref(rh.MaxRingSize, 8388608))
	}
	if m := lb.Maglev; m != nil {
		out.MaglevTable = int(deref(m.TableSize, 65537))
	}
	if s := lb.SlowStart; s != nil {
		if d, ok := policyv1a1.ParseDuration(s.Window); ok {
			out.SlowStart = ir.Duration(d)
		}
	}
	return out
}

func irCircuitBreaker(cb *policyv1a1.CircuitBreaker) *ir.CircuitBreaker {
	if cb == nil {
		return nil
	}
	return &ir.CircuitBreaker{MaxConnections: int(deref(cb.MaxConnections, 0)), MaxPendingRequests: int(deref(cb.MaxPendingRequests, 0)),
		MaxParallelRequests: int(deref(cb.MaxParallelRequests, 0)), MaxParallelRetries: int(deref(cb.MaxParallelRetries, 0)),
		MaxRequestsPerConnection: int(deref(cb.MaxRequestsPerConnection, 0))}
}

func irOutlier(od *policyv1a1.OutlierDetection) *ir.OutlierDetection {
	if od == nil {
		return nil
	}
	dur := func(d *gwapiv1.Duration, def time.Duration) ir.Duration {
		if v, ok := policyv1a1.ParseDuration(deref(d, "")); ok {
			return ir.Duration(v)
		}
		return ir.Duration(def)
	}
	return &ir.OutlierDetection{Consecutive5xx: int(deref(od.Consecutive5xx, 5)), ConsecutiveGatewayErrors: int(deref(od.ConsecutiveGatewayErrors, 0)),
		Interval: dur(od.Interval, 10*time.Second), BaseEjectionTime: dur(od.BaseEjectionTime, 30*time.Second),
		MaxEjectionTime: dur(od.MaxEjectionTime, 300*time.Second), MaxEjectionPercent: int(deref(od.MaxEjectionPercent, 50))}
}

// reportTrafficPolicies writes each policy's status: one ancestor per Gateway (or listener)
// it reaches, or per missing target, with Accepted and its reason, and Programmed where it
// is accepted there (tpProgrammed). A Gateway reached through several targets shows
// Accepted=False only when all of them failed.
func (t *translator) reportTrafficPolicies() {
	now := t.opts.Now
	for _, p := range t.set.TrafficPolicies {
		pk := status.KeyOf(p.Namespace, p.Name)
		type agg struct {
			ref             gwapiv1.ParentReference
			ok, failed      []string
			reason, failMsg string
		}
		var order []string
		ancestors := map[string]*agg{}
		add := func(ref gwapiv1.ParentReference, res tpResult) {
			k := fmt.Sprintf("%s/%s/%s/%s", ptrString(ref.Kind), ptrString(ref.Namespace), ref.Name, ptrString(ref.SectionName))
			a := ancestors[k]
			if a == nil {
				a = &agg{ref: ref}
				ancestors[k] = a
				order = append(order, k)
			}
			if res.reason == "Accepted" {
				a.ok = append(a.ok, string(res.ref.Name))
			} else {
				a.failed = append(a.failed, res.msg)
				if a.reason == "" {
					a.reason = res.reason
				}
			}
		}
		for _, res := range t.tp.results[pk] {
			for _, anc := range t.tpAncestors(p, res) {
				add(anc, res)
			}
		}
		st := &gwapiv1.PolicyStatus{}
		slices.Sort(order)
		for i, k := range order {
			if i == 16 {
				break
			}
			a := ancestors[k]
			cond := status.Condition(string(gwapiv1.PolicyConditionAccepted), true, string(gwapiv1.PolicyReasonAccepted), "Policy accepted", p.Generation, now)
			switch {
			case len(a.ok) == 0:
				cond = status.Condition(string(gwapiv1.PolicyConditionAccepted), false, a.reason, strings.Join(a.failed, "; "), p.Generation, now)
			case len(a.failed) > 0:
				cond.Message = "Policy accepted for " + strings.Join(a.ok, ", ") + "; not for: " + strings.Join(a.failed, "; ")
			}
			if msg := t.tpAncestorInvalid(p, a.ref); msg != "" && len(a.ok) > 0 {
				cond = status.Condition(string(gwapiv1.PolicyConditionAccepted), false, string(gwapiv1.PolicyReasonInvalid), msg, p.Generation, now)
			} else if store, ok := t.tpAncestorStore(p, a.ref); ok && len(a.ok) > 0 {
				if t.report.PolicyStores == nil {
					t.report.PolicyStores = map[status.Key]map[int]string{}
				}
				if t.report.PolicyStores[pk] == nil {
					t.report.PolicyStores[pk] = map[int]string{}
				}
				t.report.PolicyStores[pk][len(st.Ancestors)] = store
			}
			if i == 15 && len(order) > 16 {
				cond.Message += fmt.Sprintf(" and %d more ancestors not listed", len(order)-16)
			}
			as := gwapiv1.PolicyAncestorStatus{AncestorRef: a.ref, ControllerName: gwapiv1.GatewayController(t.opts.ControllerName)}
			status.Set(&as.Conditions, cond)
			if cond.Status == "True" {
				status.Set(&as.Conditions, t.tpProgrammed(p, a.ref, a.failed))
			}
			for _, old := range p.Status.Ancestors {
				if parentRefEqual(old.AncestorRef, a.ref) {
					status.KeepTransitionTimes(as.Conditions, old.Conditions)
					// Healthy comes from the data plane (the controller's store probe): kept
					// while the ancestor still counts in a store.
					if h := status.Find(old.Conditions, "Healthy"); h != nil && t.report.PolicyStores[pk] != nil {
						if _, ok := t.report.PolicyStores[pk][len(st.Ancestors)]; ok {
							status.Set(&as.Conditions, *h)
						}
					}
				}
			}
			st.Ancestors = append(st.Ancestors, as)
		}
		t.report.TrafficPolicies[pk] = st
	}
}

// tpAncestors are the Gateways (or listeners) a target result is reported under: the Gateway
// itself, the parent Gateways of a route, or the target itself when it does not exist.
func (t *translator) tpAncestors(p *policyv1a1.TrafficPolicy, res tpResult) []gwapiv1.ParentReference {
	gk, gw := gwapiv1.Kind("Gateway"), gwapiv1.Group(gatewayGroup)
	ns := gwapiv1.Namespace(p.Namespace)
	self := gwapiv1.ParentReference{Group: &gw, Kind: ptr(res.ref.Kind), Namespace: &ns, Name: res.ref.Name}
	if res.reason == string(gwapiv1.PolicyReasonTargetNotFound) {
		return []gwapiv1.ParentReference{self}
	}
	switch res.ref.Kind {
	case "Gateway":
		ref := gwapiv1.ParentReference{Group: &gw, Kind: &gk, Namespace: &ns, Name: res.ref.Name, SectionName: res.ref.SectionName}
		return []gwapiv1.ParentReference{ref}
	case "HTTPRoute", "GRPCRoute":
		var parents []gwapiv1.ParentReference
		var refs []gwapiv1.ParentReference
		for _, hr := range t.set.HTTPRoutes {
			if res.ref.Kind == "HTTPRoute" && hr.Namespace == p.Namespace && string(hr.Name) == string(res.ref.Name) {
				refs = hr.Spec.ParentRefs
			}
		}
		for _, gr := range t.set.GRPCRoutes {
			if res.ref.Kind == "GRPCRoute" && gr.Namespace == p.Namespace && string(gr.Name) == string(res.ref.Name) {
				refs = gr.Spec.ParentRefs
			}
		}
		for _, pr := range refs {
			if deref(pr.Kind, "Gateway") != "Gateway" {
				continue
			}
			pns := ns
			if pr.Namespace != nil {
				pns = *pr.Namespace
			}
			parents = append(parents, gwapiv1.ParentReference{Group: &gw, Kind: &gk, Namespace: &pns, Name: pr.Name})
		}
		if len(parents) == 0 {
			return []gwapiv1.ParentReference{self}
		}
		return parents
	}
	return []gwapiv1.ParentReference{self}
}
