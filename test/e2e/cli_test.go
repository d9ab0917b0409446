package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestApoxyCLI applies the seed examples with `apoxy apply` (a directory, files out of
// dependency order, comment-only documents) and exercises get, describe, edit and delete.
func TestApoxyCLI(t *testing.T) {
	d := startDev(t, "")
	dir := t.TempDir()
	// The route comes first in the directory; apply still creates the Backend first.
	writeFile(t, dir, "a-route.yaml", readFile(t, seed(t, "httproute.yaml")))
	writeFile(t, dir, "nested/z-backend.yaml", "# only a comment\n---\n"+readFile(t, seed(t, "backend.yaml")))

	out := must(t, d.apoxy(t, "", "apply", "-f", dir, "-R")).stdout
	want := "backend.core.apoxy.dev/api-backend created\nhttproute.gateway.apoxy.dev/api-route created\n"
	if out != want {
		t.Errorf("apoxy apply -R output:\n%s\nwant:\n%s", out, want)
	}
	out = must(t, d.apoxy(t, readFile(t, seed(t, "backend.yaml")), "apply", "-f", "-", "--server-side", "--force-conflicts")).stdout
	if !strings.Contains(out, "backend.core.apoxy.dev/api-backend serverside-applied") {
		t.Errorf("apoxy apply --server-side: %q", out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "be"}, "api.internal.example.com"},
		{[]string{"get", "backends", "api-backend", "-o", "name"}, "backend.core.apoxy.dev/api-backend"},
		{[]string{"get", "httproute", "api-route", "-o", "json"}, `"hostnames": [`},
		{[]string{"get", "httproute", "api-route", "-o", "yaml"}, "value: /v1"},
		{[]string{"get", "gw", "-o", "wide"}, "default"},
		{[]string{"get", "gatewayclass"}, "apoxy"},
		{[]string{"get", "proxy", "default", "-o", "jsonpath={.spec.provider}"}, "cloud"},
		{[]string{"describe", "backend", "api-backend"}, "Protocol:  h2"},
	} {
		out := must(t, d.apoxy(t, "", tc.args...)).stdout
		if !strings.Contains(out, tc.want) {
			t.Errorf("apoxy %s: want %q in\n%s", strings.Join(tc.args, " "), tc.want, out)
		}
	}

	// The gateway view (HTTPRoutes and GRPCRoutes), offline translation and request explanation.
	must(t, d.apoxy(t, "apiVersion: gateway.apoxy.dev/v1\nkind: GRPCRoute\nmetadata: {name: echo-grpc}\nspec:\n  parentRefs: [{name: default}]\n  hostnames: [grpc.example.com]\n  rules: [{matches: [{method: {service: echo.Echo}}], backendRefs: [{kind: Backend, name: api-backend, port: 9000}]}]\n", "apply", "-f", "-"))
	waitFor(t, func() bool {
		out := must(t, d.apoxy(t, "", "gateway", "get", "default")).stdout
		return strings.Contains(out, "api-route") && strings.Contains(out, "Accepted=True ResolvedRefs=True") &&
			strings.Contains(out, "GRPCRoute  default    echo-grpc  grpc.example.com  Accepted=True")
	})
	_, httpPort, _ := strings.Cut(d.httpAddr, ":")
	out = must(t, d.apoxy(t, "", "explain", "http://api.example.com:"+httpPort+"/v1/users")).stdout
	if !strings.Contains(out, "SERVED BY  httproute/default/api-route/rule/0/match/0") {
		t.Errorf("apoxy explain URL:\n%s", out)
	}
	out = must(t, d.apoxy(t, "", "explain", "http://api.example.com:"+httpPort+"/v2")).stdout
	if !strings.Contains(out, "path is not under prefix /v1") || !strings.Contains(out, "answers 404") {
		t.Errorf("apoxy explain URL (no match):\n%s", out)
	}
	out = must(t, run(t, "", nil, apoxyBin, "translate", "-f", seed(t, "httproute.yaml"), "-f", seed(t, "backend.yaml"))).stdout
	if !strings.Contains(out, "snapshot:") || !strings.Contains(out, "name: default/api-backend") {
		t.Errorf("apoxy translate:\n%s", out)
	}

	// Traffic: the seed Backend's name does not resolve here, so the route answers 503 at once;
	// the request shows in the access log and the metrics.
	req, _ := http.NewRequest("GET", "http://"+d.httpAddr+"/v1/users", nil)
	req.Host = "api.example.com"
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("request to an unresolvable backend: %v %v, want 503", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
	metrics := must(t, run(t, "", nil, "curl", "-sf", "http://"+d.adminAddr+"/metrics")).stdout
	if !strings.Contains(metrics, `apoxy_http_requests_total{backend="default/api-backend",code_class="5xx",gateway="default/default",project="default",route="httproute/default/api-route/rule/0"} 1`) {
		t.Errorf("metrics lack the request:\n%s", grepLines(metrics, "apoxy_"))
	}
	for _, want := range []string{`apoxy_config_last_apply_error{project="default"} 0`, `apoxy_config_applies_total{project="default",result="ok"}`,
		`apoxy_config_info{project="default",version="`, `apoxy_downstream_active_connections `, `apoxy_upstream_active_requests{backend="default/default/api-backend"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(metrics, "apoxy_"))
		}
	}
	waitFor(t, func() bool {
		return strings.Contains(d.log.String(), `"route":"default/httproute/default/api-route/rule/0/match/0"`)
	})

	// edit through $EDITOR.
	r := run(t, "", []string{"HOME=" + d.dataDir, "EDITOR=sed -i s/protocol:\\ h2$/protocol:\\ h2c/"}, apoxyBin, "--config", d.config(), "edit", "backend", "api-backend")
	must(t, r)
	if got := must(t, d.apoxy(t, "", "get", "be", "api-backend", "-o", "jsonpath={.spec.protocol}/{.metadata.generation}")).stdout; got != "h2c/2" {
		t.Errorf("after edit: protocol/generation = %q, want h2c/2", got)
	}

	// Invalid input: one readable line per problem, and nothing applied.
	bad := `apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata:
  name: broken
spec:
  endpoints:
  - fqdn: "not a host"
  protocol: h3
`
	r = d.apoxy(t, bad, "apply", "-f", "-")
	if r.err == nil {
		t.Fatal("invalid Backend was accepted")
	}
	for _, line := range []string{
		`"broken" is invalid:`,
		`  * spec.endpoints[0].fqdn: Invalid value: "not a host"`,
		`  * spec.protocol: Unsupported value: "h3"`,
	} {
		if !strings.Contains(r.stderr, line) {
			t.Errorf("error output lacks %q:\n%s", line, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "apoxy-apply-") {
		t.Errorf("error output names the temporary file:\n%s", r.stderr)
	}
	if r := d.apoxy(t, "", "get", "be", "broken"); r.err == nil {
		t.Error("invalid Backend was stored")
	}
	// A document without kind is named.
	r = d.apoxy(t, "metadata: {name: x}\n", "apply", "-f", "-")
	if r.err == nil || !strings.Contains(r.stderr, "stdin: document 1: apiVersion and kind are required") {
		t.Errorf("kindless document: %s", r)
	}

	must(t, d.apoxy(t, "", "delete", "-f", dir, "-R"))
	if out := d.apoxy(t, "", "get", "be").stderr; !strings.Contains(out, "No resources found") {
		t.Errorf("after delete: %q", out)
	}
	out = must(t, d.apoxy(t, "", "version")).stdout
	if !strings.Contains(out, "Client Version:") || !strings.Contains(out, "Server:") {
		t.Errorf("apoxy version: %q", out)
	}
}

// TestProjectsThroughCLI: two projects see none of each other's objects, through the apoxy CLI
// and through kubectl contexts.
func TestProjectsThroughCLI(t *testing.T) {
	d := startDev(t, "")
	out := must(t, d.apoxy(t, "", "project", "create", "team-b")).stdout
	if out != "project.platform.apoxy.dev/team-b created\n" {
		t.Errorf("project create: %q", out)
	}
	must(t, d.apoxy(t, "", "apply", "-f", seed(t, "backend.yaml")))
	if out := d.apoxy(t, "", "--project", "team-b", "get", "be").stderr; !strings.Contains(out, "No resources found") {
		t.Errorf("team-b sees default's backend: %q", out)
	}
	out = must(t, d.apoxy(t, "", "project", "list")).stdout
	if !strings.Contains(out, "*         default") || !strings.Contains(out, "team-b") {
		t.Errorf("project list:\n%s", out)
	}
	must(t, d.apoxy(t, "", "project", "use", "team-b"))
	if out := d.apoxy(t, "", "get", "be").stderr; !strings.Contains(out, "No resources found") {
		t.Errorf("after use team-b: %q", out)
	}

	// kubectl: the server rewrote the kubeconfig with a context for team-b.
	waitFor(t, func() bool {
		return strings.Contains(must(t, d.kubectl(t, "", "config", "get-contexts", "-o", "name")).stdout, "apoxy-team-b")
	})
	if out := d.kubectl(t, "", "--context", "apoxy-team-b", "get", "be").stderr; !strings.Contains(out, "No resources found") {
		t.Errorf("kubectl team-b: %q", out)
	}
	if out := must(t, d.kubectl(t, "", "--context", "apoxy-default", "get", "be", "-o", "name")).stdout; out != "backend.core.apoxy.dev/api-backend\n" {
		t.Errorf("kubectl default: %q", out)
	}
	// A project key cannot reach another project.
	token := must(t, d.kubectl(t, "", "config", "view", "--raw", "-o", "jsonpath={.users[?(@.name==\"apoxy-team-b\")].user.token}")).stdout
	r := d.kubectl(t, "", "--context", "apoxy-default", "--token", token, "get", "be")
	if r.err == nil || !strings.Contains(r.stderr, "Forbidden") {
		t.Errorf("team-b's key on default: %s", r)
	}

	must(t, d.apoxy(t, "", "project", "delete", "team-b"))
	if out := must(t, d.apoxy(t, "", "project", "list")).stdout; strings.Contains(out, "team-b") {
		t.Errorf("deleted project listed:\n%s", out)
	}
	// Deleting a project is routine: it logs no errors (finding W12).
	time.Sleep(2 * time.Second)
	if errs := grepLines(d.log.String(), "level=ERROR"); errs != "" {
		t.Errorf("errors logged around a project's deletion:\n%s", errs)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
