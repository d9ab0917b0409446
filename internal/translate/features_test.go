package translate

import (
	"slices"
	"testing"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/resource"
	"apoxy.dev/apoxy/internal/status"
)

// TestSupportedFeatures checks what an accepted GatewayClass advertises: the
// list is sorted by name, unique, within the CRD's 64-item limit, and carries
// the core HTTP profile.
func TestSupportedFeatures(t *testing.T) {
	set := &resource.Set{GatewayClasses: []*gwapiv1.GatewayClass{{}}}
	set.GatewayClasses[0].Name = "apoxy"
	set.GatewayClasses[0].Spec.ControllerName = gwapiv1.GatewayController(defaultControllerName)
	_, report := Translate(set, Options{})
	st := report.GatewayClasses[status.KeyOf("", "apoxy")]
	if st == nil {
		t.Fatal("class not accepted")
	}
	names := make([]string, 0, len(st.SupportedFeatures))
	for _, f := range st.SupportedFeatures {
		names = append(names, string(f.Name))
	}
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("supportedFeatures not sorted and unique: %v", names)
	}
	if len(names) > 64 {
		t.Errorf("supportedFeatures has %d items; the CRD allows 64", len(names))
	}
	for _, core := range []string{"Gateway", "HTTPRoute", "ReferenceGrant"} {
		if !slices.Contains(names, core) {
			t.Errorf("core feature %s missing from %v", core, names)
		}
	}
}
