package e2e

import (
	"strings"
	"testing"
)

// upstreamRoute is the Gateway API docs' HTTP routing example, unchanged: the upstream group.
const upstreamRoute = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: foo-route
spec:
  parentRefs:
  - name: default
  hostnames:
  - "foo.example.com"
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /login
    backendRefs:
    - name: foo-svc
      port: 8080
`

// A newcomer's first minutes, as issue 19 found them: an upstream Gateway API manifest (with apoxy and with kubectl)
// applies (as gateway.apoxy.dev, with a one-line notice); a typo in kind names the kind meant
// and applies nothing; `apoxy get` without a kind points at `apoxy api-resources`, which
// exists and lists our kinds.
func TestNewcomerErrors(t *testing.T) {
	d := startDev(t, "")
	dir := t.TempDir()

	r := must(t, d.apoxy(t, "", "apply", "-f", writeFile(t, dir, "upstream.yaml", upstreamRoute)))
	if !strings.Contains(r.stdout, "httproute.gateway.apoxy.dev/foo-route created") ||
		!strings.Contains(r.stderr, "gateway.networking.k8s.io/v1 HTTPRoute applied as gateway.apoxy.dev/v1") {
		t.Errorf("upstream manifest: %s", r)
	}
	must(t, d.apoxy(t, "", "get", "httproute", "foo-route"))

	// kubectl users get the same: the server serves the upstream group as ours. The route
	// applied above is the same object under both groups.
	kubeRoute := strings.Replace(upstreamRoute, "name: foo-route", "name: kubectl-route", 1)
	r = must(t, d.kubectl(t, kubeRoute, "apply", "-f", "-"))
	if !strings.Contains(r.stdout, "httproute.gateway.networking.k8s.io/kubectl-route created") {
		t.Errorf("kubectl apply of the upstream manifest: %s", r)
	}
	r = must(t, d.kubectl(t, "", "get", "httproutes.gateway.networking.k8s.io", "foo-route", "-o", "jsonpath={.apiVersion}"))
	if r.stdout != "gateway.networking.k8s.io/v1" {
		t.Errorf("kubectl get through the upstream group: apiVersion %q", r.stdout)
	}
	must(t, d.apoxy(t, "", "get", "httproute", "kubectl-route"))
	r = must(t, d.kubectl(t, "", "explain", "httproutes.gateway.networking.k8s.io.spec.hostnames"))
	if !strings.Contains(r.stdout, "GROUP:      gateway.networking.k8s.io") {
		t.Errorf("kubectl explain through the upstream group: %s", r)
	}
	// A typo in a field is named by kubectl's strict validation, through the alias too.
	r = d.kubectl(t, strings.Replace(kubeRoute, "hostnames:", "hostnamez:", 1), "apply", "-f", "-")
	if r.err == nil || !strings.Contains(r.stderr, `unknown field "spec.hostnamez"`) {
		t.Errorf("kubectl apply with a misspelt field: %s", r)
	}
	must(t, d.kubectl(t, "", "delete", "httproutes.gateway.networking.k8s.io", "kubectl-route"))

	// The first command to run: the server, the project, the default Gateway Programmed, and
	// the route whose Service does not exist, with the reason.
	var status string
	waitFor(t, func() bool {
		status = must(t, d.apoxy(t, "", "status")).stdout
		return strings.Contains(status, "HTTPRoute default/foo-route (parent default): ResolvedRefs=False")
	})
	for _, want := range []string{"Server:", "Project:   default", "Projects:  default Ready", "GATEWAYS", "default  Programmed", "NEEDS ATTENTION"} {
		if !strings.Contains(status, want) {
			t.Errorf("apoxy status lacks %q:\n%s", want, status)
		}
	}
	t.Logf("apoxy status:\n%s", status)

	typo := strings.Replace(upstreamRoute, "kind: HTTPRoute", "kind: HTTPRoot", 1)
	typo = strings.Replace(typo, "name: foo-route", "name: typo-route", 1)
	both := "apiVersion: core.apoxy.dev/v1alpha2\nkind: Backend\nmetadata: {name: first}\nspec: {endpoints: [{ip: 127.0.0.1}]}\n---\n" + typo
	r = d.apoxy(t, "", "apply", "-f", writeFile(t, dir, "typo.yaml", both))
	if r.err == nil || !strings.Contains(r.stderr, `no kind "HTTPRoot" is served: did you mean HTTPRoute`) ||
		!strings.Contains(r.stderr, "nothing was applied") || strings.Contains(r.stderr, "CRD") {
		t.Errorf("a typo in kind: %s", r)
	}
	if r := d.apoxy(t, "", "get", "backend", "first"); r.err == nil {
		t.Errorf("the other document of a refused apply was applied: %s", r)
	}

	// An unknown field names the field meant.
	r = d.apoxy(t, "", "apply", "-f", writeFile(t, dir, "field.yaml", "apiVersion: core.apoxy.dev/v1alpha2\nkind: Backend\nmetadata: {name: field}\nspec: {endpointz: [{ip: 127.0.0.1}]}\n"))
	if r.err == nil || !strings.Contains(r.stderr, `unknown field "spec.endpointz" (did you mean "spec.endpoints"?)`) {
		t.Errorf("an unknown field: %s", r)
	}

	r = d.apoxy(t, "", "get")
	if r.err == nil || !strings.Contains(r.stderr, "apoxy api-resources") {
		t.Errorf("get without a kind: %s", r)
	}
	r = must(t, d.apoxy(t, "", "api-resources"))
	for _, want := range []string{"httproutes", "backends", "tunnelnodes", "gateway.apoxy.dev/v1"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("api-resources lacks %s:\n%s", want, r.stdout)
		}
	}
	// Help and examples (before the flags, which are kubectl's own) speak of our kinds.
	for _, verb := range []string{"get", "describe", "delete", "edit", "diff", "explain", "apply", "api-resources"} {
		help := must(t, d.apoxy(t, "", verb, "--help")).stdout
		help, _, _ = strings.Cut(help, "\nFlags:")
		if l := strings.ToLower(help); strings.Contains(l, "pod") || strings.Contains(l, "kubectl ") || strings.Contains(l, "deployment") {
			t.Errorf("apoxy %s --help speaks of Kubernetes' kinds or of kubectl:\n%s", verb, help)
		}
	}
}
