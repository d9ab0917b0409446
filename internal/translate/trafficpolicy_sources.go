package translate

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	policyv1a1 "apoxy.dev/apoxy/api/policy/v1alpha1"
	"apoxy.dev/apoxy/internal/ir"
)

// Where a route's effective TrafficPolicy came from (design §2.2: `apoxy explain` prints the
// source of every block): recorded in each IR route's PolicySources while the translator
// merges the policy levels, with what each policy lost, for its status (trafficpolicy_status.go).

// tpBlocks are the feature blocks other than rateLimit (whose rules merge by name, see
// effectiveRateLimit), in the order `apoxy explain` prints them.
var tpBlocks = []struct {
	name string
	get  func(*policyv1a1.TrafficPolicySpec) (set, disabled bool)
}{
	{"faultInjection", func(s *policyv1a1.TrafficPolicySpec) (bool, bool) {
		return s.FaultInjection != nil, s.FaultInjection != nil && s.FaultInjection.Disabled
	}},
	{"timeouts", func(s *policyv1a1.TrafficPolicySpec) (bool, bool) {
		return s.Timeouts != nil, s.Timeouts != nil && s.Timeouts.Disabled
	}},
	{"retry", func(s *policyv1a1.TrafficPolicySpec) (bool, bool) {
		return s.Retry != nil, s.Retry != nil && s.Retry.Disabled
	}},
	{"loadBalancer", func(s *policyv1a1.TrafficPolicySpec) (bool, bool) {
		return s.LoadBalancer != nil, s.LoadBalancer != nil && s.LoadBalancer.Disabled
	}},
	{"circuitBreaker", func(s *policyv1a1.TrafficPolicySpec) (bool, bool) {
		return s.CircuitBreaker != nil, s.CircuitBreaker != nil && s.CircuitBreaker.Disabled
	}},
	{"outlierDetection", func(s *policyv1a1.TrafficPolicySpec) (bool, bool) {
		return s.OutlierDetection != nil, s.OutlierDetection != nil && s.OutlierDetection.Disabled
	}},
}

// tpEval records one route rule's policy evaluation under one listener: the IR route's
// PolicySources and, per policy, whether something it set took effect and what it lost.
type tpEval struct {
	t       *translator
	r       *ir.Route
	lv      tpLevels
	info    tpRuleInfo
	g       *gatewayCtx
	l       *listenerCtx
	sources [len(tpLevels{})]string
	effect  map[*policyv1a1.TrafficPolicy]bool
	lost    map[*policyv1a1.TrafficPolicy][]string
}

func (t *translator) newTPEval(r *ir.Route, lv tpLevels, info tpRuleInfo, g *gatewayCtx, l *listenerCtx) *tpEval {
	return &tpEval{t: t, r: r, lv: lv, info: info, g: g, l: l,
		effect: map[*policyv1a1.TrafficPolicy]bool{}, lost: map[*policyv1a1.TrafficPolicy][]string{}}
}

// source names the policy at level i and the target it reaches this route through:
// "TrafficPolicy default/g (Gateway default/edge, Override)".
func (ev *tpEval) source(i int) string {
	if ev.sources[i] != "" {
		return ev.sources[i]
	}
	o := ev.r.Origin
	var target string
	switch i {
	case 0:
		target = ev.ruleName()
	case 1:
		target = o.Kind + " " + o.Namespace + "/" + o.Name
	case 2:
		target = "Gateway " + ev.g.gw.Namespace + "/" + ev.g.gw.Name + " listener " + string(ev.l.spec.Name)
	default:
		target = "Gateway " + ev.g.gw.Namespace + "/" + ev.g.gw.Name
	}
	s := "TrafficPolicy " + policyKey(ev.lv[i]) + " (" + target
	if overrides(ev.lv[i]) {
		s += ", Override"
	}
	ev.sources[i] = s + ")"
	return ev.sources[i]
}

// ruleName names the route rule: "HTTPRoute default/api rule login", or
// "HTTPRoute default/api rules[1]" for a rule without a name.
func (ev *tpEval) ruleName() string {
	o := ev.r.Origin
	s := o.Kind + " " + o.Namespace + "/" + o.Name
	if ev.info.name != "" {
		return s + " rule " + ev.info.name
	}
	return s + " rules[" + strings.TrimPrefix(o.Section, "rule/") + "]"
}

