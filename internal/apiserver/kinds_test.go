package apiserver

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	"apoxy.dev/apoxy/internal/gwschema"
	"apoxy.dev/apoxy/internal/resource"
)

// condition is a valid metav1.Condition in YAML, for sample statuses.
const condition = `{type: Accepted, status: "True", reason: Accepted, message: set by the kinds test, lastTransitionTime: "2024-01-01T00:00:00Z", observedGeneration: 1}`

// kindSamples holds a minimal valid object of every registered kind (apiVersion and kind come
// from the registry) and, for kinds with a /status subresource, a status to write through it
// (empty: the kind has a /status but its type no status, so the write changes nothing).
// TestEveryKindRoundTrips fails for a registered kind without a sample, so a new kind gets one.
var kindSamples = map[string]struct{ object, status string }{
	"Namespace": {"metadata: {name: kinds-test}", "{phase: Active, conditions: [{type: KindsTest, status: 'True', reason: Test, message: set by the kinds test}]}"},
	"Secret":    {"metadata: {name: kinds-test}\ntype: Opaque\ndata: {key: dmFsdWU=}", ""},
	"ConfigMap": {"metadata: {name: kinds-test}\ndata: {key: value}", ""},

	"Backend":                    {"metadata: {name: kinds-test}\nspec: {protocol: h2, endpoints: [{fqdn: api.example.com}]}", "{observedGeneration: 1, conditions: [" + condition + "]}"},
	"Proxy":                      {"metadata: {name: kinds-test}\nspec: {provider: unmanaged}", "{addresses: [192.0.2.1]}"},
	"DirectResponse":             {"metadata: {name: kinds-test}\nspec: {statusCode: 204}", "{observedGeneration: 1}"},
	"CloudMonitoringIntegration": {"metadata: {name: kinds-test}\nspec: {otlp: {endpoint: 'https://otlp.example.com'}}", "{observedGeneration: 1, conditions: [" + condition + "]}"},
	"HTTPRouteFilter":            {"metadata: {name: kinds-test}\nspec: {compressor: {algorithms: [gzip]}}", "{observedGeneration: 1}"},
	"EdgeFunction":               {"metadata: {name: kinds-test}\nspec: {template: {mode: filter, code: {jsSource: {assets: {files: [{path: index.js, content: 'export default {}'}]}}}}}", "{observedGeneration: 1, liveRevision: kinds-test-abc, conditions: [" + condition + "]}"},
	"EdgeFunctionRevision":       {"metadata: {name: kinds-test}\nspec: {code: {wasmSource: {url: 'https://example.com/f.wasm'}}}", "{phase: Ready, artifact: {digest: 'sha256:00', runtime: wasm, size: 1}}"},
	"DomainZone":                 {"metadata: {name: kinds-test.example}", "{observedGeneration: 1, phase: Active, domainName: kinds-test.example, serial: 7, conditions: [" + condition + "]}"},
	"DomainRecord":               {"metadata: {name: kinds-test}\nspec: {zone: kinds-test.example, name: www.kinds-test.example, target: {dns: {a: [192.0.2.1]}}}", "{observedGeneration: 1, phase: Active, type: A, resolvedValues: [192.0.2.1], conditions: [" + condition + "]}"},
	"TunnelNode":                 {"metadata: {name: kinds-test}\nspec: {egressGateway: {enabled: true}}", "{observedGeneration: 1, addresses: [\"192.0.2.1:8443\"], credentials: {token: t}, prefix: \"fd00::/80\", agents: [{name: a, connectedAt: \"2026-01-01T00:00:00Z\"}], conditions: [" + condition + "]}"},

	"GatewayClass":   {"metadata: {name: kinds-test}\nspec: {controllerName: example.com/kinds-test}", "{conditions: [" + condition + "]}"},
	"Gateway":        {"metadata: {name: kinds-test}\nspec: {gatewayClassName: apoxy, listeners: [{name: http, protocol: HTTP, port: 9080}]}", "{conditions: [" + condition + "]}"},
	"ListenerSet":    {"metadata: {name: kinds-test}\nspec: {parentRef: {name: default}, listeners: [{name: extra, protocol: HTTP, port: 9081}]}", "{conditions: [" + condition + "]}"},
	"HTTPRoute":      {"metadata: {name: kinds-test}\nspec: {parentRefs: [{name: default}], rules: [{backendRefs: [{kind: Backend, group: core.apoxy.dev, name: kinds-test, port: 80}]}]}", routeStatus},
	"GRPCRoute":      {"metadata: {name: kinds-test}\nspec: {parentRefs: [{name: default}], rules: [{backendRefs: [{kind: Backend, group: core.apoxy.dev, name: kinds-test, port: 80}]}]}", routeStatus},
	"TCPRoute":       {"metadata: {name: kinds-test}\nspec: {parentRefs: [{name: default}], rules: [{backendRefs: [{kind: Backend, group: core.apoxy.dev, name: kinds-test, port: 80}]}]}", routeStatus},
	"UDPRoute":       {"metadata: {name: kinds-test}\nspec: {parentRefs: [{name: default}], rules: [{backendRefs: [{kind: Backend, group: core.apoxy.dev, name: kinds-test, port: 80}]}]}", routeStatus},
	"TLSRoute":       {"metadata: {name: kinds-test}\nspec: {parentRefs: [{name: default}], hostnames: [tls.example.com], rules: [{backendRefs: [{kind: Backend, group: core.apoxy.dev, name: kinds-test, port: 443}]}]}", routeStatus},
	"ReferenceGrant": {"metadata: {name: kinds-test}\nspec: {from: [{group: gateway.apoxy.dev, kind: HTTPRoute, namespace: other}], to: [{group: core.apoxy.dev, kind: Backend}]}", ""},
	"BackendTLSPolicy": {"metadata: {name: kinds-test}\nspec: {targetRefs: [{group: core.apoxy.dev, kind: Backend, name: kinds-test}], validation: {hostname: api.example.com, wellKnownCACertificates: System}}",
		"{ancestors: [{ancestorRef: {name: default}, controllerName: gateway.apoxy.dev/gatewayclass-controller, conditions: [" + condition + "]}]}"},

	"TrafficPolicy": {"metadata: {name: kinds-test}\nspec: {targetRefs: [{kind: HTTPRoute, name: kinds-test, sectionName: login}], timeouts: {request: 10s}}",
		"{ancestors: [{ancestorRef: {name: default}, controllerName: gateway.apoxy.dev/gatewayclass-controller, conditions: [" + condition + "]}]}"},
	"AuthPolicy": {"metadata: {name: kinds-test}\nspec: {targetRefs: [{kind: HTTPRoute, name: kinds-test}], cors: {allowOrigins: ['https://app.example.com']}}",
		"{ancestors: [{ancestorRef: {name: default}, controllerName: gateway.apoxy.dev/gatewayclass-controller, conditions: [" + condition + "]}]}"},

	"Project": {"metadata: {name: kinds-test}", "{conditions: [" + condition + "]}"},
}

