package apiserver

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestSeedTunnelNodeApplies: the seed's TunnelNode (core.apoxy.dev/v1alpha) is stored
// unchanged; a name that cannot be a DNS label of the tunnel domain is refused with the field.
func TestSeedTunnelNodeApplies(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	dc := s.dynamic(t, "default", s.AdminToken())
	ctx := context.Background()
	docs := documents(t, "../../docs/examples/seed/tunnelnode.yaml")
	if len(docs) != 1 {
		t.Fatalf("%d documents", len(docs))
	}
	res := resourceFor(t, dc, docs[0])
	got, err := res.Apply(ctx, "office-link", docs[0], metav1.ApplyOptions{FieldManager: "seed", Force: true})
	if err != nil {
		t.Fatalf("apply the seed's TunnelNode: %v", err)
	}
	if on, _, _ := unstructured.NestedBool(got.Object, "spec", "egressGateway", "enabled"); !on || got.GetNamespace() != "" {
		t.Errorf("stored %v", got.Object)
	}
	bad := obj(t, "apiVersion: core.apoxy.dev/v1alpha\nkind: TunnelNode\nmetadata: {name: office.link}\nspec: {}")
	_, err = res.Create(ctx, bad, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "metadata.name") || !strings.Contains(err.Error(), "tun.") {
		t.Errorf("a dotted name: %v", err)
	}
}
