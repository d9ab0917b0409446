package translate

import (
	"cmp"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

// listenerSetCtx is one ListenerSet whose parentRef names one of our Gateways.
type listenerSetCtx struct {
	ls  *gwapiv1.ListenerSet
	key status.Key
	gw  *gatewayCtx
	// rank is the set's precedence among its Gateway's sets (1 = first); listeners of lower
	// rank win conflicts.
	rank int
	// notAllowed says why the Gateway's allowedListeners rejects the set; empty when attached.
	notAllowed string
	listeners  []*listenerCtx
}

// attachListenerSets gathers the ListenerSets whose parent is g, oldest first (then by
// namespace/name), and turns the listeners of those g's spec.allowedListeners admits into
// listeners of g. The rest are recorded as NotAllowed.
func (t *translator) attachListenerSets(g *gatewayCtx) []*listenerSetCtx {
	var sets []*gwapiv1.ListenerSet
	for _, ls := range t.set.ListenerSets {
		ref := ls.Spec.ParentRef
		if !sameGroup(or(ptrString(ref.Group), gatewayGroup), gatewayGroup) || (ref.Kind != nil && *ref.Kind != "Gateway") {
			continue
		}
		ns := ls.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		if status.KeyOf(ns, string(ref.Name)) == g.key {
			sets = append(sets, ls)
		}
	}
	slices.SortStableFunc(sets, func(a, b *gwapiv1.ListenerSet) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	// spec.allowedListeners.namespaces (default from: None) admits sets by namespace.
	from := gwapiv1.NamespacesFromNone
	var selector *metav1.LabelSelector
	if al := g.gw.Spec.AllowedListeners; al != nil && al.Namespaces != nil {
		if al.Namespaces.From != nil {
			from = *al.Namespaces.From
		}
		selector = al.Namespaces.Selector
	}
	var attached []*listenerSetCtx
	for _, ls := range sets {
		lsc := &listenerSetCtx{ls: ls, key: status.KeyOf(ls.Namespace, ls.Name), gw: g}
		t.listenerSets[lsc.key] = lsc
		if !t.namespaceAllowed(from, selector, g.gw.Namespace, ls.Namespace) {
			lsc.notAllowed = fmt.Sprintf("Gateway %s does not allow ListenerSets from namespace %q (spec.allowedListeners.namespaces.from: %s)", g.key, ls.Namespace, from)
			continue
		}
		lsc.rank = len(attached) + 1
		for i := range ls.Spec.Listeners {
			e := &ls.Spec.Listeners[i]
			spec := &gwapiv1.Listener{Name: e.Name, Hostname: e.Hostname, Port: e.Port, Protocol: e.Protocol, TLS: e.TLS, AllowedRoutes: e.AllowedRoutes}
			l := &listenerCtx{gw: g, set: lsc, spec: spec, hostname: ptrString(e.Hostname), vhosts: map[string]*ir.VirtualHost{}}
			l.status.Name = e.Name
			lsc.listeners = append(lsc.listeners, l)
			t.validateListener(l)
		}
		attached = append(attached, lsc)
	}
	return attached
}

// accepted reports whether any listener of the set is valid (Gateway API: a ListenerSet is
// accepted, and counts in attachedListenerSets, when at least one listener is).
func (lsc *listenerSetCtx) accepted() bool {
	return lsc.notAllowed == "" && slices.ContainsFunc(lsc.listeners, (*listenerCtx).ok)
}

// attachedListenerSets counts g's accepted ListenerSets (Gateway status.attachedListenerSets).
func (t *translator) attachedListenerSets(g *gatewayCtx) int32 {
	var n int32
	for _, lsc := range t.listenerSets {
		if lsc.gw == g && lsc.accepted() {
			n++
		}
	}
	return n
}

// finishListenerSets writes every ListenerSet's status and counts attached sets on their
// Gateways.
func (t *translator) finishListenerSets() {
	for _, ls := range t.set.ListenerSets {
		lsc, ok := t.listenerSets[status.KeyOf(ls.Namespace, ls.Name)]
		if !ok {
			continue // its parent is not one of our Gateways
		}
		gen, now := ls.Generation, t.opts.Now
		st := &gwapiv1.ListenerSetStatus{}
		for _, l := range lsc.listeners {
			es := l.listenerStatus(gen, now, findEntryStatus(lsc.ls.Status.Listeners, l.spec.Name))
			st.Listeners = append(st.Listeners, gwapiv1.ListenerEntryStatus{Name: es.Name, SupportedKinds: es.SupportedKinds, AttachedRoutes: es.AttachedRoutes, Conditions: es.Conditions})
		}
		reason, msg := string(gwapiv1.ListenerSetReasonAccepted), "ListenerSet is attached"
		preason, pmsg := string(gwapiv1.ListenerSetReasonProgrammed), "ListenerSet is serving"
		accepted := lsc.accepted()
		switch {
		case lsc.notAllowed != "":
			reason, msg = string(gwapiv1.ListenerSetReasonNotAllowed), lsc.notAllowed
			preason, pmsg = reason, msg
		case !accepted:
			reason, msg = string(gwapiv1.ListenerSetReasonListenersNotValid), "no listener is valid"
			preason, pmsg = reason, msg
		}
		status.Set(&st.Conditions, status.Condition(string(gwapiv1.ListenerSetConditionAccepted), accepted, reason, msg, gen, now))
		status.Set(&st.Conditions, status.Condition(string(gwapiv1.ListenerSetConditionProgrammed), accepted, preason, pmsg, gen, now))
		status.KeepTransitionTimes(st.Conditions, lsc.ls.Status.Conditions)
		t.report.ListenerSets[lsc.key] = st
	}
}

func findEntryStatus(list []gwapiv1.ListenerEntryStatus, name gwapiv1.SectionName) []metav1.Condition {
	for i := range list {
		if list[i].Name == name {
			return list[i].Conditions
		}
	}
	return nil
}
