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

// tpLevels are the TrafficPolicies that apply to one route rule under one listener.
type tpLevels = policyLevels[*policyv1a1.TrafficPolicy]

// tpEval is the evaluation of TrafficPolicies for one route rule (policyeval.go) with the
// kind's own records: rate-limit rules, the route rule's own timeouts and retry.
type tpEval struct {
	*policyEval[*policyv1a1.TrafficPolicy]
}

// indexTrafficPolicies assigns each exact target to its oldest TrafficPolicy.
func (t *translator) indexTrafficPolicies() {
	t.tp = indexPolicies(t, "TrafficPolicy", t.set.TrafficPolicies, t.tpInvalid)
}

// pickTP is pickBlock for a TrafficPolicy block read from the spec.
func pickTP[T any](lv tpLevels, get func(*policyv1a1.TrafficPolicySpec) *T, disabled func(*T) bool) (*T, *policyv1a1.TrafficPolicy) {
	return pickBlock(lv, func(p *policyv1a1.TrafficPolicy) *T { return get(&p.Spec) }, disabled)
}

// tpInvalid reports what makes a policy unusable for a target though it is well-formed: an
// abort status of the wrong protocol for the target.
func (t *translator) tpInvalid(p *policyv1a1.TrafficPolicy, tg policyTarget) string {
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
func (t *translator) tpStoreMissing(tg policyTarget) string {
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

// trafficPolicyRoute applies the TrafficPolicies of levels lv to c, a copy of an IR route
// served through listener l of Gateway g.
func (t *translator) trafficPolicyRoute(c *ir.Route, lv tpLevels, info ruleInfo, g *gatewayCtx, l *listenerCtx) {
	ev := &tpEval{newPolicyEval(t, t.tp, c, lv, info, g, l)}
	t.applyTrafficPolicy(c, ev)
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
	ev.claimsWithoutIdentity()
	ev.commit()
}

// claimsWithoutIdentity reports rate-limit rules that match or count by JWT claims on a route
// where no AuthPolicy verifies a token (design §5 case 31): such a rule's requests all lack the
// claim, so they share one bucket (or are skipped with missingKey: Skip); the policy says so
// (PartiallyProgrammed).
func (ev *tpEval) claimsWithoutIdentity() {
	rl := ev.r.RateLimit
	if rl == nil || ev.r.Auth != nil && (ev.r.Auth.JWT != nil || ev.r.Auth.OIDC != nil) {
		return
	}
	for _, rr := range rl.Rules {
		if !rr.AfterAuth {
			continue
		}
		for _, p := range ev.lv {
			if p != nil && policyKey(p) == rr.Policy {
				ev.lose(p, nil, "rateLimit rule "+rr.Name+" keys or matches on JWT claims, but no AuthPolicy with jwt or oidc applies to "+
					ev.ruleName()+": its requests have no verified claims and share one bucket")
				break
			}
		}
	}
}

// applyTrafficPolicy sets a route's effective policy from its levels and records where each
// block came from (ev).
func (t *translator) applyTrafficPolicy(r *ir.Route, ev *tpEval) {
	ev.info = overrideOwnFields(ev.lv, ev.info)
	lv, info := ev.lv, ev.info
	if rl := t.effectiveRateLimit(r, lv, ev); rl != nil {
		r.RateLimit = rl
	}
	if f, _ := pickTP(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.FaultInjection { return s.FaultInjection },
		func(b *policyv1a1.FaultInjection) bool { return b.Disabled }); f != nil {
		r.Fault = irFault(f)
	}
	to, _ := pickTP(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.Timeouts { return s.Timeouts },
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
	if rt, _ := pickTP(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.Retry { return s.Retry },
		func(b *policyv1a1.Retry) bool { return b.Disabled }); rt != nil {
		r.Retry = irRetry(rt, info.retry)
	}
	lb, _ := pickTP(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.LoadBalancer { return s.LoadBalancer },
		func(b *policyv1a1.LoadBalancer) bool { return b.Disabled })
	cb, _ := pickTP(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.CircuitBreaker { return s.CircuitBreaker },
		func(b *policyv1a1.CircuitBreaker) bool { return b.Disabled })
	od, _ := pickTP(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.OutlierDetection { return s.OutlierDetection },
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
func overrideOwnFields(lv tpLevels, info ruleInfo) ruleInfo {
	if to, p := pickTP(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.Timeouts { return s.Timeouts },
		func(b *policyv1a1.Timeouts) bool { return b.Disabled }); to != nil && overrides(p) {
		info.hasRequestTimeout = info.hasRequestTimeout && to.Request == nil
		info.hasBackendTimeout = info.hasBackendTimeout && to.BackendRequest == nil
	}
	if rt, p := pickTP(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.Retry { return s.Retry },
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
	block, _ := pickTP(lv, func(s *policyv1a1.TrafficPolicySpec) *policyv1a1.RateLimit { return s.RateLimit },
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

// reportTrafficPolicies writes each TrafficPolicy's status (reportPolicies), with Invalid on
// the ancestors whose Gateway has no store for its Global rules, and the store each accepted
// ancestor counts in for the controller's Healthy probe.
func (t *translator) reportTrafficPolicies() {
	reportPolicies(t, t.tp, t.set.TrafficPolicies, reportHooks[*policyv1a1.TrafficPolicy]{
		ancestorInvalid: t.tpAncestorInvalid,
		accepted: func(p *policyv1a1.TrafficPolicy, ref gwapiv1.ParentReference, i int) bool {
			store, ok := t.tpAncestorStore(p, ref)
			if !ok {
				return false
			}
			pk := status.KeyOf(p.Namespace, p.Name)
			if t.report.PolicyStores == nil {
				t.report.PolicyStores = map[status.Key]map[int]string{}
			}
			if t.report.PolicyStores[pk] == nil {
				t.report.PolicyStores[pk] = map[int]string{}
			}
			t.report.PolicyStores[pk][i] = store
			// Healthy comes from the data plane (the controller's store probe): kept while
			// the ancestor still counts in a store.
			return true
		},
	}, t.report.TrafficPolicies)
}
