package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"apoxy.dev/apoxy/internal/resource"
)

// newStatusCommand is `apoxy status`: the first command to run. It says which server and
// project the CLI talks to, how the Gateways stand, how many objects of each kind there are,
// and every condition that is not as it should be, with its reason: what needs attention.
func newStatusCommand(getter *clientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the server, the project, its Gateways and what is not Accepted or Programmed, and why",
		Example: `  # Is my edge healthy? What needs attention?
  apoxy status

  # Another project
  apoxy status --project staging`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printStatus(cmd.Context(), getter, streams.Out)
		},
	}
}

func printStatus(ctx context.Context, getter *clientGetter, out io.Writer) error {
	rc, err := getter.ToRESTConfig()
	if err != nil {
		return err
	}
	project, _ := getter.project()
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		return err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return err
	}
	info, err := disc.ServerVersion()
	if err != nil {
		return fmt.Errorf("the server at %s does not answer: %w (is `apoxy dev` or `apoxy server` running, and is --config right?)", rc.Host, err)
	}
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintf(w, "Server:\t%s (API %s)\n", rc.Host, info.GitVersion)
	fmt.Fprintf(w, "Project:\t%s\n", project)

	var counts []string
	var gateways []unstructured.Unstructured
	var problems, pending []string
	for _, kind := range resource.Kinds() {
		if kind.Root || kind.GVK.Group == "" {
			continue // projects themselves; core kinds (Secrets, Namespaces) carry no conditions
		}
		list, err := dc.Resource(kind.GVR()).List(ctx, metav1.ListOptions{})
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: cannot list: %v", kind.GVK.Kind, err))
			continue
		}
		if len(list.Items) == 0 {
			continue
		}
		counts = append(counts, fmt.Sprintf("%s %d", kind.GVK.Kind, len(list.Items)))
		for _, obj := range list.Items {
			if kind.GVK.Kind == "Gateway" {
				gateways = append(gateways, obj)
			}
			problems = append(problems, objectProblems(kind.GVK.Kind, &obj)...)
			if kind.Status != resource.NoStatus && kind.Status != resource.StatusByServer && !reported(&obj) {
				pending = append(pending, kind.GVK.Kind+" "+qualified(&obj))
			}
		}
	}
	fmt.Fprintf(w, "Objects:\t%s\n", orNone(strings.Join(counts, ", ")))
	w.Flush()

	fmt.Fprintln(out, "\nGATEWAYS")
	w = tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	if len(gateways) == 0 {
		fmt.Fprintln(w, "  none: apply one (docs/examples/seed/gateway.yaml), or start `apoxy dev`, which makes \"default\"")
	}
	for _, gw := range gateways {
		conds, _, _ := unstructured.NestedSlice(gw.Object, "status", "conditions")
		var ls []string
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
			ls = append(ls, fmt.Sprintf("%v %v:%v (%s routes)", m["name"], m["protocol"], m["port"], routes))
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\n", qualified(&gw), conditionWord(conds), strings.Join(ls, ", "))
	}
	w.Flush()

	if len(pending) > 0 {
		sort.Strings(pending)
		fmt.Fprintf(out, "\nNO STATUS YET (%d: just applied? run 'apoxy status' again)\n", len(pending))
		for _, p := range pending {
			fmt.Fprintf(out, "  %s\n", p)
		}
	}
	if len(problems) == 0 {
		if len(pending) == 0 {
			fmt.Fprintln(out, "\nEverything is Accepted and Programmed.")
		}
		return nil
	}
	sort.Strings(problems)
	fmt.Fprintf(out, "\nNEEDS ATTENTION (%d)\n", len(problems))
	for _, p := range problems {
		fmt.Fprintf(out, "  %s\n", p)
	}
	fmt.Fprintln(out, "\n'apoxy describe KIND NAME' shows an object's whole status.")
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none yet"
	}
	return s
}

func qualified(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}

// conditionWord is a Gateway's state in a word: Programmed, or the first condition that is
// not as it should be.
func conditionWord(conds []any) string {
	for _, c := range conds {
		if m, _ := c.(map[string]any); m != nil && badCondition(m) {
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

// badCondition reports whether a condition is not as it should be: a positive type not True
// (False, or Unknown: not yet reconciled), a negative one True.
func badCondition(m map[string]any) bool {
	if slices.Contains(negativeConditions, fmt.Sprint(m["type"])) {
		return m["status"] == "True"
	}
	return m["status"] != "True"
}

// reported says whether a controller has written obj's status for its current spec: some
// conditions (own, parents' or ancestors'), and an observedGeneration, where given, not behind.
func reported(obj *unstructured.Unstructured) bool {
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

// objectProblems lists the conditions of obj that need attention, wherever its status keeps
// them: its own conditions, each parent's (routes), each ancestor's (policies), each
// listener's (Gateways).
func objectProblems(kind string, obj *unstructured.Unstructured) []string {
	var out []string
	name := kind + " " + qualified(obj)
	add := func(where string, conds []any) {
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m == nil || !badCondition(m) {
				continue
			}
			msg := fmt.Sprint(m["message"])
			if len(msg) > 160 {
				msg = msg[:157] + "..."
			}
			out = append(out, fmt.Sprintf("%s%s: %v=%v (%v): %s", name, where, m["type"], m["status"], m["reason"], msg))
		}
	}
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	add("", conds)
	for _, field := range []struct{ list, ref string }{{"parents", "parentRef"}, {"ancestors", "ancestorRef"}} {
		items, _, _ := unstructured.NestedSlice(obj.Object, "status", field.list)
		for _, it := range items {
			m, _ := it.(map[string]any)
			if m == nil {
				continue
			}
			ref, _ := m[field.ref].(map[string]any)
			cs, _ := m["conditions"].([]any)
			add(fmt.Sprintf(" (%s %v)", strings.TrimSuffix(field.list, "s"), ref["name"]), cs)
		}
	}
	listeners, _, _ := unstructured.NestedSlice(obj.Object, "status", "listeners")
	for _, l := range listeners {
		m, _ := l.(map[string]any)
		if m == nil {
			continue
		}
		cs, _ := m["conditions"].([]any)
		add(fmt.Sprintf(" (listener %v)", m["name"]), cs)
	}
	return out
}
