package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	upstreamGroup = "gateway.networking.k8s.io"
	ourGroup      = "gateway.apoxy.dev"
)

// facade is the client.Client the conformance suite talks to. Gateway API kinds go to our real
// API server (group rewritten, Service backendRefs turned into Backend refs); Namespaces and
// Secrets and ConfigMaps go to both; everything else (Services, Deployments, Pods...) lives in a
// controller-runtime fake store that the orchestrator turns into echo servers and Backends.
type facade struct {
	client.WithWatch // the fake store
	ours             dynamic.Interface
	orch             *orchestrator
}

var _ client.Client = (*facade)(nil)

func (f *facade) gvk(obj runtime.Object) (schema.GroupVersionKind, error) {
	if u, ok := obj.(runtime.Unstructured); ok {
		gvk := u.GetObjectKind().GroupVersionKind()
		if gvk.Kind != "" {
			return gvk, nil
		}
	}
	gvks, _, err := f.Scheme().ObjectKinds(obj)
	if err != nil {
		return schema.GroupVersionKind{}, err
	}
	return gvks[0], nil
}

// ourResource maps an upstream Gateway API kind to our resource.
func ourResource(kind string) schema.GroupVersionResource {
	kind = strings.TrimSuffix(kind, "List")
	plural := strings.ToLower(kind) + "s"
	switch kind {
	case "GatewayClass":
		plural = "gatewayclasses"
	case "BackendTLSPolicy":
		plural = "backendtlspolicies"
	}
	return schema.GroupVersionResource{Group: ourGroup, Version: "v1", Resource: plural}
}

func (f *facade) isGateway(obj runtime.Object) (schema.GroupVersionKind, bool) {
	gvk, err := f.gvk(obj)
	return gvk, err == nil && (gvk.Group == upstreamGroup || gvk.Group == ourGroup)
}

// dualKind names the core kind of obj when our API serves it too (Namespace, Secret,
// ConfigMap): those are written to both stores. Empty for every other object.
func (f *facade) dualKind(obj runtime.Object) string {
	switch obj.(type) {
	case *corev1.Namespace:
		return "Namespace"
	case *corev1.Secret:
		return "Secret"
	case *corev1.ConfigMap:
		return "ConfigMap"
	}
	if gvk, err := f.gvk(obj); err == nil && gvk.Group == "" {
		switch gvk.Kind {
		case "Namespace", "Secret", "ConfigMap":
			return gvk.Kind
		}
	}
	return ""
}

func coreResource(kind string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Version: "v1", Resource: strings.ToLower(kind) + "s"}
}

func (f *facade) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	gvk, ok := f.isGateway(obj)
	if !ok {
		return f.WithWatch.Get(ctx, key, obj, opts...)
	}
	u, err := f.ours.Resource(ourResource(gvk.Kind)).Namespace(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	return fromOurs(u, obj, gvk)
}

