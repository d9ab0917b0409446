package translate

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	policyv1a1 "apoxy.dev/apoxy/api/policy/v1alpha1"
	"apoxy.dev/apoxy/internal/status"
)

// The status that follows from TrafficPolicy attachment (design §3.2, GEP-713): the
// TrafficPolicyAffected condition on the objects accepted policies target directly.

// ConditionTrafficPolicyAffected is the condition type on Gateways, listeners and route
// parents that an accepted TrafficPolicy targets directly (GEP-713 `<Kind>Affected`).
const ConditionTrafficPolicyAffected = "policy.apoxy.dev/TrafficPolicyAffected"

// maxListed caps the items a status message lists.
const maxListed = 8

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
