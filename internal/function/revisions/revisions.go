// Package revisions reads an EdgeFunction's revisions and rolls the function back or forward
// (pins its live revision), through the API with the caller's credentials.
package revisions

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
	"apoxy.dev/apoxy/internal/function/builder"
)

var (
	edgeFunctionsGVR = extv1a2.SchemeGroupVersion.WithResource("edgefunctions")
	revisionsGVR     = extv1a2.SchemeGroupVersion.WithResource("edgefunctionrevisions")
)

// List lists a function's revisions, newest first.
func List(ctx context.Context, dc dynamic.Interface, ns, name string) ([]*extv1a2.EdgeFunctionRevision, error) {
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

// Rollback pins a function's live revision (spec.liveRevision) to the revision to (its name or
// its suffix; "" is the newest built revision older than the live one), or with unpin lets the
// newest build serve again, and says what it did. `apoxy edgefunction rollback` and the
// console's Rollback buttons do this.
func Rollback(ctx context.Context, dc dynamic.Interface, ns, name, to string, unpin bool) (string, error) {
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
	revs, err := List(ctx, dc, ns, name)
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