func (f *facade) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	gvk, ok := f.isGateway(list)
	if !ok {
		return f.WithWatch.List(ctx, list, opts...)
	}
	lo := &client.ListOptions{}
	lo.ApplyOptions(opts)
	ul, err := f.ours.Resource(ourResource(gvk.Kind)).Namespace(lo.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var items []any
	for i := range ul.Items {
		toUpstream(&ul.Items[i])
		ul.Items[i].SetAPIVersion(upstreamGroup + "/v1")
		items = append(items, ul.Items[i].Object)
	}
	m := map[string]any{"apiVersion": upstreamGroup + "/v1", "kind": strings.TrimSuffix(gvk.Kind, "List") + "List", "metadata": map[string]any{}, "items": items}
	if u, ok := list.(*unstructured.UnstructuredList); ok {
		return u.UnmarshalJSON(mustJSON(m))
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructured(m, list)
}

func (f *facade) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if kind := f.dualKind(obj); kind != "" {
		if err := f.createOurs(ctx, kind, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return f.WithWatch.Create(ctx, obj, opts...)
	}
	gvk, ok := f.isGateway(obj)
	if !ok {
		return f.WithWatch.Create(ctx, obj, opts...)
	}
	u, err := f.toOurs(obj, gvk)
	if err != nil {
		return err
	}
	u.SetResourceVersion("")
	created, err := f.ours.Resource(ourResource(gvk.Kind)).Namespace(obj.GetNamespace()).Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	return fromOurs(created, obj, gvk)
}

// ourCopy is obj as our API stores it: kind set, server-owned metadata cleared.
func ourCopy(kind string, obj client.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion("v1")
	u.SetKind(kind)
	u.SetResourceVersion("")
	u.SetUID("")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
	return u, nil
}

// createOurs copies a Namespace, Secret or ConfigMap into our API.
func (f *facade) createOurs(ctx context.Context, kind string, obj client.Object) error {
	u, err := ourCopy(kind, obj)
	if err != nil {
		return err
	}
	_, err = f.ours.Resource(coreResource(kind)).Namespace(u.GetNamespace()).Create(ctx, u, metav1.CreateOptions{})
	return err
}

// syncOurs makes our copy of a dual object match obj (created if missing).
func (f *facade) syncOurs(ctx context.Context, kind string, obj client.Object) error {
	u, err := ourCopy(kind, obj)
	if err != nil {
		return err
	}
	res := f.ours.Resource(coreResource(kind)).Namespace(u.GetNamespace())
	cur, err := res.Get(ctx, u.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = res.Create(ctx, u, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	u.SetResourceVersion(cur.GetResourceVersion())
	u.SetUID(cur.GetUID())
	_, err = res.Update(ctx, u, metav1.UpdateOptions{})
	return err
}

func (f *facade) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if kind := f.dualKind(obj); kind != "" {
		if err := f.WithWatch.Update(ctx, obj, opts...); err != nil {
			return err
		}
		return f.syncOurs(ctx, kind, obj)
	}
	gvk, ok := f.isGateway(obj)
	if !ok {
		return f.WithWatch.Update(ctx, obj, opts...)
	}
	u, err := f.toOurs(obj, gvk)
	if err != nil {
		return err
	}
	if u.GetResourceVersion() == "" {
		cur, err := f.ours.Resource(ourResource(gvk.Kind)).Namespace(obj.GetNamespace()).Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			return err
		}
		u.SetResourceVersion(cur.GetResourceVersion())
	}
	updated, err := f.ours.Resource(ourResource(gvk.Kind)).Namespace(obj.GetNamespace()).Update(ctx, u, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	return fromOurs(updated, obj, gvk)
}

// Patch applies the patch to the upstream-form object locally, then updates our copy, so
// Service backendRefs in the patch are rewritten like everything else.
func (f *facade) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if kind := f.dualKind(obj); kind != "" {
		if err := f.WithWatch.Patch(ctx, obj, patch, opts...); err != nil {
			return err
		}
		return f.syncOurs(ctx, kind, obj)
	}
	gvk, ok := f.isGateway(obj)
	if !ok {
		return f.WithWatch.Patch(ctx, obj, patch, opts...)
	}
	data, err := patch.Data(obj)
	if err != nil {
		return err
	}
	// A real API server applies a merge patch to the latest object, retrying its own
	// optimistic-concurrency conflicts; only a patch that names a resourceVersion may
	// fail with Conflict. Do the same, since our controller writes status concurrently.
	locked := bytes.Contains(data, []byte(`"resourceVersion"`))
	for attempt := 0; ; attempt++ {
		err = f.patchOnce(ctx, obj, gvk, patch.Type(), data)
		if locked || attempt == 10 || !apierrors.IsConflict(err) {
			return err
		}
	}
}

func (f *facade) patchOnce(ctx context.Context, obj client.Object, gvk schema.GroupVersionKind, pt types.PatchType, data []byte) error {
	cur, err := f.ours.Resource(ourResource(gvk.Kind)).Namespace(obj.GetNamespace()).Get(ctx, obj.GetName(), metav1.GetOptions{})
	if err != nil {
		return err
	}
	toUpstream(cur)
	cur.SetAPIVersion(upstreamGroup + "/v1")
	curJSON, _ := json.Marshal(cur.Object)
	var merged []byte
	switch pt {
	case types.MergePatchType:
		merged, err = jsonpatch.MergePatch(curJSON, data)
	case types.JSONPatchType:
		var p jsonpatch.Patch
		if p, err = jsonpatch.DecodePatch(data); err == nil {
			merged, err = p.Apply(curJSON)
		}
	default:
		return fmt.Errorf("facade: patch type %s not supported", pt)
	}
	if err != nil {
		return err
	}
	next := &unstructured.Unstructured{}
	if err := next.UnmarshalJSON(merged); err != nil {
		return err
	}
	if err := f.Update(ctx, next); err != nil {
		return err
	}
	return fromOurs(next, obj, gvk)
}

func (f *facade) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	if kind := f.dualKind(obj); kind != "" {
		if err := f.ours.Resource(coreResource(kind)).Namespace(obj.GetNamespace()).Delete(ctx, obj.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
			return err
		}
		return f.WithWatch.Delete(ctx, obj, opts...)
	}
	gvk, ok := f.isGateway(obj)
	if !ok {
		return f.WithWatch.Delete(ctx, obj, opts...)
	}
	return f.ours.Resource(ourResource(gvk.Kind)).Namespace(obj.GetNamespace()).Delete(ctx, obj.GetName(), metav1.DeleteOptions{})
}

// toOurs converts an upstream-form object to what our API stores.
func (f *facade) toOurs(obj client.Object, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(ourGroup + "/v1")
	u.SetKind(gvk.Kind)
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	rewriteGroups(u.Object, upstreamGroup, ourGroup)
	f.orch.rewriteBackendRefs(u)
	return u, nil
}

// fromOurs fills obj (typed or unstructured, upstream form) from our stored object.
func fromOurs(u *unstructured.Unstructured, obj runtime.Object, gvk schema.GroupVersionKind) error {
	toUpstream(u)
	u.SetAPIVersion(upstreamGroup + "/v1")
	u.SetKind(strings.TrimSuffix(gvk.Kind, "List"))
	if out, ok := obj.(*unstructured.Unstructured); ok {
		out.Object = u.DeepCopy().Object
		return nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return err
	}
	if a, err := meta.TypeAccessor(obj); err == nil {
		a.SetAPIVersion(upstreamGroup + "/v1")
		a.SetKind(gvk.Kind)
	}
	return nil
}

// toUpstream undoes toOurs on a stored object: groups back to upstream, and references to the
// Backends standing for Service ports back to the Service references the suite wrote, so an
// object the suite reads, edits and writes back is rewritten afresh.
func toUpstream(u *unstructured.Unstructured) {
	rewriteGroups(u.Object, ourGroup, upstreamGroup)
	restoreServiceRefs(u)
}

// rewriteGroups replaces the value of every "group" field (and apiVersion) naming from.
func rewriteGroups(v any, from, to string) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if s, ok := child.(string); ok && k == "group" && s == from {
				t[k] = to
				continue
			}
			rewriteGroups(child, from, to)
		}
	case []any:
		for _, c := range t {
			rewriteGroups(c, from, to)
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
