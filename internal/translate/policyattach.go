package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	policyv1a1 "apoxy.dev/apoxy/api/policy/v1alpha1"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

// Policy attachment, shared by every policy kind (TrafficPolicy, AuthPolicy; docs/policy.md,
// from the policy API design §2.2 and §3): which policy of a kind holds each exact target
// (Rule A: the oldest), the levels that apply to one route rule under one listener (rule,
// route, listener, Gateway), which level's block wins (Rules B and E), where each block of a
// route came from (policyEval) and the status that follows (reportPolicies). What a kind's
// blocks mean is the kind's own file: trafficpolicy.go, authpolicy.go.

// policyObj is a policy kind the attachment code handles: *TrafficPolicy or *AuthPolicy.
type policyObj interface {
	comparable
	policyv1a1.Policy
}

// policyTarget is an exact policy target: kind, namespace, name and section (listener or rule
// name; "" for the whole object).
type policyTarget struct {
	kind, namespace, name, section string
}

// ruleInfo is what a route rule says itself (level 0, Rule D) and its name.
type ruleInfo struct {
	name                                 string
	hasRequestTimeout, hasBackendTimeout bool
	retry                                *gwapiv1.HTTPRouteRetry
	// cors: the rule has an HTTPRoute CORS filter, which wins over a policy's cors block.
	cors bool
}

// routeRules indexes the route rules policies may target, once per translation.
type routeRules struct {
	// byRule maps "Kind/namespace/name/rule/N" to the rule's name and own fields.
	byRule map[string]ruleInfo
	// names lists each route's rule names (route targets have no section).
	names map[policyTarget][]string
}

func (t *translator) routeRuleIndex() *routeRules {
	if t.rules != nil {
		return t.rules
	}
	rr := &routeRules{byRule: map[string]ruleInfo{}, names: map[policyTarget][]string{}}
	for _, hr := range t.set.HTTPRoutes {
		k := policyTarget{"HTTPRoute", hr.Namespace, hr.Name, ""}
		for i, r := range hr.Spec.Rules {
			info := ruleInfo{retry: r.Retry, name: string(deref(r.Name, ""))}
			if r.Timeouts != nil {
				info.hasRequestTimeout, info.hasBackendTimeout = r.Timeouts.Request != nil, r.Timeouts.BackendRequest != nil
			}
			info.cors = slices.ContainsFunc(r.Filters, func(f gwapiv1.HTTPRouteFilter) bool { return f.Type == gwapiv1.HTTPRouteFilterCORS })
			rr.byRule[fmt.Sprintf("HTTPRoute/%s/%s/rule/%d", hr.Namespace, hr.Name, i)] = info
			rr.names[k] = append(rr.names[k], info.name)
		}
	}
	for _, gr := range t.set.GRPCRoutes {
		k := policyTarget{"GRPCRoute", gr.Namespace, gr.Name, ""}
		for i, r := range gr.Spec.Rules {
			info := ruleInfo{name: string(deref(r.Name, ""))}
			rr.byRule[fmt.Sprintf("GRPCRoute/%s/%s/rule/%d", gr.Namespace, gr.Name, i)] = info
			rr.names[k] = append(rr.names[k], info.name)
		}
	}
	t.rules = rr
	return rr
}

// policyIndex is the attachment index of one policy kind in one translation.
type policyIndex[P policyObj] struct {
	// kind is the policy kind's name, for messages and conditions.
	kind     string
	byTarget map[policyTarget]P
	// results are each policy's per-target outcome, for its status.
	results map[status.Key][]targetResult
	// affected names the accepted policies targeting each object directly, for the objects'
	// <Kind>Affected condition (route keys have no section: a rule target counts for its
	// route).
	affected map[policyTarget][]string
	// outcomes are what each policy's blocks did on the routes under each of its ancestors,
	// for its Programmed condition.
	outcomes map[outcomeKey[P]]*outcome
}

type targetResult struct {
	ref    gwapiv1.LocalPolicyTargetReferenceWithSectionName
	reason string // Accepted, Conflicted, TargetNotFound, Invalid
	msg    string
}

