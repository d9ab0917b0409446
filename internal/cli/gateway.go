package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"apoxy.dev/apoxy/internal/explain"
	"apoxy.dev/apoxy/internal/resource"
	manifests "apoxy.dev/apoxy/internal/resource/manifest"
	"apoxy.dev/apoxy/internal/translate"
)

// newGatewayCommand is `apoxy gateway get NAME`: the Gateway with its listeners and the routes
// attached to it, with their status.
func newGatewayCommand(getter *clientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	c := &cobra.Command{Use: "gateway", Aliases: []string{"gw", "gateways"}, Short: "Show Gateways and the routes attached to them"}
	c.AddCommand(&cobra.Command{
		Use: "get NAME", Short: "Show a Gateway, its listeners and attached routes", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dc, err := getter.dynamicClient()
			if err != nil {
				return err
			}
			ns := getter.g.namespace
			if ns == "" {
				ns = "default"
			}
			return printGateway(cmd.Context(), streams.Out, dc, ns, args[0])
		},
	})
	return c
}

func printGateway(ctx context.Context, out io.Writer, dc dynamic.Interface, ns, name string) error {
	gw, err := dc.Resource(resource.MustKindOf(&gwapiv1.Gateway{}).GVR()).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	class, _, _ := unstructured.NestedString(gw.Object, "spec", "gatewayClassName")
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintf(w, "Gateway:\t%s/%s\n", ns, name)
	fmt.Fprintf(w, "Class:\t%s\n", class)
	addrs, _, _ := unstructured.NestedSlice(gw.Object, "status", "addresses")
	var av []string
	for _, a := range addrs {
		av = append(av, fmt.Sprint(a.(map[string]any)["value"]))
	}
	fmt.Fprintf(w, "Addresses:\t%s\n", strings.Join(av, ", "))
	conds, _, _ := unstructured.NestedSlice(gw.Object, "status", "conditions")
	fmt.Fprintf(w, "Conditions:\t%s\n", conditionSummary(conds))
	w.Flush()
	fmt.Fprintln(out, "\nLISTENERS")
	w = tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tPROTOCOL\tPORT\tHOSTNAME\tATTACHED\tCONDITIONS")
	listeners, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	statuses, _, _ := unstructured.NestedSlice(gw.Object, "status", "listeners")
	for _, l := range listeners {
		m := l.(map[string]any)
		attached, lconds := "?", []any(nil)
		for _, s := range statuses {
			sm := s.(map[string]any)
			if sm["name"] == m["name"] {
				attached = fmt.Sprint(sm["attachedRoutes"])
				lconds, _ = sm["conditions"].([]any)
			}
		}
		host := "*"
		if h, ok := m["hostname"].(string); ok {
			host = h
		}
		fmt.Fprintf(w, "%v\t%v\t%v\t%s\t%s\t%s\n", m["name"], m["protocol"], m["port"], host, attached, conditionSummary(lconds))
	}
	w.Flush()
	fmt.Fprintln(out, "\nROUTES")
	w = tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tNAMESPACE\tNAME\tHOSTNAMES\tSTATUS")
	for _, kind := range resource.Kinds() {
		if kind.Apply != resource.ApplyRoutes {
			continue // only route kinds attach to Gateways through parentRefs
		}
		routes, err := dc.Resource(kind.GVR()).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, r := range routes.Items {
			refs, _, _ := unstructured.NestedSlice(r.Object, "spec", "parentRefs")
			for i, ref := range refs {
				rm := ref.(map[string]any)
				rns := r.GetNamespace()
				if n, ok := rm["namespace"].(string); ok {
					rns = n
				}
				if rm["name"] != name || rns != ns {
					continue
				}
				hosts, _, _ := unstructured.NestedStringSlice(r.Object, "spec", "hostnames")
				parents, _, _ := unstructured.NestedSlice(r.Object, "status", "parents")
				st := "no status yet"
				if i < len(parents) {
					pc, _ := parents[i].(map[string]any)["conditions"].([]any)
					st = conditionSummary(pc)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", kind.GVK.Kind, r.GetNamespace(), r.GetName(), strings.Join(hosts, ","), st)
				break
			}
		}
	}
	return w.Flush()
}

// conditionSummary renders conditions as "Accepted=True Programmed=False(Invalid: message)".
func conditionSummary(conds []any) string {
	var parts []string
	for _, c := range conds {
		m := c.(map[string]any)
		s := fmt.Sprintf("%v=%v", m["type"], m["status"])
		bad := m["status"] != "True"
		if m["type"] == "Conflicted" {
			bad = m["status"] == "True"
		}
		if bad {
			s += fmt.Sprintf("(%v: %v)", m["reason"], m["message"])
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// newTranslateCommand is `apoxy translate -f FILE`: offline translation, printing the status
// the server would write and the snapshot the data plane would serve.
func newTranslateCommand(streams genericiooptions.IOStreams) *cobra.Command {
	var files []string
	c := &cobra.Command{
		Use:   "translate -f FILE",
		Short: "Translate API objects offline and print the resulting status and data-plane snapshot",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			docs, err := readManifests(files, false, streams.In)
			if err != nil {
				return err
			}
			var b strings.Builder
			for _, d := range docs {
				fmt.Fprintf(&b, "---\n%s\n", d.raw)
			}
			set, err := manifests.Load(strings.NewReader(b.String()))
			if err != nil {
				return err
			}
			snap, report := translate.Translate(set, translate.Options{Now: time.Now(), StatusAddresses: []string{"127.0.0.1"}})
			for _, doc := range []any{map[string]any{"status": report}, map[string]any{"snapshot": snap}} {
				y, err := yaml.Marshal(doc)
				if err != nil {
					return err
				}
				fmt.Fprintf(streams.Out, "---\n%s", y)
			}
			return nil
		},
	}
	c.Flags().StringSliceVarP(&files, "filename", "f", nil, "file, directory or - (stdin) with API objects")
	_ = c.MarkFlagRequired("filename")
	return c
}

// explainURL is `apoxy explain URL`: which route and rule of the current project would
// serve a request, why the others did not, and the effective TrafficPolicy of the route
// that serves it. It shadows kubectl's explain when the argument is a URL.
func explainURL(ctx context.Context, getter *clientGetter, out io.Writer, rawURL, method string, headers []string) error {
	dc, err := getter.dynamicClient()
	if err != nil {
		return err
	}
	return explain.URL(ctx, dc, out, rawURL, method, headers)
}
