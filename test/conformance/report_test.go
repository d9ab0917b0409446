package conformance

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/pkg/features"
)

// TestReport checks the report's bookkeeping on a small fixed set: skip
// reasons name the missing feature and why, profiles pick the right tests,
// and failures are listed by name.
func TestReport(t *testing.T) {
	have := sets.New(features.SupportGateway, features.SupportHTTPRoute, features.SupportReferenceGrant)
	httpCore := suite.ConformanceTest{ShortName: "A", Features: []features.FeatureName{features.SupportGateway, features.SupportHTTPRoute}}
	tlsr := suite.ConformanceTest{ShortName: "B", Features: []features.FeatureName{features.SupportGateway, features.SupportTLSRoute, features.SupportTLSRouteModeTerminate}}
	mesh := suite.ConformanceTest{ShortName: "C", Features: []features.FeatureName{features.SupportMesh, features.SupportMeshConsumerRoute}}
	failing := suite.ConformanceTest{ShortName: "D", Features: []features.FeatureName{features.SupportGateway}}

	if r := skipReason(httpCore, have); r != "" {
		t.Errorf("core HTTP test skipped: %q", r)
	}
	if r := skipReason(tlsr, have); !strings.Contains(r, "TLSRouteModeTerminate (") || !strings.Contains(r, "not implemented yet") {
		t.Errorf("TLSRouteModeTerminate skip reason = %q, want the feature and why", r)
	}
	if r := skipReason(mesh, have); strings.Count(r, "Kubernetes-only") != 2 {
		t.Errorf("mesh skip reason = %q, want a reason for each mesh feature", r)
	}
	if !coreOnly(httpCore, suite.GatewayHTTPConformanceProfile) || coreOnly(tlsr, suite.GatewayHTTPConformanceProfile) {
		t.Error("coreOnly misclassifies")
	}
	if !inProfile(tlsr, suite.GatewayTLSConformanceProfile) || inProfile(tlsr, suite.GatewayHTTPConformanceProfile) {
		t.Error("TLSRoute test must count under GATEWAY-TLS only")
	}
	if inProfile(failing, suite.GatewayTCPConformanceProfile) || !inProfile(failing, suite.GatewayHTTPConformanceProfile) {
		t.Error("Gateway-only test must count under GATEWAY-HTTP only")
	}

	out := renderReport(have, []result{
		{test: httpCore, passed: true},
		{test: tlsr, skip: skipReason(tlsr, have)},
		{test: mesh, skip: skipReason(mesh, have)},
		{test: failing},
	})
	for _, want := range []string{
		"UNOFFICIAL",
		"all tests: passed 1, failed 1, skipped 2",
		"profile GATEWAY-HTTP: passed 1, failed 1, skipped 0",
		"profile GATEWAY-TLS: passed 0, failed 0, skipped 1",
		"  FAILED D\n",
		"TLSRouteModeTerminate (not implemented yet)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
