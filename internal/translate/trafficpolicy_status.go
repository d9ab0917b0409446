package translate

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	policyv1a1 "apoxy.dev/apoxy/api/policy/v1alpha1"
	"apoxy.dev/apoxy/internal/status"
)

// The status that follows from TrafficPolicy attachment (design §3.2, GEP-713): each
// policy's Programmed condition per ancestor (Programmed, PartiallyProgrammed, Overridden),
// computed from what its blocks did on the routes under it (tpEval), and the
// TrafficPolicyAffected condition on the objects accepted policies target directly.

// ConditionTrafficPolicyAffected is the condition type on Gateways, listeners and route
// parents that an accepted TrafficPolicy targets directly (GEP-713 `<Kind>Affected`).
const ConditionTrafficPolicyAffected = "policy.apoxy.dev/TrafficPolicyAffected"

// The Programmed condition of a TrafficPolicy ancestor and its reasons (GEP-713).
const (
	policyConditionProgrammed       = "Programmed"
	policyReasonProgrammed          = "Programmed"
	policyReasonPartiallyProgrammed = "PartiallyProgrammed"
	policyReasonOverridden          = "Overridden"
)

// maxListed caps the items a status message lists.
const maxListed = 8

// tpOutcomeKey is a policy under one of its ancestors: a Gateway, or a Gateway listener for
// a listener target.
type tpOutcomeKey struct {
	policy  *policyv1a1.TrafficPolicy
	gateway status.Key
	section string
}

// tpOutcome sums up what a policy's blocks did on the routes under one ancestor.
type tpOutcome struct {
	routes    int
	effective bool // something it sets took effect on some route
	lost      []string
	seen      map[string]bool
}

func (o *tpOutcome) merge(routes int, effective bool, lost []string) {
	o.routes += routes
	o.effective = o.effective || effective
	for _, m := range lost {
		if !o.seen[m] {
			if o.seen == nil {
				o.seen = map[string]bool{}
			}
			o.seen[m] = true
			o.lost = append(o.lost, m)
		}
	}
}

// commit adds this route's record to the outcome of each policy in its levels, under the
// ancestor the level reports to: the listener for a listener target, the Gateway otherwise.
func (ev *tpEval) commit() {
	var done []tpOutcomeKey
	for i, p := range ev.lv {
		if p == nil {
			continue
		}
		k := tpOutcomeKey{policy: p, gateway: ev.g.key}
		if i == 2 {
			k.section = string(ev.l.spec.Name)
		}
		if slices.Contains(done, k) {
			continue
		}
		done = append(done, k)
		o := ev.t.tp.outcomes[k]
		if o == nil {
			o = &tpOutcome{}
			ev.t.tp.outcomes[k] = o
		}
		o.merge(1, ev.effect[p], ev.lost[p])
	}
}

// tpProgrammed is a policy's Programmed condition under an ancestor: Programmed when its
// blocks take effect, PartiallyProgrammed when some are superseded on some routes (the
// message lists them and by what) or when some of its targets under the ancestor failed
// (failed: their Accepted messages), Overridden when everything it sets is superseded on
// every route under the ancestor. An ancestor that is not a Gateway (a route without
// Gateway parents) sums up every route the policy reached.
func (t *translator) tpProgrammed(p *policyv1a1.TrafficPolicy, anc gwapiv1.ParentReference, failed []string) metav1.Condition {
	var o tpOutcome
	if ptrString(anc.Kind) == "Gateway" {
		if v := t.tp.outcomes[tpOutcomeKey{p, status.KeyOf(ptrString(anc.Namespace), string(anc.Name)), ptrString(anc.SectionName)}]; v != nil {
			o.merge(v.routes, v.effective, v.lost)
		}
	} else {
		for k, v := range t.tp.outcomes {
			if k.policy == p {
				o.merge(v.routes, v.effective, v.lost)
			}
		}
	}
	slices.Sort(o.lost)
	var items []string
	for _, f := range failed {
		items = append(items, "not in effect for a target: "+f)
	}
	items = append(items, o.lost...)
	cond := func(ok bool, reason, msg string) metav1.Condition {
		return status.Condition(policyConditionProgrammed, ok, reason, msg, p.Generation, t.opts.Now)
	}
	switch {
	case o.routes > 0 && !o.effective:
		return cond(false, policyReasonOverridden, "Everything the policy sets is superseded on every route: "+listCapped(items))
	case len(items) > 0:
		return cond(true, policyReasonPartiallyProgrammed, listCapped(items))
	case o.routes == 0:
		return cond(true, policyReasonProgrammed, "Policy programmed; no route under this ancestor uses it yet")
	}
	return cond(true, policyReasonProgrammed, "Policy programmed")
}

// listCapped joins items with "; ", listing at most maxListed.
func listCapped(items []string) string {
	if len(items) > maxListed {
		return strings.Join(items[:maxListed], "; ") + fmt.Sprintf("; and %d more", len(items)-maxListed)
	}
	return strings.Join(items, "; ")
}

// addAffected notes that p targets tg directly. A rule target counts for its route.
func (tp *trafficPolicies) addAffected(tg tpTarget, p *policyv1a1.TrafficPolicy) {
	name := "TrafficPolicy " + policyKey(p)
	if tg.kind != "Gateway" && tg.section != "" {
		name += " (rule " + tg.section + ")"
		tg.section = ""
	}
	tp.affected[tg] = append(tp.affected[tg], name)
}

// setPolicyAffected sets the TrafficPolicyAffected condition on an object (a Gateway, one of
// its listeners, or a route's parent status) when accepted TrafficPolicies target it
// directly; objects they reach only by inheritance get none (no fan-out: `apoxy explain`
// shows those). old are the stored conditions, whose transition time is kept.
func (t *translator) setPolicyAffected(conds *[]metav1.Condition, old []metav1.Condition, kind, namespace, name, section string, gen int64) {
	if t.tp == nil {
		return
	}
	names := t.tp.affected[tpTarget{kind, namespace, name, section}]
	if len(names) == 0 {
		return
	}
	c := status.Condition(ConditionTrafficPolicyAffected, true, string(gwapiv1.PolicyReasonAccepted), "Targeted by "+listCapped(names), gen, t.opts.Now)
	if o := status.Find(old, c.Type); o != nil && o.Status == c.Status {
		c.LastTransitionTime = o.LastTransitionTime
	}
	status.Set(conds, c)
}
