package translate

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

// Where a route's effective policy came from (design §2.2: `apoxy explain` prints the source
// of every block), recorded in each IR route's PolicySources while the translator merges the
// policy levels, and the status that follows (design §3.2, GEP-713): each policy's
// Programmed condition per ancestor (Programmed, PartiallyProgrammed, Overridden), computed
// from what its blocks did on the routes under it, and the <Kind>Affected condition on the
// objects accepted policies target directly.

// The Programmed condition of a policy ancestor and its reasons (GEP-713).
const (
	policyConditionProgrammed       = "Programmed"
	policyReasonProgrammed          = "Programmed"
	policyReasonPartiallyProgrammed = "PartiallyProgrammed"
	policyReasonOverridden          = "Overridden"
)

// maxListed caps the items a status message lists.
const maxListed = 8

// policyEval records one route rule's evaluation of one policy kind under one listener: the
// IR route's PolicySources and, per policy, whether something it set took effect and what
// it lost.
type policyEval[P policyObj] struct {
	t       *translator
	ix      *policyIndex[P]
	r       *ir.Route
	lv      policyLevels[P]
	info    ruleInfo
	g       *gatewayCtx
	l       *listenerCtx
	sources [len(policyLevels[P]{})]string
	effect  map[P]bool
	lost    map[P][]string
}

func newPolicyEval[P policyObj](t *translator, ix *policyIndex[P], r *ir.Route, lv policyLevels[P], info ruleInfo, g *gatewayCtx, l *listenerCtx) *policyEval[P] {
	return &policyEval[P]{t: t, ix: ix, r: r, lv: lv, info: info, g: g, l: l, effect: map[P]bool{}, lost: map[P][]string{}}
}

// source names the policy at level i and the target it reaches this route through:
// "TrafficPolicy default/g (Gateway default/edge, Override)".
func (ev *policyEval[P]) source(i int) string {
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
	s := ev.ix.kind + " " + policyKey(ev.lv[i]) + " (" + target
	if overrides(ev.lv[i]) {
		s += ", Override"
	}
	ev.sources[i] = s + ")"
	return ev.sources[i]
}

// ruleName names the route rule: "HTTPRoute default/api rule login", or
// "HTTPRoute default/api rules[1]" for a rule without a name.
func (ev *policyEval[P]) ruleName() string {
	o := ev.r.Origin
	s := o.Kind + " " + o.Namespace + "/" + o.Name
	if ev.info.name != "" {
		return s + " rule " + ev.info.name
	}
	return s + " rules[" + strings.TrimPrefix(o.Section, "rule/") + "]"
}

// add records that a block comes from the policy at level i.
func (ev *policyEval[P]) add(block string, i int, disabled bool) {
	ev.r.PolicySources = append(ev.r.PolicySources, ir.PolicySource{Block: block, Source: ev.source(i), Disabled: disabled})
}

// addOwn records that a field comes from the route rule itself (Rule D).
func (ev *policyEval[P]) addOwn(block string) {
	ev.r.PolicySources = append(ev.r.PolicySources, ir.PolicySource{Block: block, Source: ev.ruleName()})
}

// took records that something policy p sets takes effect on this route.
func (ev *policyEval[P]) took(p P) { ev.effect[p] = true }

// lose records that something policy p sets is superseded on this route (msg says what and
// by what). A policy never supersedes itself (one policy may target two levels).
func (ev *policyEval[P]) lose(p, by P, msg string) {
	if present(p) && p != by {
		ev.lost[p] = append(ev.lost[p], msg)
	}
}

// policyBlock is a feature block of a kind whose winner Rules B and E pick whole.
type policyBlock[P policyObj] struct {
	name string
	get  func(P) (set, disabled bool)
	// ruleOwn, when set, says whether the route rule's own fields replace the whole block
	// (Rule D: an HTTPRoute CORS filter beats a policy's cors block) and what they are.
	ruleOwn func(ruleInfo) (what string, ok bool)
}

// recordBlocks records the source of every listed block (Rules B and E) and what each policy
// lost to it. own handles a block the route rule's own fields may beat (Rule D): it is
// called with the winning level (-1: none) and records the block's sources and effect
// itself when it returns true.
func (ev *policyEval[P]) recordBlocks(blocks []policyBlock[P], own func(name string, w int, disabled bool) bool) {
	for _, b := range blocks {
		sets := func(p P) bool { set, _ := b.get(p); return set }
		if b.ruleOwn != nil {
			if what, ok := b.ruleOwn(ev.info); ok {
				ev.addOwn(b.name)
				var none P
				for _, p := range ev.lv {
					if present(p) && sets(p) {
						ev.lose(p, none, b.name+" superseded by "+ev.ruleName()+" ("+what+")")
					}
				}
				continue
			}
		}
		w := pickLevel(ev.lv, sets)
		disabled := false
		if w >= 0 {
			wp := ev.lv[w]
			_, disabled = b.get(wp)
			ev.add(b.name, w, disabled)
			how := " superseded by "
			if disabled {
				how = " disabled by "
			}
			for _, p := range ev.lv {
				if present(p) && sets(p) {
					ev.lose(p, wp, b.name+how+ev.source(w))
				}
			}
		}
		if own != nil && own(b.name, w, disabled) {
			continue
		}
		if w >= 0 {
			ev.took(ev.lv[w])
		}
	}
}