func policyKey(p policyv1a1.Policy) string { return p.GetNamespace() + "/" + p.GetName() }

// present reports whether p is a policy (not the zero pointer).
func present[P policyObj](p P) bool {
	var zero P
	return p != zero
}

func overrides[P policyObj](p P) bool {
	return present(p) && p.GetStrategy() == policyv1a1.StrategyOverride
}

// indexPolicies assigns each exact target to its oldest policy (Rule A) and checks that every
// target exists; invalid says what makes a policy unusable for a target though it is
// well-formed ("" when nothing does).
func indexPolicies[P policyObj](t *translator, kind string, policies []P, invalid func(P, policyTarget) string) *policyIndex[P] {
	ix := &policyIndex[P]{kind: kind, byTarget: map[policyTarget]P{}, results: map[status.Key][]targetResult{},
		affected: map[policyTarget][]string{}, outcomes: map[outcomeKey[P]]*outcome{}}
	if len(policies) == 0 {
		return ix
	}
	rules := t.routeRuleIndex()
	policies = slices.Clone(policies)
	slices.SortStableFunc(policies, func(a, b P) int {
		if c := a.GetCreationTimestamp().Compare(b.GetCreationTimestamp().Time); c != 0 {
			return c
		}
		return cmp.Compare(policyKey(a), policyKey(b))
	})
	for _, p := range policies {
		pk := status.KeyOf(p.GetNamespace(), p.GetName())
		for _, ref := range p.GetTargetRefs() {
			tg := policyTarget{string(ref.Kind), p.GetNamespace(), string(ref.Name), ptrString(ref.SectionName)}
			res := targetResult{ref: ref, reason: "Accepted", msg: "Policy accepted"}
			if ok, why := t.targetExists(kind, tg, rules); !ok {
				res.reason, res.msg = string(gwapiv1.PolicyReasonTargetNotFound), why
			} else if winner, taken := ix.byTarget[tg]; taken {
				res.reason, res.msg = string(gwapiv1.PolicyReasonConflicted), "conflicts with "+policyKey(winner)+" (older)"
			} else if msg := invalid(p, tg); msg != "" {
				res.reason, res.msg = string(gwapiv1.PolicyReasonInvalid), msg
			} else {
				ix.byTarget[tg] = p
				ix.addAffected(tg, p)
			}
			ix.results[pk] = append(ix.results[pk], res)
		}
	}
	return ix
}

// targetExists checks a target: the object exists, and a sectionName names one of its
// listeners (Gateway) or rules (routes).
func (t *translator) targetExists(kind string, tg policyTarget, rules *routeRules) (bool, string) {
	obj := policyTarget{tg.kind, tg.namespace, tg.name, ""}
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
		names, ok := rules.names[obj]
		if !ok {
			return false, fmt.Sprintf("%s %s/%s not found", tg.kind, tg.namespace, tg.name)
		}
		if tg.section != "" && !slices.Contains(names, tg.section) {
			return false, fmt.Sprintf("%s %s/%s has no rule named %q", tg.kind, tg.namespace, tg.name, tg.section)
		}
	default:
		return false, fmt.Sprintf("kind %s cannot be a %s target", tg.kind, kind)
	}
	return true, ""
}

// policyLevels are the policies of one kind that apply to one route rule under one listener,
// most specific first: rule, route, listener, Gateway.
type policyLevels[P policyObj] [4]P

