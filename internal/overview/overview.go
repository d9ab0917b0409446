// Package overview reads how a project stands: how many objects of each kind it has, its
// Gateways and their listeners, every condition that needs attention with its reason, and the
// objects no controller has reported on yet. `apoxy status` prints it; the web console shows it.
package overview

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"apoxy.dev/apoxy/internal/resource"
)

// Overview is a project at one moment.
type Overview struct {
	// Counts are the kinds that have objects, in registry order.
	Counts []KindCount
	// Gateways with their listeners.
	Gateways []Gateway
	// Problems are the conditions that need attention, one line each, sorted.
	Problems []string
	// Pending are objects ("Kind namespace/name") no controller has reported on yet, sorted.
	Pending []string
}

// KindCount is how many objects of a kind a project has.
type KindCount struct {
	Kind  *resource.Kind
	Count int
}

// Gateway is a Gateway's state and its listeners.
type Gateway struct {
	Name string // namespace/name
	// State is "Programmed", "no status yet", or the first condition not as it should be.
	State     string
	Listeners []Listener
}

// Listener is one of a Gateway's listeners with the number of routes attached ("?" before
// the controller reports).
type Listener struct {
	Name, Protocol, Routes string
	Port                   int64
}

// Collect lists every kind of the project dc reads (admin or project key alike: it is an API
// client) and summarises them. A kind that cannot be listed is a problem, not an error.
func Collect(ctx context.Context, dc dynamic.Interface) *Overview {
	// The kinds are listed concurrently (a page waits for the slowest list, not their sum),
	// then summarised in registry order.
	var kinds []*resource.Kind
	for _, kind := range resource.Kinds() {
		if kind.Root || kind.GVK.Group == "" {
			continue // projects themselves; core kinds (Secrets, Namespaces) carry no conditions
		}
		kinds = append(kinds, kind)
	}
	lists := make([]*unstructured.UnstructuredList, len(kinds))
	errs := make([]error, len(kinds))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, kind := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			lists[i], errs[i] = dc.Resource(kind.GVR()).List(ctx, metav1.ListOptions{})
		}()
	}
	wg.Wait()
	o := &Overview{}
	for i, kind := range kinds {
		if errs[i] != nil {
			o.Problems = append(o.Problems, fmt.Sprintf("%s: cannot list: %v", kind.GVK.Kind, errs[i]))
			continue
		}
		list := lists[i]
		if len(list.Items) == 0 {
			continue
		}
		o.Counts = append(o.Counts, KindCount{Kind: kind, Count: len(list.Items)})
		for i := range list.Items {
			obj := &list.Items[i]
			if kind.GVK.Kind == "Gateway" {
				o.Gateways = append(o.Gateways, gatewayOf(obj))
			}
			o.Problems = append(o.Problems, Problems(kind.GVK.Kind, obj)...)
			if kind.Status != resource.NoStatus && kind.Status != resource.StatusByServer && !Reported(obj) {
				o.Pending = append(o.Pending, kind.GVK.Kind+" "+Qualified(obj))
			}
		}
	}
	sort.Strings(o.Pending)
	sort.Strings(o.Problems)
	return o
}

func gatewayOf(gw *unstructured.Unstructured) Gateway {
	conds, _, _ := unstructured.NestedSlice(gw.Object, "status", "conditions")
	g := Gateway{Name: Qualified(gw), State: ConditionWord(conds)}
	specs, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	statuses, _, _ := unstructured.NestedSlice(gw.Object, "status", "listeners")
	for _, l := range specs {
		m, _ := l.(map[string]any)
		routes := "?"
		for _, s := range statuses {
			if sm, _ := s.(map[string]any); sm != nil && sm["name"] == m["name"] {
				routes = fmt.Sprint(sm["attachedRoutes"])
			}
		}
		g.Listeners = append(g.Listeners, Listener{Name: fmt.Sprint(m["name"]), Protocol: fmt.Sprint(m["protocol"]), Port: int64(number(m["port"])), Routes: routes})
	}
	return g
}

// Qualified is an object's namespace/name (name when cluster-scoped).
func Qualified(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}

