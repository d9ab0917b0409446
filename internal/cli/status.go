package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"apoxy.dev/apoxy/internal/overview"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
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
	if projects := projectSummary(ctx, getter); projects != "" {
		fmt.Fprintf(w, "Projects:\t%s\n", projects)
	}

	ov := overview.Collect(ctx, dc)
	var counts []string
	for _, c := range ov.Counts {
		counts = append(counts, fmt.Sprintf("%s %d", c.Kind.GVK.Kind, c.Count))
	}
	fmt.Fprintf(w, "Objects:\t%s\n", orNone(strings.Join(counts, ", ")))
	w.Flush()

	fmt.Fprintln(out, "\nGATEWAYS")
	w = tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	if len(ov.Gateways) == 0 {
		fmt.Fprintln(w, "  none: apply one (docs/examples/seed/gateway.yaml), or start `apoxy dev`, which makes \"default\"")
	}
	for _, gw := range ov.Gateways {
		var ls []string
		for _, l := range gw.Listeners {
			ls = append(ls, fmt.Sprintf("%s %s:%d (%s routes)", l.Name, l.Protocol, l.Port, l.Routes))
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\n", gw.Name, gw.State, strings.Join(ls, ", "))
	}
	w.Flush()

	if len(ov.Pending) > 0 {
		fmt.Fprintf(out, "\nNO STATUS YET (%d: just applied? run 'apoxy status' again)\n", len(ov.Pending))
		for _, p := range ov.Pending {
			fmt.Fprintf(out, "  %s\n", p)
		}
	}
	if len(ov.Problems) == 0 {
		if len(ov.Pending) == 0 {
			fmt.Fprintln(out, "\nEverything is Accepted and Programmed.")
		}
		return nil
	}
	fmt.Fprintf(out, "\nNEEDS ATTENTION (%d)\n", len(ov.Problems))
	for _, p := range ov.Problems {
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

// projectSummary lists every project with its readiness ("default Ready, staging Ready=False"),
// when the CLI holds the admin key; "" otherwise (a project key sees its own project only).
func projectSummary(ctx context.Context, getter *clientGetter) string {
	if cfg, err := getter.load(); err != nil || cfg.AdminToken == "" {
		return ""
	}
	client, err := adminClient(getter)
	if err != nil {
		return ""
	}
	list, err := client.List(ctx, metav1.ListOptions{})
	if err != nil {
		return "cannot list: " + err.Error()
	}
	var out []string
	for i := range list.Items {
		p := &list.Items[i]
		if r := readyStatus(p); r == "True" {
			out = append(out, p.GetName()+" Ready")
		} else {
			out = append(out, p.GetName()+" Ready="+r)
		}
	}
	return strings.Join(out, ", ")
}