const routeStatus = "{parents: [{parentRef: {name: default}, controllerName: gateway.apoxy.dev/gatewayclass-controller, conditions: [" + condition + "]}]}"

// TestEveryKindRoundTrips walks every registered kind through create, get, a status update
// (kinds with a /status subresource; the others must not have one) and delete against a real
// server, at the place the registry says it is served (project or root, namespaced or not).
func TestEveryKindRoundTrips(t *testing.T) {
	t.Parallel()
	for _, k := range resource.Kinds() {
		if _, ok := kindSamples[k.GVK.Kind]; !ok {
			t.Errorf("%s is registered but has no sample in kindSamples: add a minimal valid object", k)
		}
	}
	for kind := range kindSamples {
		found := false
		for _, k := range resource.Kinds() {
			found = found || k.GVK.Kind == kind
		}
		if !found {
			t.Errorf("kindSamples has %s, which is not registered", kind)
		}
	}
	s := startServer(t, "")
	ctx := context.Background()
	for _, k := range resource.Kinds() {
		sample, ok := kindSamples[k.GVK.Kind]
		if !ok {
			continue
		}
		t.Run(k.GVK.Kind, func(t *testing.T) {
			project := "default"
			if k.Root {
				project = ""
			}
			var rc dynamic.ResourceInterface = s.dynamic(t, project, s.AdminToken()).Resource(k.GVR())
			if k.Namespaced {
				rc = rc.(dynamic.NamespaceableResourceInterface).Namespace("default")
			}
			want := obj(t, sample.object)
			want.SetAPIVersion(k.GVK.GroupVersion().String())
			want.SetKind(k.GVK.Kind)
			name := want.GetName()

			if _, err := rc.Create(ctx, want, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
				t.Fatalf("create: %v", err)
			}
			got, err := rc.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			delete(want.Object, "metadata")
			if err := contains(got.Object, want.Object, ""); err != nil {
				t.Errorf("get returned another object: %v", err)
			}

			if !k.HasStatus() {
				if _, err := rc.UpdateStatus(ctx, got, metav1.UpdateOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("status update of a kind without /status: err = %v, want 404", err)
				}
			} else {
				st := map[string]any{}
				if sample.status != "" {
					st = obj(t, sample.status).Object
				}
				var written *unstructured.Unstructured
				// Project status is also written by the server (Ready); retry on its conflicts.
				err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
					cur, err := rc.Get(ctx, name, metav1.GetOptions{})
					if err != nil {
						return err
					}
					if len(st) > 0 {
						cur.Object["status"] = st
					}
					written, err = rc.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
					return err
				})
				if err != nil {
					t.Fatalf("status update: %v", err)
				}
				if len(st) > 0 {
					if err := contains(written.Object["status"], st, "status"); err != nil {
						t.Errorf("status update did not land: %v", err)
					}
				}
				if err := contains(written.Object, want.Object, ""); err != nil {
					t.Errorf("status update changed the object: %v", err)
				}
			}

			if err := rc.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if _, err := rc.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("get after delete: err = %v, want 404", err)
			}
		})
	}
}

