package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"

	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
	"apoxy.dev/apoxy/internal/function/builder"
	"apoxy.dev/apoxy/internal/function/revisions"
)

var (
	edgeFunctionsGVR = extv1a2.SchemeGroupVersion.WithResource("edgefunctions")
)

// newEdgeFunctionCommand is `apoxy edgefunction`: a function's revisions, and rollback.
func newEdgeFunctionCommand(getter *clientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	c := &cobra.Command{Use: "edgefunction", Aliases: []string{"ef", "edgefunctions"}, Short: "Show an EdgeFunction's revisions, roll back or forward"}
	ns := func() string {
		if getter.g.namespace == "" {
			return "default"
		}
		return getter.g.namespace
	}
	c.AddCommand(&cobra.Command{
		Use: "revisions NAME", Short: "List a function's revisions, newest first, marking the live one", Args: cobra.ExactArgs(1),
		Example: "  apoxy edgefunction revisions auth-check",
		RunE: func(cmd *cobra.Command, args []string) error {
			dc, err := getter.dynamicClient()
			if err != nil {
				return err
			}
			return printRevisions(cmd.Context(), streams.Out, dc, ns(), args[0])
		},
	})
	var to string
	var unpin bool
	rb := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Serve an earlier built revision (the one before the live one, or --to REVISION)",
		Long: `Rollback pins the function's live revision (spec.liveRevision): the revision built before the
one serving now, or the one --to names (its full name or its hash suffix). The switch is atomic:
requests in flight finish on the revision they started on. A pin holds while new templates are
applied and built; --unpin serves the newest built revision again.`,
		Example: "  apoxy edgefunction rollback auth-check\n  apoxy edgefunction rollback auth-check --to 42020e4805\n  apoxy edgefunction rollback auth-check --unpin",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dc, err := getter.dynamicClient()
			if err != nil {
				return err
			}
			msg, err := revisions.Rollback(cmd.Context(), dc, ns(), args[0], to, unpin)
			if err != nil {
				return err
			}
			fmt.Fprintln(streams.Out, msg)
			return nil
		},
	}
	rb.Flags().StringVar(&to, "to", "", "the revision to serve (name or hash suffix)")
	rb.Flags().BoolVar(&unpin, "unpin", false, "clear the pin: serve the newest built revision")
	c.AddCommand(rb)
	return c
}

func printRevisions(ctx context.Context, out io.Writer, dc dynamic.Interface, ns, name string) error {
	ef, err := dc.Resource(edgeFunctionsGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	live, _, _ := unstructured.NestedString(ef.Object, "status", "liveRevision")
	pin, _, _ := unstructured.NestedString(ef.Object, "spec", "liveRevision")
	revs, err := revisions.List(ctx, dc, ns, name)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "REVISION\tNUMBER\tPHASE\tRUNTIME\tDIGEST\tCREATED\tLIVE")
	for _, r := range revs {
		runtime, digest := "", ""
		if a := r.Status.Artifact; a != nil {
			runtime, digest = a.Runtime, a.Digest
			if len(digest) > 19 {
				digest = digest[:19]
			}
		}
		mark := ""
		switch {
		case r.Name == live && r.Name == pin:
			mark = "live (pinned)"
		case r.Name == live:
			mark = "live"
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Name, builder.Number(r), r.Status.Phase, runtime, digest, r.CreationTimestamp.UTC().Format("2006-01-02T15:04:05Z"), mark)
	}
	return w.Flush()
}
