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
var tpBlocks = []policyBlock[*policyv1a1.TrafficPolicy]{
	{name: "faultInjection", get: func(p *policyv1a1.TrafficPolicy) (bool, bool) {
		b := p.Spec.FaultInjection
		return b != nil, b != nil && b.Disabled
	}},
	{name: "timeouts", get: func(p *policyv1a1.TrafficPolicy) (bool, bool) {
		b := p.Spec.Timeouts
		return b != nil, b != nil && b.Disabled
	}},
	{name: "retry", get: func(p *policyv1a1.TrafficPolicy) (bool, bool) {
		b := p.Spec.Retry
		return b != nil, b != nil && b.Disabled
	}},
	{name: "loadBalancer", get: func(p *policyv1a1.TrafficPolicy) (bool, bool) {
		b := p.Spec.LoadBalancer
		return b != nil, b != nil && b.Disabled
	}},
	{name: "circuitBreaker", get: func(p *policyv1a1.TrafficPolicy) (bool, bool) {
		b := p.Spec.CircuitBreaker
		return b != nil, b != nil && b.Disabled
	}},
	{name: "outlierDetection", get: func(p *policyv1a1.TrafficPolicy) (bool, bool) {
		b := p.Spec.OutlierDetection
		return b != nil, b != nil && b.Disabled
	}},
}

// rateLimitSettings records where the rate-limit block's own settings come from (Rule B:
// failureMode, responseHeaders, response, exempt) and which policies' different settings
// they supersede. The rules' sources are recorded by effectiveRateLimit.
func (ev *tpEval) rateLimitSettings() {
	w := pickLevel(ev.lv, func(p *policyv1a1.TrafficPolicy) bool { return p.Spec.RateLimit != nil })
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
	ev.policyEval.recordBlocks(tpBlocks, func(name string, w int, disabled bool) bool {
		switch name {
		case "timeouts":
			ev.ownTimeouts(w, disabled)
		case "retry":
			ev.ownRetry(w, disabled)
		default:
			return false
		}
		return true
	})
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