// levelsFor returns the policies of the index that apply to route r served through listener l
// of Gateway g, and what the route rule says itself.
func (ix *policyIndex[P]) levelsFor(t *translator, r *ir.Route, g *gatewayCtx, l *listenerCtx) (policyLevels[P], ruleInfo) {
	info := t.routeRuleIndex().byRule[r.Origin.Kind+"/"+r.Origin.Namespace+"/"+r.Origin.Name+"/"+r.Origin.Section]
	var lv policyLevels[P]
	if len(ix.byTarget) == 0 {
		return lv, info
	}
	if info.name != "" {
		lv[0] = ix.byTarget[policyTarget{r.Origin.Kind, r.Origin.Namespace, r.Origin.Name, info.name}]
	}
	lv[1] = ix.byTarget[policyTarget{r.Origin.Kind, r.Origin.Namespace, r.Origin.Name, ""}]
	if l != nil && l.set == nil {
		lv[2] = ix.byTarget[policyTarget{"Gateway", g.gw.Namespace, g.gw.Name, string(l.spec.Name)}]
	}
	lv[3] = ix.byTarget[policyTarget{"Gateway", g.gw.Namespace, g.gw.Name, ""}]
	return lv, info
}

// empty reports whether no policy applies.
func (lv *policyLevels[P]) empty() bool { return *lv == policyLevels[P]{} }

// pickBlock chooses a feature block as Rules B and E say (pickLevel). A chosen block that
// is disabled means the platform default (nil); the policy is returned either way.
func pickBlock[P policyObj, T any](lv policyLevels[P], get func(P) *T, disabled func(*T) bool) (*T, P) {
	i := pickLevel(lv, func(p P) bool { return get(p) != nil })
	if i < 0 {
		var zero P
		return nil, zero
	}
	b := get(lv[i])
	if disabled(b) {
		return nil, lv[i]
	}
	return b, lv[i]
}

// pickLevel returns the level whose policy's block wins, or -1 when no policy sets it: a
// Gateway's Override beats a listener's Override, which beats the most specific policy
// that sets the block.
func pickLevel[P policyObj](lv policyLevels[P], sets func(P) bool) int {
	for _, i := range []int{3, 2} {
		if p := lv[i]; overrides(p) && sets(p) {
			return i
		}
	}
	for i, p := range lv {
		if present(p) && sets(p) {
			return i
		}
	}
	return -1
}

// policyRoutes returns a route's IR routes as served through listener l of Gateway g, each
// carrying its effective policies of every kind (copies where a policy applies).
func (t *translator) policyRoutes(routes []*ir.Route, g *gatewayCtx, l *listenerCtx) []*ir.Route {
	if len(t.tp.byTarget) == 0 && len(t.ap.byTarget) == 0 {
		return routes
	}
	var out []*ir.Route
	intercepts := map[string]bool{}
	for i, r := range routes {
		tlv, info := t.tp.levelsFor(t, r, g, l)
		alv, _ := t.ap.levelsFor(t, r, g, l)
		if tlv.empty() && alv.empty() {
			if out != nil {
				out = append(out, r)
			}
			continue
		}
		if out == nil {
			out = append(make([]*ir.Route, 0, len(routes)), routes[:i]...)
		}
		c := *r
		// Auth first: TrafficPolicy rules keyed by JWT claims check that something verifies them.
		if !alv.empty() {
			ev := newPolicyEval(t, t.ap, &c, alv, info, g, l)
			t.applyAuthPolicy(&c, ev)
			ev.commit()
		}
		if !tlv.empty() {
			t.trafficPolicyRoute(&c, tlv, info, g, l)
		}
		t.order[&c] = t.order[r]
		out = append(out, &c)
		out = append(out, t.oidcIntercepts(&c, intercepts)...)
	}
	if out == nil {
		return routes
	}
	return out
}

// reportHooks are what a kind adds to its status beyond attachment.
type reportHooks[P policyObj] struct {
	// ancestorInvalid says why a policy accepted for some target is Invalid under one ancestor
	// Gateway ("" when it is not); nil: never.
	ancestorInvalid func(p P, ref gwapiv1.ParentReference) string
	// accepted is told of each ancestor entry the policy is accepted under (i is the entry's
	// index in status.ancestors) and says whether the entry keeps its stored Healthy
	// condition (written by the controller from the data plane); nil: it does not.
	accepted func(p P, ref gwapiv1.ParentReference, i int) (keepHealthy bool)
	// conditions are further conditions of every ancestor entry the policy is accepted
	// under (ResolvedRefs); nil: none.
	conditions func(p P) []metav1.Condition
}

