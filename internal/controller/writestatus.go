package controller

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// WriteStatus replaces an object's status through the project's API (the /status subresource),
// as fieldManager, retrying on conflicts with the stored version. An object deleted meanwhile
// is no error. It is how the project controller's reconcilers (the EdgeFunction builder, the
// domain reconciler) report, so that what they write is what any client reads.
func WriteStatus(ctx context.Context, api dynamic.Interface, gvr schema.GroupVersionResource, kind string, m *metav1.ObjectMeta, st any, fieldManager string) error {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(st)
	if err != nil {
		return err
	}
	res := api.Resource(gvr).Namespace(m.Namespace)
	rv := m.ResourceVersion
	for attempt := 0; ; attempt++ {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": gvr.GroupVersion().String(), "kind": kind,
			"metadata": map[string]any{"name": m.Name, "namespace": m.Namespace, "resourceVersion": rv},
			"status":   obj,
		}}
		_, err := res.UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: fieldManager})
		switch {
		case err == nil || apierrors.IsNotFound(err):
			return nil
		case apierrors.IsConflict(err) && attempt < 5:
			cur, gerr := res.Get(ctx, m.Name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			rv = cur.GetResourceVersion()
		default:
			return err
		}
	}
}
