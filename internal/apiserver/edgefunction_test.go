package apiserver

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestSeedEdgeFunctionApplies: the seed's auth-check EdgeFunction is stored unchanged, with
// the defaults the docs promise filled in; a revision's spec cannot change once stored.
func TestSeedEdgeFunctionApplies(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	dc := s.dynamic(t, "default", s.AdminToken())
	ctx := context.Background()
	docs := documents(t, "../../docs/examples/seed/edgefunction.yaml")
	if len(docs) != 1 {
		t.Fatalf("%d documents", len(docs))
	}
	got, err := resourceFor(t, dc, docs[0]).Apply(ctx, "auth-check", docs[0], metav1.ApplyOptions{FieldManager: "seed", Force: true})
	if err != nil {
		t.Fatalf("apply the seed's EdgeFunction: %v", err)
	}
	str := func(fields ...string) string {
		v, _, _ := unstructured.NestedFieldNoCopy(got.Object, fields...)
		if v == nil {
			return "<nil>"
		}
		return fmt.Sprint(v)
	}
	for _, c := range []struct {
		path []string
		want string
	}{
		{[]string{"spec", "template", "mode"}, "filter"},
		{[]string{"spec", "template", "runtime", "timeout"}, "5s"},
		{[]string{"spec", "template", "runtime", "capabilities", "fetchAPI"}, "true"},
		{[]string{"spec", "template", "runtime", "port"}, "8080"},
		{[]string{"spec", "revisionHistoryLimit"}, "10"},
		{[]string{"spec", "template", "code", "jsSource", "entrypoint"}, "index.js"},
	} {
		if g := str(c.path...); g != c.want {
			t.Errorf("%s = %s, want %s", strings.Join(c.path, "."), g, c.want)
		}
	}
	files, _, _ := unstructured.NestedSlice(got.Object, "spec", "template", "code", "jsSource", "assets", "files")
	if len(files) != 1 || !strings.Contains(files[0].(map[string]any)["content"].(string), `return new Response("Unauthorized", { status: 401 });`) {
		t.Errorf("the function's code was not stored as written: %v", files)
	}

	// A revision is immutable.
	revs := dc.Resource(schema.GroupVersionResource{Group: "extensions.apoxy.dev", Version: "v1alpha2", Resource: "edgefunctionrevisions"}).Namespace("default")
	rev := obj(t, "apiVersion: extensions.apoxy.dev/v1alpha2\nkind: EdgeFunctionRevision\nmetadata: {name: auth-check-1}\nspec: {mode: filter, code: {wasmSource: {url: 'https://e.com/a.wasm'}}}")
	stored, err := revs.Create(ctx, rev, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unstructured.SetNestedField(stored.Object, "https://e.com/b.wasm", "spec", "code", "wasmSource", "url")
	if _, err := revs.Update(ctx, stored, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "a revision is immutable") {
		t.Errorf("changing a revision's spec: %v, want refused as immutable", err)
	}
}