// reportPolicies writes each policy's status into out: one ancestor per Gateway (or listener)
// it reaches, or per missing target, with Accepted and its reason, and Programmed where it is
// accepted there (programmed). A Gateway reached through several targets shows
// Accepted=False only when all of them failed. At most 16 ancestors are listed.
func reportPolicies[P policyObj](t *translator, ix *policyIndex[P], policies []P, hooks reportHooks[P], out map[status.Key]*gwapiv1.PolicyStatus) {
	now := t.opts.Now
	for _, p := range policies {
		pk := status.KeyOf(p.GetNamespace(), p.GetName())
		gen := p.GetGeneration()
		type agg struct {
			ref             gwapiv1.ParentReference
			ok, failed      []string
			reason, failMsg string
		}
		var order []string
		ancestors := map[string]*agg{}
		for _, res := range ix.results[pk] {
			for _, ref := range t.policyAncestors(p, res) {
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
		}
		st := &gwapiv1.PolicyStatus{}
		slices.Sort(order)
		for i, k := range order {
			if i == 16 {
				break
			}
			a := ancestors[k]
			cond := status.Condition(string(gwapiv1.PolicyConditionAccepted), true, string(gwapiv1.PolicyReasonAccepted), "Policy accepted", gen, now)
			switch {
			case len(a.ok) == 0:
				cond = status.Condition(string(gwapiv1.PolicyConditionAccepted), false, a.reason, strings.Join(a.failed, "; "), gen, now)
			case len(a.failed) > 0:
				cond.Message = "Policy accepted for " + strings.Join(a.ok, ", ") + "; not for: " + strings.Join(a.failed, "; ")
			}
			keepHealthy := false
			if len(a.ok) > 0 {
				if msg := ancestorInvalid(hooks, p, a.ref); msg != "" {
					cond = status.Condition(string(gwapiv1.PolicyConditionAccepted), false, string(gwapiv1.PolicyReasonInvalid), msg, gen, now)
				} else if hooks.accepted != nil {
					keepHealthy = hooks.accepted(p, a.ref, len(st.Ancestors))
				}
			}
			if i == 15 && len(order) > 16 {
				cond.Message += fmt.Sprintf(" and %d more ancestors not listed", len(order)-16)
			}
			as := gwapiv1.PolicyAncestorStatus{AncestorRef: a.ref, ControllerName: gwapiv1.GatewayController(t.opts.ControllerName)}
			status.Set(&as.Conditions, cond)
			if cond.Status == metav1.ConditionTrue {
				if hooks.conditions != nil {
					for _, c := range hooks.conditions(p) {
						status.Set(&as.Conditions, c)
					}
				}
				status.Set(&as.Conditions, ix.programmed(t, p, a.ref, a.failed))
			}
			for _, old := range p.GetStatus().Ancestors {
				if parentRefEqual(old.AncestorRef, a.ref) {
					status.KeepTransitionTimes(as.Conditions, old.Conditions)
					if h := status.Find(old.Conditions, "Healthy"); h != nil && keepHealthy {
						status.Set(&as.Conditions, *h)
					}
				}
			}
			st.Ancestors = append(st.Ancestors, as)
		}
		out[pk] = st
	}
}

func ancestorInvalid[P policyObj](hooks reportHooks[P], p P, ref gwapiv1.ParentReference) string {
	if hooks.ancestorInvalid == nil {
		return ""
	}
	return hooks.ancestorInvalid(p, ref)
}

// policyAncestors are the Gateways (or listeners) a target result is reported under: the
// Gateway itself, the parent Gateways of a route, or the target itself when it does not
// exist.
func (t *translator) policyAncestors(p policyv1a1.Policy, res targetResult) []gwapiv1.ParentReference {
	gk, gw := gwapiv1.Kind("Gateway"), gwapiv1.Group(gatewayGroup)
	ns := gwapiv1.Namespace(p.GetNamespace())
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
		for _, pr := range t.routeParents(string(res.ref.Kind), p.GetNamespace(), string(res.ref.Name)) {
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