// outcomeKey is a policy under one of its ancestors: a Gateway, or a Gateway listener for a
// listener target.
type outcomeKey[P policyObj] struct {
	policy  P
	gateway status.Key
	section string
}

// outcome sums up what a policy's blocks did on the routes under one ancestor.
type outcome struct {
	routes    int
	effective bool // something it sets took effect on some route
	lost      []string
	seen      map[string]bool
}

func (o *outcome) merge(routes int, effective bool, lost []string) {
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
func (ev *policyEval[P]) commit() {
	var done []outcomeKey[P]
	for i, p := range ev.lv {
		if !present(p) {
			continue
		}
		k := outcomeKey[P]{policy: p, gateway: ev.g.key}
		if i == 2 {
			k.section = string(ev.l.spec.Name)
		}
		if slices.Contains(done, k) {
			continue
		}
		done = append(done, k)
		o := ev.ix.outcomes[k]
		if o == nil {
			o = &outcome{}
			ev.ix.outcomes[k] = o
		}
		o.merge(1, ev.effect[p], ev.lost[p])
	}
}

// programmed is a policy's Programmed condition under an ancestor: Programmed when its blocks
// take effect, PartiallyProgrammed when some are superseded on some routes (the message
// lists them and by what) or when some of its targets under the ancestor failed (failed:
// their Accepted messages), Overridden when everything it sets is superseded on every route
// under the ancestor. An ancestor that is not a Gateway (a route without Gateway parents)
// sums up every route the policy reached.
func (ix *policyIndex[P]) programmed(t *translator, p P, anc gwapiv1.ParentReference, failed []string) metav1.Condition {
	var o outcome
	if ptrString(anc.Kind) == "Gateway" {
		if v := ix.outcomes[outcomeKey[P]{p, status.KeyOf(ptrString(anc.Namespace), string(anc.Name)), ptrString(anc.SectionName)}]; v != nil {
			o.merge(v.routes, v.effective, v.lost)
		}
	} else {
		for k, v := range ix.outcomes {
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
		return status.Condition(policyConditionProgrammed, ok, reason, msg, p.GetGeneration(), t.opts.Now)
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
func (ix *policyIndex[P]) addAffected(tg policyTarget, p P) {
	name := ix.kind + " " + policyKey(p)
	if tg.kind != "Gateway" && tg.section != "" {
		name += " (rule " + tg.section + ")"
		tg.section = ""
	}
	ix.affected[tg] = append(ix.affected[tg], name)
}

// affectedCondition is the <Kind>Affected condition type on the objects a kind's accepted
// policies target directly (GEP-713), e.g. policy.apoxy.dev/TrafficPolicyAffected.
func (ix *policyIndex[P]) affectedCondition() string {
	return "policy.apoxy.dev/" + ix.kind + "Affected"
}

// setAffected sets the index's <Kind>Affected condition on an object (a Gateway, one of its
// listeners, or a route's parent status) when accepted policies target it directly;
// objects they reach only by inheritance get none (no fan-out: `apoxy explain` shows
// those). old are the stored conditions, whose transition time is kept.
func (ix *policyIndex[P]) setAffected(t *translator, conds *[]metav1.Condition, old []metav1.Condition, tg policyTarget, gen int64) {
	if ix == nil {
		return
	}
	names := ix.affected[tg]
	if len(names) == 0 {
		return
	}
	c := status.Condition(ix.affectedCondition(), true, string(gwapiv1.PolicyReasonAccepted), "Targeted by "+listCapped(names), gen, t.opts.Now)
	if o := status.Find(old, c.Type); o != nil && o.Status == c.Status {
		c.LastTransitionTime = o.LastTransitionTime
	}
	status.Set(conds, c)
}

// setPolicyAffected sets every policy kind's <Kind>Affected condition on an object.
func (t *translator) setPolicyAffected(conds *[]metav1.Condition, old []metav1.Condition, kind, namespace, name, section string, gen int64) {
	tg := policyTarget{kind, namespace, name, section}
	t.tp.setAffected(t, conds, old, tg, gen)
	t.ap.setAffected(t, conds, old, tg, gen)
}