// add records that a block comes from the policy at level i.
func (ev *tpEval) add(block string, i int, disabled bool) {
	ev.r.PolicySources = append(ev.r.PolicySources, ir.PolicySource{Block: block, Source: ev.source(i), Disabled: disabled})
}

// addOwn records that a field comes from the route rule itself (Rule D).
func (ev *tpEval) addOwn(block string) {
	ev.r.PolicySources = append(ev.r.PolicySources, ir.PolicySource{Block: block, Source: ev.ruleName()})
}

// took records that something policy p sets takes effect on this route.
func (ev *tpEval) took(p *policyv1a1.TrafficPolicy) { ev.effect[p] = true }

// lose records that something policy p sets is superseded on this route (msg says what and
// by what). A policy never supersedes itself (one policy may target two levels).
func (ev *tpEval) lose(p, by *policyv1a1.TrafficPolicy, msg string) {
	if p != by {
		ev.lost[p] = append(ev.lost[p], msg)
	}
}

// rateLimitSettings records where the rate-limit block's own settings come from (Rule B:
// failureMode, responseHeaders, response, exempt) and which policies' different settings
// they supersede. The rules' sources are recorded by effectiveRateLimit.
func (ev *tpEval) rateLimitSettings() {
	w := pickLevel(ev.lv, func(s *policyv1a1.TrafficPolicySpec) bool { return s.RateLimit != nil })
	if w < 0 {
		return
	}
	wp := ev.lv[w]
	wb := wp.Spec.RateLimit
	ev.add("rateLimit", w, wb.Disabled)
	ev.took(wp)
	for _, p := range ev.lv {
		if p == nil || p.Spec.RateLimit == nil {
			continue
		}
		switch b := p.Spec.RateLimit; {
		case b.Disabled && !wb.Disabled:
			ev.lose(p, wp, "rateLimit (disabled) superseded by "+ev.source(w))
		case !b.Disabled && !wb.Disabled && !sameRateLimitSettings(b, wb):
			ev.lose(p, wp, "rateLimit settings (failureMode, responseHeaders, response, exempt) superseded by "+ev.source(w))
		}
	}
}

func sameRateLimitSettings(a, b *policyv1a1.RateLimit) bool {
	code := func(r *policyv1a1.RateLimit) int32 {
		if r.Response != nil && r.Response.StatusCode != nil {
			return *r.Response.StatusCode
		}
		return 429
	}
	return cmp.Or(a.FailureMode, policyv1a1.FailOpen) == cmp.Or(b.FailureMode, policyv1a1.FailOpen) &&
		cmp.Or(a.ResponseHeaders, policyv1a1.HeadersXRateLimit) == cmp.Or(b.ResponseHeaders, policyv1a1.HeadersXRateLimit) &&
		code(a) == code(b) && (len(a.Exempt) == 0 && len(b.Exempt) == 0 || reflect.DeepEqual(a.Exempt, b.Exempt))
}

// pruneRateLimit drops the sources of rate-limit rules the route no longer serves (Global
// rules under a Gateway without a store), and of the rate-limit settings when none is left.
func (ev *tpEval) pruneRateLimit() {
	rl := ev.r.RateLimit
	ev.r.PolicySources = slices.DeleteFunc(ev.r.PolicySources, func(s ir.PolicySource) bool {
		if name, ok := strings.CutPrefix(s.Block, "rateLimit.rules["); ok {
			name = strings.TrimSuffix(name, "]")
			return rl == nil || !slices.ContainsFunc(rl.Rules, func(r ir.RateLimitRule) bool { return r.Name == name })
		}
		return s.Block == "rateLimit" && rl == nil && !s.Disabled
	})
}

