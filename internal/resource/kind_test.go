package resource

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	platformv1a1 "apoxy.dev/apoxy/api/platform/v1alpha1"
	"apoxy.dev/apoxy/internal/status"
)

// TestRegistryComplete fails when an entry lacks what the rest of the program needs from it
// (names, apply rank, Go types, its Set list, its place in status.Report) or when a Set list is
// filled by no kind.
func TestRegistryComplete(t *testing.T) {
	for _, err := range Check() {
		t.Error(err)
	}
}

// TestCheckFindsGaps shows that Check catches each gap a new entry could have.
func TestCheckFindsGaps(t *testing.T) {
	route := MustKindOf(&gwapiv1.HTTPRoute{})
	edit := func(change func(k *Kind)) []*Kind {
		var reg []*Kind
		for _, k := range registry {
			if k == route {
				c := *k
				change(&c)
				k = &c
			}
			reg = append(reg, k)
		}
		return reg
	}
	for name, tc := range map[string]struct {
		reg  []*Kind
		want string
	}{
		"translator reads it, no Set list":   {edit(func(k *Kind) { k.set = nil }), "HTTPRoute.gateway.apoxy.dev: its status is the translator's but the translator does not read it"},
		"translator status, no Report map":   {edit(func(k *Kind) { k.report = nil }), "does not say where it is in status.Report"},
		"no apply order":                     {edit(func(k *Kind) { k.Apply = 0 }), "HTTPRoute.gateway.apoxy.dev: no apply order"},
		"no status for a type with a status": {edit(func(k *Kind) { k.Status, k.report = NoStatus, nil }), "the Go type has a status"},
		"another kind's Set list": {edit(func(k *Kind) {
			k.set = inSet(func(s *Set) *[]*gwapiv1.GRPCRoute { return &s.GRPCRoutes })
		}), "Set list holds *v1.GRPCRoute"},
		"Set list nobody fills": {slices.DeleteFunc(slices.Clone(registry), func(k *Kind) bool { return k == route }), "resource.Set.HTTPRoutes: no registered kind fills it"},
		"duplicate short name":  {edit(func(k *Kind) { k.ShortNames = []string{"gw"} }), `short name "gw" is taken`},
		"another kind's list":   {edit(func(k *Kind) { k.goTypes.newList = typesOf[gwapiv1.GRPCRoute, gwapiv1.GRPCRouteList]().newList }), "list type *v1.GRPCRouteList does not hold v1.HTTPRoute items"},
	} {
		t.Run(name, func(t *testing.T) {
			var msgs []string
			for _, err := range check(tc.reg) {
				msgs = append(msgs, err.Error())
			}
			if !strings.Contains(strings.Join(msgs, "\n"), tc.want) {
				t.Errorf("check errors %q do not mention %q", msgs, tc.want)
			}
		})
	}
}

// TestSetAddSortObjects: every kind the translator reads goes into its list through Add, is
// sorted by Sort and comes back from Objects.
func TestSetAddSortObjects(t *testing.T) {
	var s Set
	for _, k := range Kinds() {
		if !k.InSet() {
			if err := s.Add(k.New()); err == nil {
				t.Errorf("%s: Add accepted a kind the translator does not read", k)
			}
			continue
		}
		for _, name := range []string{"b", "a"} {
			o := k.New()
			o.SetName(name)
			if err := s.Add(o); err != nil {
				t.Fatalf("%s: %v", k, err)
			}
		}
	}
	s.Sort()
	for _, k := range Kinds() {
		if !k.InSet() {
			continue
		}
		var got []string
		for _, o := range s.Objects(k) {
			if kk, _ := KindOf(o); kk != k {
				t.Errorf("%s: Objects returned a %T", k, o)
			}
			got = append(got, o.GetName())
		}
		if !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("%s: objects %v, want [a b]", k, got)
		}
	}
	if err := s.Add(&corev1.Pod{}); err == nil || !strings.Contains(err.Error(), "unsupported type *v1.Pod") {
		t.Errorf("Add(Pod) = %v, want unsupported type", err)
	}
}

func TestLookups(t *testing.T) {
	be := MustKindOf(&corev1a2.Backend{})
	if k, ok := Lookup(corev1a2.SchemeGroupVersion.WithKind("Backend")); !ok || k != be {
		t.Errorf("Lookup(Backend) = %v, %v", k, ok)
	}
	if got := be.GVR().String(); got != "core.apoxy.dev/v1alpha2, Resource=backends" {
		t.Errorf("Backend GVR = %s", got)
	}
	if p := MustKindOf(&platformv1a1.Project{}); !p.Root || p.InSet() {
		t.Errorf("Project: root %v, in Set %v; want a root kind the translator does not read", p.Root, p.InSet())
	}
	for kind, want := range map[string]ApplyOrder{"Namespace": ApplyNamespaces, "Project": ApplyNamespaces, "Secret": ApplyConfig, "HTTPRoute": ApplyRoutes, "Teleporter": ApplyUnknown} {
		if got := ApplyOrderOf(kind); got != want {
			t.Errorf("ApplyOrderOf(%s) = %d, want %d", kind, got, want)
		}
	}
}

// TestReportedStatus: a translator-status kind finds an object's reported status by namespace
// and name, next to the object's own status.
func TestReportedStatus(t *testing.T) {
	k := MustKindOf(&gwapiv1.HTTPRoute{})
	route := &gwapiv1.HTTPRoute{}
	route.Namespace, route.Name = "default", "r"
	r := status.NewReport()
	if _, _, ok := k.ReportedStatus(r, route); ok {
		t.Fatal("status found in an empty report")
	}
	reported := &gwapiv1.HTTPRouteStatus{}
	r.HTTPRoutes[status.KeyOf("default", "r")] = reported
	current, next, ok := k.ReportedStatus(r, route)
	if !ok || current != &route.Status || next != reported {
		t.Errorf("ReportedStatus = %p, %p, %v; want the route's own status and the reported one", current, next, ok)
	}
	if _, _, ok := MustKindOf(&corev1a2.Backend{}).ReportedStatus(r, &corev1a2.Backend{}); ok {
		t.Error("a kind whose status is not the translator's found one in the report")
	}
}