// ConditionWord is a Gateway's state in a word: Programmed, or the first condition that is
// not as it should be.
func ConditionWord(conds []any) string {
	for _, c := range conds {
		if m, _ := c.(map[string]any); m != nil && BadCondition(m) {
			return fmt.Sprintf("%v=%v (%v)", m["type"], m["status"], m["reason"])
		}
	}
	if len(conds) == 0 {
		return "no status yet"
	}
	return "Programmed"
}

// negativeConditions are condition types that are good when False.
var negativeConditions = []string{"Conflicted", "Degraded", "OverlappingTLSConfig", "Stalled"}

// BadCondition reports whether a condition is not as it should be: a positive type not True
// (False, or Unknown: not yet reconciled), a negative one True.
func BadCondition(m map[string]any) bool {
	if slices.Contains(negativeConditions, fmt.Sprint(m["type"])) {
		return m["status"] == "True"
	}
	return m["status"] != "True"
}

// Reported says whether a controller has written obj's status for its current spec: some
// conditions (own, parents' or ancestors'), and an observedGeneration, where given, not behind.
func Reported(obj *unstructured.Unstructured) bool {
	found := false
	for _, path := range [][]string{{"status", "conditions"}, {"status", "parents"}, {"status", "ancestors"}} {
		if l, _, _ := unstructured.NestedSlice(obj.Object, path...); len(l) > 0 {
			found = true
		}
	}
	og, _, _ := unstructured.NestedFieldNoCopy(obj.Object, "status", "observedGeneration")
	gen, _, _ := unstructured.NestedFieldNoCopy(obj.Object, "metadata", "generation")
	if og != nil && number(og) < number(gen) {
		return false
	}
	return found
}

// number reads a JSON number however it was decoded (int64 from the API, float64 from YAML).
func number(v any) float64 {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case float64:
		return n
	case int:
		return float64(n)
	}
	return 0
}

// Condition is one condition of an object, with where in its status it is.
type Condition struct {
	// Where is "" for the object's own conditions, else "parent NAME", "ancestor NAME" or
	// "listener NAME".
	Where, Type, Status, Reason, Message string
	// Bad is BadCondition's verdict.
	Bad bool
}

// Conditions lists every condition of obj, wherever its status keeps them: its own, each
// parent's (routes), each ancestor's (policies), each listener's (Gateways).
func Conditions(obj *unstructured.Unstructured) []Condition {
	var out []Condition
	add := func(where string, conds []any) {
		for _, c := range conds {
			if m, _ := c.(map[string]any); m != nil {
				out = append(out, Condition{Where: where, Type: fmt.Sprint(m["type"]), Status: fmt.Sprint(m["status"]),
					Reason: fmt.Sprint(m["reason"]), Message: fmt.Sprint(m["message"]), Bad: BadCondition(m)})
			}
		}
	}
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	add("", conds)
	for _, field := range []struct{ list, ref string }{{"parents", "parentRef"}, {"ancestors", "ancestorRef"}} {
		items, _, _ := unstructured.NestedSlice(obj.Object, "status", field.list)
		for _, it := range items {
			if m, _ := it.(map[string]any); m != nil {
				ref, _ := m[field.ref].(map[string]any)
				cs, _ := m["conditions"].([]any)
				add(fmt.Sprintf("%s %v", strings.TrimSuffix(field.list, "s"), ref["name"]), cs)
			}
		}
	}
	listeners, _, _ := unstructured.NestedSlice(obj.Object, "status", "listeners")
	for _, l := range listeners {
		if m, _ := l.(map[string]any); m != nil {
			cs, _ := m["conditions"].([]any)
			add(fmt.Sprintf("listener %v", m["name"]), cs)
		}
	}
	return out
}

// Problems lists the conditions of obj that need attention, one line each ("HTTPRoute
// default/web (parent default): ResolvedRefs=False (BackendNotFound): ...").
func Problems(kind string, obj *unstructured.Unstructured) []string {
	var out []string
	name := kind + " " + Qualified(obj)
	for _, c := range Conditions(obj) {
		if !c.Bad {
			continue
		}
		where, msg := "", c.Message
		if c.Where != "" {
			where = " (" + c.Where + ")"
		}
		if len(msg) > 160 {
			msg = msg[:157] + "..."
		}
		out = append(out, fmt.Sprintf("%s%s: %s=%s (%s): %s", name, where, c.Type, c.Status, c.Reason, msg))
	}
	return out
}
