package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"

	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
	"apoxy.dev/apoxy/internal/function/builder"
)

var (
	edgeFunctionsGVR = extv1a2.SchemeGroupVersion.WithResource("edgefunctions")
	revisionsGVR     = extv1a2.SchemeGroupVersion.WithResource("edgefunctionrevisions")
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
			msg, err := rollback(cmd.Context(), dc, ns(), args[0], to, unpin)
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

// revisionsOf lists a function's revisions, newest first.
func revisionsOf(ctx context.Context, dc dynamic.Interface, ns, name string) ([]*extv1a2.EdgeFunctionRevision, error) {
	l, err := dc.Resource(revisionsGVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: builder.LabelFunction + "=" + name})
	if err != nil {
		return nil, err
	}
	var out []*extv1a2.EdgeFunctionRevision
	for _, u := range l.Items {
		r := &extv1a2.EdgeFunctionRevision{}
		b, _ := json.Marshal(u.Object)
		if err := json.Unmarshal(b, r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, builder.NewestFirst)
	return out, nil
}

func printRevisions(ctx context.Context, out io.Writer, dc dynamic.Interface, ns, name string) error {
	ef, err := dc.Resource(edgeFunctionsGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	live, _, _ := unstructured.NestedString(ef.Object, "status", "liveRevision")
	pin, _, _ := unstructured.NestedString(ef.Object, "spec", "liveRevision")
	revs, err := revisionsOf(ctx, dc, ns, name)
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

// rollback pins (or unpins) a function's live revision and says what it did.
func rollback(ctx context.Context, dc dynamic.Interface, ns, name, to string, unpin bool) (string, error) {
	efs := dc.Resource(edgeFunctionsGVR).Namespace(ns)
	ef, err := efs.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if unpin {
		if _, err := efs.Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"liveRevision":null}}`), metav1.PatchOptions{}); err != nil {
			return "", err
		}
		return fmt.Sprintf("edgefunction/%s unpinned: the newest built revision serves", name), nil
	}
	live, _, _ := unstructured.NestedString(ef.Object, "status", "liveRevision")
	revs, err := revisionsOf(ctx, dc, ns, name)
	if err != nil {
		return "", err
	}
	ready := func(r *extv1a2.EdgeFunctionRevision) bool {
		return r.Status.Phase == extv1a2.RevisionReady && r.Status.Artifact != nil
	}
	var target *extv1a2.EdgeFunctionRevision
	if to != "" {
		for _, r := range revs {
			if r.Name == to || r.Name == name+"-"+to {
				target = r
			}
		}
		if target == nil {
			return "", fmt.Errorf("edgefunction %s has no revision %q (see `apoxy edgefunction revisions %s`)", name, to, name)
		}
		if !ready(target) {
			return "", fmt.Errorf("revision %s is %s, not built: only a built revision can serve", target.Name, or(string(target.Status.Phase), "Pending"))
		}
	} else {
		i := slices.IndexFunc(revs, func(r *extv1a2.EdgeFunctionRevision) bool { return r.Name == live })
		if live == "" || i < 0 {
			return "", fmt.Errorf("edgefunction %s has no live revision to roll back from; name one with --to", name)
		}
		for _, r := range revs[i+1:] {
			if ready(r) {
				target = r
				break
			}
		}
		if target == nil {
			return "", fmt.Errorf("edgefunction %s has no built revision older than %s (revisionHistoryLimit may have pruned them)", name, live)
		}
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"liveRevision": target.Name}})
	if _, err := efs.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return "", err
	}
	return fmt.Sprintf("edgefunction/%s rolled back to %s (pinned: `apoxy edgefunction rollback %s --unpin` serves the newest build again)", name, target.Name, name), nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
