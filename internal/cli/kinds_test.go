package cli

import (
	"bytes"
	"strings"
	"testing"
)

func testServed() *servedKinds {
	return &servedKinds{byGV: map[string][]string{
		"v1":                        {"Namespace", "Secret"},
		"gateway.apoxy.dev/v1":      {"Gateway", "GatewayClass", "HTTPRoute", "GRPCRoute"},
		"gateway.apoxy.dev/v1beta1": {"HTTPRoute", "ReferenceGrant"},
		"core.apoxy.dev/v1alpha2":   {"Backend", "Proxy"},
		"core.apoxy.dev/v1alpha":    {"TunnelNode"},
	}}
}

func TestCheckKinds(t *testing.T) {
	s := testServed()
	for _, tc := range []struct{ apiVersion, kind, want string }{
		{"gateway.apoxy.dev/v1", "HTTPRoute", ""},
		{"gateway.apoxy.dev/v1", "HTTPRoot", "did you mean HTTPRoute (gateway.apoxy.dev/v1, gateway.apoxy.dev/v1beta1)?"},
		{"gateway.apoxy.dev/v1", "httproute", "did you mean HTTPRoute"},
		{"core.apoxy.dev/v1alpha2", "Backends", "did you mean Backend"},
		{"gateway.apoxy.dev/v1", "Backend", "kind Backend is not served as gateway.apoxy.dev/v1; it is served as core.apoxy.dev/v1alpha2"},
		{"core.apoxy.dev/v9", "TunnelNode", "it is served as core.apoxy.dev/v1alpha"},
		{"gateway.apoxy.dev/v1", "Deployment", "gateway.apoxy.dev/v1 serves no kind \"Deployment\""},
		{"apps/v1", "Deployment", "no API \"apps/v1\" is served"},
	} {
		err := s.check(tc.apiVersion, tc.kind)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s %s: %v", tc.apiVersion, tc.kind, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "apoxy api-resources") {
			t.Errorf("%s %s: %v, want %q", tc.apiVersion, tc.kind, err, tc.want)
		}
	}
}

// An upstream Gateway API manifest is applied as ours, with a notice; one bad document
// stops the whole apply before anything is sent.
func TestCheckManifestsTranslatesUpstream(t *testing.T) {
	s := testServed()
	docs := []manifest{
		{source: "a.yaml#1", apiVersion: "gateway.networking.k8s.io/v1", kind: "HTTPRoute", raw: []byte("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  parentRefs: [{name: default}]\n")},
		{source: "a.yaml#2", apiVersion: "gateway.networking.k8s.io/v1beta1", kind: "ReferenceGrant", raw: []byte("apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g}\n")},
	}
	var notes bytes.Buffer
	if err := checkManifests(docs, s, &notes); err != nil {
		t.Fatal(err)
	}
	if docs[0].apiVersion != "gateway.apoxy.dev/v1" || !strings.Contains(string(docs[0].raw), "apiVersion: gateway.apoxy.dev/v1\n") || !strings.Contains(string(docs[0].raw), "parentRefs") {
		t.Errorf("translated: %s %s", docs[0].apiVersion, docs[0].raw)
	}
	if docs[1].apiVersion != "gateway.apoxy.dev/v1beta1" {
		t.Errorf("ReferenceGrant: %s", docs[1].apiVersion)
	}
	if n := strings.Count(notes.String(), "\n"); n != 2 || !strings.Contains(notes.String(), "a.yaml#1: gateway.networking.k8s.io/v1 HTTPRoute applied as gateway.apoxy.dev/v1") {
		t.Errorf("notices:\n%s", notes.String())
	}

	bad := []manifest{
		{source: "b.yaml#1", apiVersion: "core.apoxy.dev/v1alpha2", kind: "Backend", raw: []byte("x: y")},
		{source: "b.yaml#2", apiVersion: "gateway.apoxy.dev/v1", kind: "HTTPRoot", raw: []byte("x: y")},
		{source: "b.yaml#3", apiVersion: "gateway.networking.k8s.io/v1", kind: "TCPRoute", raw: []byte("x: y")},
	}
	err := checkManifests(bad, s, &notes)
	if err == nil || !strings.HasPrefix(err.Error(), "nothing was applied") || !strings.Contains(err.Error(), "b.yaml#2: no kind \"HTTPRoot\" is served: did you mean HTTPRoute") ||
		!strings.Contains(err.Error(), "b.yaml#3") || strings.Contains(err.Error(), "b.yaml#1") {
		t.Errorf("bad manifests: %v", err)
	}
}
