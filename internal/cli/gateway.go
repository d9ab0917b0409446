package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
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

	"apoxy.dev/apoxy/internal/controller"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/route"
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
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL (e.g. http://api.example.com:8080/v1)", rawURL)
	}
	dc, err := getter.dynamicClient()
	if err != nil {
		return err
	}
	set, err := controller.LoadSet(ctx, dc)
	if err != nil {
		return err
	}
	snap, _ := translate.Translate(set, translate.Options{Now: time.Now()})
	return explainRequest(out, snap, u, method, headers)
}

// explainRequest prints which route of a translated snapshot serves the request, why the
// others did not, and the served route's effective TrafficPolicy with the source of each
// block.
func explainRequest(out io.Writer, snap *ir.Snapshot, u *url.URL, method string, headers []string) error {
	host, portStr, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, portStr = u.Host, ""
	}
	proto := ir.ProtocolHTTP
	if u.Scheme == "https" {
		proto = ir.ProtocolHTTPS
	}
	hdr := http.Header{}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return fmt.Errorf("header %q: use NAME:VALUE", h)
		}
		hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	req := &route.Request{Host: strings.ToLower(host), Method: method, Path: path, Header: hdr, RawQuery: u.RawQuery}
	fmt.Fprintf(out, "Request: %s %s\n", method, u)
	found := false
	for _, l := range snap.Listeners {
		if l.Protocol != proto || (portStr != "" && strconv.Itoa(int(l.Port)) != portStr) {
			continue
		}
		found = true
		tab, err := route.Compile(l, func(r *ir.Route) (*ir.Route, error) { return r, nil })
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "Listener: %s (%s)\n", l.Name, l.Protocol)
		cands := tab.Explain(req)
		if len(cands) == 0 {
			fmt.Fprintf(out, "  no virtual host serves %q: the gateway answers 404\n", host)
			continue
		}
		var servedBy *ir.Route
		for _, c := range cands {
			r := c.Entry.Route
			if c.Reason == "" {
				fmt.Fprintf(out, "  SERVED BY  %s  (host %s)  %s\n", r.Name, c.Entry.VirtualHost.Hostname, action(r))
				servedBy = r
			} else {
				fmt.Fprintf(out, "  skipped    %s: %s\n", r.Name, c.Reason)
			}
		}
		if servedBy == nil {
			fmt.Fprintln(out, "  no route matches: the gateway answers 404")
		} else if err := printPolicy(out, snap, servedBy); err != nil {
			return err
		}
	}
	if !found {
		fmt.Fprintf(out, "No %s listener", proto)
		if portStr != "" {
			fmt.Fprintf(out, " on port %s", portStr)
		}
		fmt.Fprintln(out, " in this project.")
	}
	return nil
}

func action(r *ir.Route) string {
	switch {
	case r.Redirect != nil:
		return fmt.Sprintf("-> redirect %d", r.Redirect.StatusCode)
	case r.DirectResponse != nil:
		return fmt.Sprintf("-> direct response %d", r.DirectResponse.StatusCode)
	}
	var bs []string
	for _, b := range r.Backends {
		if b.Invalid {
			bs = append(bs, fmt.Sprintf("invalid backendRef (weight %d, answers 500)", b.Weight))
		} else {
			bs = append(bs, fmt.Sprintf("%s:%d (weight %d)", b.Backend, b.Port, b.Weight))
		}
	}
	return "-> " + strings.Join(bs, ", ")
}
