package gwschema

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

func TestLoadsEveryKind(t *testing.T) {
	schemas, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"GatewayClass", "Gateway", "HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute", "ReferenceGrant", "BackendTLSPolicy", "ListenerSet"} {
		if schemas[kind] == nil {
			t.Errorf("no schema for %s", kind)
		}
	}
	if s := schemas["GatewayClass"]; s == nil || s.Namespaced {
		t.Error("GatewayClass must be cluster-scoped")
	}
}

// TestEmbeddedCRDsPassTheCRDSelfCheck runs the checks kube-apiserver applies when a CRD is
// created (structural schema, CEL compilation and cost), and guards the group rewrite: no CEL
// rule may mention the upstream group, or canonicalising before validation would change its
// meaning.
func TestEmbeddedCRDsPassTheCRDSelfCheck(t *testing.T) {
	entries, err := crdFiles.ReadDir("crds")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, _ := crdFiles.ReadFile("crds/" + e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := yaml.UnmarshalStrict(data, &crd); err != nil {
				t.Fatal(err)
			}
			apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(&crd)
			var internal apiextensions.CustomResourceDefinition
			if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(&crd, &internal, nil); err != nil {
				t.Fatal(err)
			}
			if errs := apiextvalidation.ValidateCustomResourceDefinition(context.Background(), &internal); len(errs) > 0 {
				t.Fatalf("CRD self-check: %v", errs.ToAggregate())
			}
			for _, line := range strings.Split(string(data), "\n") {
				if strings.Contains(line, "rule:") && strings.Contains(line, UpstreamGroup) {
					t.Errorf("a CEL rule names %s: %s", UpstreamGroup, line)
				}
			}
		})
	}
}

func decode(t testing.TB, y string) map[string]any {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := utiljson.Unmarshal(j, &m); err != nil { // int64 numbers, as CEL needs
		t.Fatal(err)
	}
	return m
}

func TestDefaultsUseOurGroup(t *testing.T) {
	schemas, _ := Load()
	route := decode(t, `
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}, {group: gateway.networking.k8s.io, kind: Gateway, name: other}]
  rules:
  - matches: [{path: {value: /api}}, {headers: [{name: x-a, value: b}]}]
    backendRefs: [{kind: Backend, name: be, port: 80}]
`)
	schemas["HTTPRoute"].Default(route)
	spec := route["spec"].(map[string]any)
	refs := spec["parentRefs"].([]any)
	for i, r := range refs {
		if g := r.(map[string]any)["group"]; g != Group {
			t.Errorf("parentRefs[%d].group = %v, want %s", i, g, Group)
		}
	}
	m := spec["rules"].([]any)[0].(map[string]any)["matches"].([]any)
	if pt := m[0].(map[string]any)["path"].(map[string]any)["type"]; pt != "PathPrefix" {
		t.Errorf("path type default = %v, want PathPrefix", pt)
	}
	if errs := schemas["HTTPRoute"].Validate(context.Background(), route, nil); len(errs) > 0 {
		t.Errorf("defaulted route invalid: %v", errs)
	}
}

func TestRatchetingKeepsOldInvalidFields(t *testing.T) {
	s, _ := Load()
	hr := s["HTTPRoute"]
	old := decode(t, "apiVersion: gateway.apoxy.dev/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  hostnames: [a.example.com]\n  rules: [{matches: [{path: {type: PathPrefix, value: api}}]}]\n")
	if errs := hr.Validate(context.Background(), old, nil); len(errs) == 0 {
		t.Fatal("relative path accepted on create")
	}
	upd := decode(t, "apiVersion: gateway.apoxy.dev/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  hostnames: [b.example.com]\n  rules: [{matches: [{path: {type: PathPrefix, value: api}}]}]\n")
	if errs := hr.Validate(context.Background(), upd, old); len(errs) > 0 {
		t.Errorf("update touching only hostnames rejected by an untouched old field: %v", errs)
	}
	gc := s["GatewayClass"]
	oldGC := decode(t, "apiVersion: gateway.apoxy.dev/v1\nkind: GatewayClass\nmetadata: {name: c}\nspec: {controllerName: a.dev/x}\n")
	newGC := decode(t, "apiVersion: gateway.apoxy.dev/v1\nkind: GatewayClass\nmetadata: {name: c}\nspec: {controllerName: a.dev/y}\n")
	if errs := gc.Validate(context.Background(), newGC, oldGC); len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), "immutable") {
		t.Errorf("controllerName change: errs = %v, want immutable", errs)
	}
}

// FuzzHTTPRouteSchema feeds arbitrary YAML through defaulting and validation: nothing panics,
// and defaulting is idempotent.
func FuzzHTTPRouteSchema(f *testing.F) {
	for _, s := range []string{
		"spec: {parentRefs: [{name: default}], hostnames: [api.example.com], rules: [{matches: [{path: {type: PathPrefix, value: /v1}}], backendRefs: [{kind: Backend, name: b, port: 8080}]}]}",
		"spec: {rules: [{filters: [{type: RequestRedirect, requestRedirect: {statusCode: 301}}]}]}",
		"spec: {rules: [{timeouts: {request: 1s, backendRequest: 5s}}]}",
		"spec: {hostnames: ['*.example.com'], rules: [{matches: [{headers: [{name: x, type: RegularExpression, value: '.*'}]}]}]}",
	} {
		f.Add(s)
	}
	schemas, err := Load()
	if err != nil {
		f.Fatal(err)
	}
	hr := schemas["HTTPRoute"]
	f.Fuzz(func(t *testing.T, in string) {
		j, err := yaml.YAMLToJSON([]byte(in))
		if err != nil {
			return
		}
		var m map[string]any
		if utiljson.Unmarshal(j, &m) != nil || m == nil {
			return
		}
		m["apiVersion"], m["kind"] = "gateway.apoxy.dev/v1", "HTTPRoute"
		m["metadata"] = map[string]any{"name": "r"}
		hr.Default(m)
		once, _ := utiljson.Marshal(m)
		hr.Default(m)
		twice, _ := utiljson.Marshal(m)
		if string(once) != string(twice) {
			t.Fatalf("defaulting not idempotent:\n%s\n%s", once, twice)
		}
		_ = hr.Validate(context.Background(), m, nil)
	})
}