// recordBlocks records the source of every block but rateLimit (Rules B and E), the route
// rule's own timeouts and retry fields (Rule D), and what each policy lost to them.
func (ev *tpEval) recordBlocks() {
	for _, b := range tpBlocks {
		sets := func(s *policyv1a1.TrafficPolicySpec) bool { set, _ := b.get(s); return set }
		w := pickLevel(ev.lv, sets)
		disabled := false
		if w >= 0 {
			wp := ev.lv[w]
			_, disabled = b.get(&wp.Spec)
			ev.add(b.name, w, disabled)
			how := " superseded by "
			if disabled {
				how = " disabled by "
			}
			for _, p := range ev.lv {
				if p != nil && sets(&p.Spec) {
					ev.lose(p, wp, b.name+how+ev.source(w))
				}
			}
		}
		switch {
		case b.name == "timeouts":
			ev.ownTimeouts(w, disabled)
		case b.name == "retry":
			ev.ownRetry(w, disabled)
		case w >= 0:
			ev.took(ev.lv[w])
		}
	}
}

// ownTimeouts records the sources of the request and backendRequest timeouts: the route
// rule's own fields win over the policy's (Rule D). w is the level whose timeouts block
// won (-1: none).
func (ev *tpEval) ownTimeouts(w int, disabled bool) {
	var wp *policyv1a1.TrafficPolicy
	var to *policyv1a1.Timeouts
	if w >= 0 {
		wp = ev.lv[w]
		if disabled {
			ev.took(wp)
		} else {
			to = wp.Spec.Timeouts
		}
	}
	// The other fields shape the upstream connection; the route has no say in them.
	effect := to != nil && (to.Connect != nil || to.Idle != nil || to.MaxStreamDuration != nil || to.ConnectionIdle != nil)
	fields := []struct {
		name   string
		own    bool
		policy bool
		value  ir.Duration
	}{
		{"timeouts.request", ev.info.hasRequestTimeout, to != nil && to.Request != nil, ev.r.Timeouts.Request},
		{"timeouts.backendRequest", ev.info.hasBackendTimeout, to != nil && to.BackendRequest != nil, ev.r.Timeouts.BackendRequest},
	}
	for _, f := range fields {
		switch {
		case f.own:
			ev.addOwn(f.name)
			if f.policy {
				ev.lose(wp, nil, f.name+" superseded by "+ev.ruleName()+" ("+time.Duration(f.value).String()+")")
			}
		case f.policy:
			ev.add(f.name, w, false)
			effect = true
		}
	}
	if effect {
		ev.took(wp)
	}
}

// ownRetry records the route rule's own retry fields (attempts, codes, backoff), which win
// over the policy's retry block field by field (Rule D). w is the level whose retry block
// won (-1: none).
func (ev *tpEval) ownRetry(w int, disabled bool) {
	own := ev.info.retry
	if w < 0 || disabled {
		if w >= 0 {
			ev.took(ev.lv[w])
		}
		if own != nil {
			ev.addOwn("retry") // the route's retry as it is: no policy block applies
		}
		return
	}
	wp := ev.lv[w]
	rt := wp.Spec.Retry
	if own == nil {
		ev.took(wp)
		return
	}
	set, lost := 0, 0
	field := func(name string, policySets, ownSets bool, value func() string) {
		if policySets {
			set++
		}
		if !ownSets {
			return
		}
		ev.addOwn(name)
		if policySets {
			lost++
			ev.lose(wp, nil, name+" superseded by "+ev.ruleName()+" ("+value()+")")
		}
	}
	field("retry.attempts", rt.Attempts != nil, own.Attempts != nil, func() string { return strconv.Itoa(*own.Attempts) })
	field("retry.retryOn.statusCodes", rt.RetryOn != nil && rt.RetryOn.StatusCodes != nil, len(own.Codes) > 0, func() string {
		return strings.Trim(fmt.Sprint(own.Codes), "[]")
	})
	_, ownBackoff := parseDuration(own.Backoff)
	field("retry.backoff.baseInterval", rt.Backoff != nil && rt.Backoff.BaseInterval != nil, ownBackoff, func() string { return string(*own.Backoff) })
	others := rt.RetryOn != nil && (rt.RetryOn.Conditions != nil || rt.RetryOn.GRPCCodes != nil) || rt.Methods != nil ||
		rt.Backoff != nil && rt.Backoff.MaxInterval != nil || rt.Budget != nil
	if others || set > lost {
		ev.took(wp)
	}
}