// contains reports how got differs from want, where want may leave out map keys (server
// defaults and metadata) but every value it has must be in got; numbers compare by value.
func contains(got, want any, path string) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: got %v, want an object", path, got)
		}
		for key, v := range w {
			if err := contains(g[key], v, path+"."+key); err != nil {
				return err
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: got %v, want %v", path, got, want)
		}
		for i := range w {
			if err := contains(g[i], w[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	default:
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("%s: got %v, want %v", path, got, want)
		}
	}
	return nil
}

// TestServeRefusesIncompleteEntries: a registry entry is served only with rules from its one
// source, and a Gateway API entry only as its upstream CRD declares it.
func TestServeRefusesIncompleteEntries(t *testing.T) {
	schemas, err := gwschema.Load()
	if err != nil {
		t.Fatal(err)
	}
	edited := func(obj runtime.Object, change func(k *resource.Kind)) *resource.Kind {
		k := *resource.MustKindOf(obj)
		change(&k)
		return &k
	}
	for name, tc := range map[string]struct {
		kind *resource.Kind
		want string
	}{
		"plural differs from the CRD":   {edited(&gwapiv1.HTTPRoute{}, func(k *resource.Kind) { k.Plural = "routes" }), "differs from the upstream CRD"},
		"scope differs from the CRD":    {edited(&gwapiv1.GatewayClass{}, func(k *resource.Kind) { k.Namespaced = true }), "differs from the upstream CRD"},
		"upstream short name missing":   {edited(&gwapiv1.Gateway{}, func(k *resource.Kind) { k.ShortNames = []string{"gw"} }), `lacks the upstream short name "gtw"`},
		"Gateway API kind with rules":   {edited(&gwapiv1.HTTPRoute{}, func(k *resource.Kind) { k.Serving.Columns = []resource.Column{{Name: "X"}} }), "upstream CRD schema"},
		"core kind with rules":          {edited(&corev1.Secret{}, func(k *resource.Kind) { k.Serving.Columns = []resource.Column{{Name: "X"}} }), "core.go"},
		"Apoxy kind without validation": {edited(&corev1a2.Backend{}, func(k *resource.Kind) { k.Serving.Validate = nil }), "has no validation"},
		"kind not in Scheme":            {edited(&corev1a2.Backend{}, func(k *resource.Kind) { k.GVK.Kind = "Teleporter" }), "not in Scheme"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := serve(tc.kind, schemas)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("serve: err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := ProjectResources(); err != nil {
		t.Errorf("project kinds: %v", err)
	}
	if _, err := RootResources(); err != nil {
		t.Errorf("root kinds: %v", err)
	}
}
