package apiserver

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestInvalidObjectsRejected sends invalid objects of every kind through the real API and checks
// that each is rejected with the offending field named, and that nothing was stored.
func TestInvalidObjectsRejected(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	dc := s.dynamic(t, "default", s.AdminToken())

	backend := func(spec string) string {
		return "apiVersion: core.apoxy.dev/v1alpha2\nkind: Backend\nmetadata: {name: bad}\nspec:\n" + spec
	}
	route := func(spec string) string {
		return "apiVersion: gateway.apoxy.dev/v1\nkind: HTTPRoute\nmetadata: {name: bad}\nspec:\n  parentRefs: [{name: default}]\n" + spec
	}
	rule := func(r string) string { return route("  rules:\n  - " + r + "\n") }
	edgeFunction := func(template string) string {
		return "apiVersion: extensions.apoxy.dev/v1alpha2\nkind: EdgeFunction\nmetadata: {name: bad}\nspec:\n  template:\n" + template
	}
	gateway := func(listeners string) string {
		return "apiVersion: gateway.apoxy.dev/v1\nkind: Gateway\nmetadata: {name: bad}\nspec:\n  gatewayClassName: apoxy\n  listeners:\n" + listeners
	}
	tests := []struct {
		name string
		yaml string
		// code is the HTTP status: 422 for invalid, 400 for undecodable, 404 for a missing namespace.
		code int
		// fields must each appear among the error's causes (or, for 400/404, in the message).
		fields []string
	}{
		{"backend without endpoints", backend("  protocol: h2\n"), 422, []string{"spec.endpoints"}},
		{"edge function with two sources", edgeFunction("    code: {jsSource: {assets: {files: [{path: index.js, content: x}]}}, wasmSource: {url: 'https://e.com/f.wasm'}}\n"), 422, []string{"spec.template.code"}},
		{"edge function with no source", edgeFunction("    code: {}\n"), 422, []string{"spec.template.code"}},
		{"edge function entrypoint not among the files", edgeFunction("    code: {jsSource: {entrypoint: main.js, assets: {files: [{path: index.js, content: x}]}}}\n"), 422, []string{"spec.template.code.jsSource.entrypoint"}},
		{"edge function file outside its tree", edgeFunction("    code: {jsSource: {entrypoint: ../x.js, assets: {files: [{path: ../x.js, content: x}]}}}\n"), 422, []string{"spec.template.code.jsSource.assets.files[0].path", "spec.template.code.jsSource.entrypoint"}},
		{"edge function git with branch and commit", edgeFunction("    code: {jsSource: {git: {repository: 'https://git.example.com/f.git', branch: main, commit: abcdef1}}}\n"), 422, []string{"spec.template.code.jsSource.git"}},
		{"edge function bad npm name", edgeFunction("    code: {jsSource: {npm: {package: 'Not A Name', version: 1.0.0}}}\n"), 422, []string{"spec.template.code.jsSource.npm.package"}},
		{"edge function timeout too long", edgeFunction("    code: {wasmSource: {url: 'https://e.com/f.wasm'}}\n    runtime: {timeout: 1h}\n"), 422, []string{"spec.template.runtime.timeout"}},
		{"edge function unknown mode", edgeFunction("    mode: sidecar\n    code: {wasmSource: {url: 'https://e.com/f.wasm'}}\n"), 422, []string{"spec.template.mode"}},
		{"edge function bad env name", edgeFunction("    code: {wasmSource: {url: 'https://e.com/f.wasm'}}\n    env: [{name: 1X, value: v}]\n"), 422, []string{"spec.template.env[0].name"}},
		{"backend endpoint with fqdn and ip", backend("  endpoints: [{fqdn: a.example.com, ip: 10.0.0.1}]\n"), 422, []string{"spec.endpoints[0]"}},
		{"backend empty endpoint", backend("  endpoints: [{}]\n"), 422, []string{"spec.endpoints[0]"}},
		{"backend bad hostname", backend("  endpoints: [{fqdn: 'not a host'}]\n"), 422, []string{"spec.endpoints[0].fqdn"}},
		{"backend bad ip", backend("  endpoints: [{ip: 300.1.1.1}]\n"), 422, []string{"spec.endpoints[0].ip"}},
		{"backend bad protocol", backend("  endpoints: [{ip: 10.0.0.1}]\n  protocol: h3\n"), 422, []string{"spec.protocol"}},
		{"backend unknown field", backend("  endpoints: [{ip: 10.0.0.1}]\n  endpointz: []\n"), 400, []string{`unknown field "spec.endpointz"`}},
		{"backend health check http and tcp", backend("  endpoints: [{ip: 10.0.0.1}]\n  healthCheck: {http: {}, tcp: {}}\n"), 422, []string{"spec.healthCheck"}},
		{"backend health timeout over interval", backend("  endpoints: [{ip: 10.0.0.1}]\n  healthCheck: {tcp: {}, interval: 1s, timeout: 5s}\n"), 422, []string{"spec.healthCheck.timeout"}},
		{"backend health bad status", backend("  endpoints: [{ip: 10.0.0.1}]\n  healthCheck: {http: {expectedStatuses: [700]}}\n"), 422, []string{"spec.healthCheck.http.expectedStatuses[0]"}},
		{"backend health zero threshold", backend("  endpoints: [{ip: 10.0.0.1}]\n  healthCheck: {tcp: {}, unhealthyThreshold: 0}\n"), 422, []string{"spec.healthCheck.unhealthyThreshold"}},
		{"backend bad name", strings.Replace(backend("  endpoints: [{ip: 10.0.0.1}]\n"), "name: bad", "name: Bad_Name", 1), 422, []string{"metadata.name"}},
		{"route bad path type", rule("matches: [{path: {type: Prefix, value: /v1}}]"), 422, []string{"spec.rules[0].matches[0].path.type"}},
		{"route relative path", rule("matches: [{path: {type: PathPrefix, value: v1}}]"), 422, []string{"spec.rules[0].matches[0].path"}},
		{"route bad hostname", route("  hostnames: [Foo_Bar.example.com]\n"), 422, []string{"spec.hostnames[0]"}},
		{"route wildcard inside hostname", route("  hostnames: [a.*.example.com]\n"), 422, []string{"spec.hostnames[0]"}},
		{"route negative weight", rule("backendRefs: [{kind: Backend, name: b, port: 80, weight: -1}]"), 422, []string{"spec.rules[0].backendRefs[0].weight"}},
		{"route redirect with backends", rule("filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]\n    backendRefs: [{kind: Backend, name: b, port: 80}]"), 422, []string{"spec.rules[0]"}},
		{"route redirect status 304", rule("filters: [{type: RequestRedirect, requestRedirect: {statusCode: 304}}]"), 422, []string{"spec.rules[0].filters[0].requestRedirect.statusCode"}},
		{"route backend timeout over request", rule("timeouts: {request: 1s, backendRequest: 5s}"), 422, []string{"spec.rules[0].timeouts"}},
		{"route unknown filter", rule("filters: [{type: Teleport}]"), 422, []string{"spec.rules[0].filters[0].type"}},
		{"route 17 rules", route("  rules:\n" + strings.Repeat("  - matches: [{path: {value: /}}]\n", 17)), 422, []string{"spec.rules"}},
		{"gateway port 0", gateway("  - {name: http, protocol: HTTP, port: 0}\n"), 422, []string{"spec.listeners[0].port"}},
		{"gateway duplicate listener names", gateway("  - {name: http, protocol: HTTP, port: 80}\n  - {name: http, protocol: HTTP, port: 81}\n"), 422, []string{"spec.listeners"}},
		{"gateway https without certificate", gateway("  - {name: https, protocol: HTTPS, port: 443, tls: {mode: Terminate}}\n"), 422, []string{"spec.listeners[0].tls"}},
		{"gatewayclass without controller", "apiVersion: gateway.apoxy.dev/v1\nkind: GatewayClass\nmetadata: {name: bad}\nspec: {}\n", 422, []string{"spec.controllerName"}},
		{"proxy unknown provider", "apiVersion: core.apoxy.dev/v1alpha2\nkind: Proxy\nmetadata: {name: bad}\nspec: {provider: aws}\n", 422, []string{"spec.provider"}},
		{"proxy drain minimum over timeout", "apiVersion: core.apoxy.dev/v1alpha2\nkind: Proxy\nmetadata: {name: bad}\nspec: {shutdown: {drainTimeout: 5s, minimumDrainTime: 10s}}\n", 422, []string{"spec.shutdown.minimumDrainTime"}},
		{"direct response bad status", "apiVersion: extensions.apoxy.dev/v1alpha2\nkind: DirectResponse\nmetadata: {name: bad}\nspec: {statusCode: 700}\n", 422, []string{"spec.statusCode"}},
		{"direct response bad header", "apiVersion: extensions.apoxy.dev/v1alpha2\nkind: DirectResponse\nmetadata: {name: bad}\nspec: {headers: [{name: 'bad header', value: x}]}\n", 422, []string{"spec.headers[0].name"}},
		{"compression disabled with settings", "apiVersion: extensions.apoxy.dev/v1alpha2\nkind: HTTPRouteFilter\nmetadata: {name: bad}\nspec: {compressor: {disabled: true, algorithms: [gzip]}}\n", 422, []string{"spec.compressor"}},
		{"compression unknown algorithm", "apiVersion: extensions.apoxy.dev/v1alpha2\nkind: HTTPRouteFilter\nmetadata: {name: bad}\nspec: {compressor: {algorithms: [lz4]}}\n", 422, []string{"spec.compressor.algorithms[0]"}},
		{"compression threshold too low", "apiVersion: extensions.apoxy.dev/v1alpha2\nkind: HTTPRouteFilter\nmetadata: {name: bad}\nspec: {compressor: {minContentLength: 10}}\n", 422, []string{"spec.compressor.minContentLength"}},
		{"tls secret without key", "apiVersion: v1\nkind: Secret\nmetadata: {name: bad}\ntype: kubernetes.io/tls\ndata: {tls.crt: Zm9v}\n", 422, []string{"data[tls.key]"}},
		{"configmap bad key", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\ndata: {'a b': x}\n", 422, []string{"data[a b]"}},
		{"configmap key in data and binaryData", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\ndata: {ca.crt: x}\nbinaryData: {ca.crt: eA==}\n", 422, []string{"binaryData[ca.crt]"}},
		{"object in missing namespace", strings.Replace(backend("  endpoints: [{ip: 10.0.0.1}]\n"), "name: bad}", "name: bad, namespace: nope}", 1), 404, []string{`namespaces "nope" not found`}},
	}
	if len(tests) < 20 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := obj(t, tc.yaml)
			gvk := u.GroupVersionKind()
			gvr := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: strings.ToLower(gvk.Kind) + "s"}
			if gvk.Kind == "Proxy" {
				gvr.Resource = "proxies"
			}
			if gvk.Kind == "GatewayClass" {
				gvr.Resource = "gatewayclasses"
			}
			ns := u.GetNamespace()
			if ns == "" && gvk.Kind != "GatewayClass" {
				ns = "default"
			}
			rc := dc.Resource(gvr).Namespace(ns)
			_, err := rc.Create(context.Background(), u, metav1.CreateOptions{FieldValidation: "Strict"})
			var se *apierrors.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("create: err = %v, want an API error", err)
			}
			if got := int(se.ErrStatus.Code); got != tc.code {
				t.Fatalf("status code = %d, want %d (%v)", got, tc.code, err)
			}
			var named []string
			if d := se.ErrStatus.Details; d != nil {
				for _, c := range d.Causes {
					named = append(named, c.Field)
				}
			}
			for _, f := range tc.fields {
				if !slices.Contains(named, f) && !strings.Contains(err.Error(), f) {
					t.Errorf("error does not name %q: causes %v, message %q", f, named, err)
				}
			}
			if tc.code != 404 {
				if _, err := rc.Get(context.Background(), u.GetName(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("rejected object was stored: get err = %v", err)
				}
			}
		})
	}
}
