package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// authExamples are the design's AuthPolicy examples (§4.3-§4.7) and the policy each holds.
var authExamples = map[string]string{
	"4.3-api-jwt.yaml":        "api-jwt",
	"4.4-grafana-login.yaml":  "grafana-login",
	"4.5-admin-basic.yaml":    "admin-basic",
	"4.6-payments-authz.yaml": "payments-authz",
	"4.7-api-cors.yaml":       "api-cors",
}

// TestAuthPolicyThroughCLI: the design's AuthPolicy examples apply with `apoxy apply -f` (with
// their Secrets, Backends and routes), `kubectl get tp,ap` lists them with the policy columns,
// the stored defaults show in `-o jsonpath`, kubectl diff and server-side apply of the same
// file change nothing (§5.109), kubectl explain knows the schema, and an invalid policy is
// refused naming its field.
func TestAuthPolicyThroughCLI(t *testing.T) {
	d := startDev(t, "")
	example := func(name string) string {
		p, err := filepath.Abs(filepath.Join("../../docs/examples/policy", name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for file, name := range authExamples {
		out := must(t, d.apoxy(t, "", "apply", "-f", example(file))).stdout
		if !strings.Contains(out, "authpolicy.policy.apoxy.dev/"+name+" ") {
			t.Errorf("apoxy apply -f %s:\n%s", file, out)
		}
	}

	out := must(t, d.kubectl(t, "", "get", "ap")).stdout
	for _, want := range []string{"NAME", "TARGETS", "ACCEPTED", "PROGRAMMED", "AGE", "api-jwt", "HTTPRoute/api", "admin-basic", "HTTPRoute/site/admin"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get ap: missing %q in\n%s", want, out)
		}
	}
	out = must(t, d.kubectl(t, "", "get", "tp,ap", "-o", "wide")).stdout
	if !strings.Contains(out, "authpolicy.policy.apoxy.dev/payments-authz") || !strings.Contains(out, "STRATEGY") {
		t.Errorf("kubectl get tp,ap -o wide:\n%s", out)
	}
	if out := must(t, d.kubectl(t, "", "get", "apoxy", "-o", "name")).stdout; !strings.Contains(out, "authpolicy.policy.apoxy.dev/api-cors") {
		t.Errorf("kubectl get apoxy (the category):\n%s", out)
	}
	for path, want := range map[string]string{
		"{.spec.jwt.providers[0].jwks.remote.timeout}": "5s",
		"{.spec.jwt.forwardToken}":                     "false",
		"{.spec.strategy}":                             "Default",
		"{.metadata.generation}":                       "1",
	} {
		if got := must(t, d.kubectl(t, "", "get", "ap", "api-jwt", "-o", "jsonpath="+path)).stdout; got != want {
			t.Errorf("api-jwt %s = %q, want %q", path, got, want)
		}
	}

	// Applying the same files again, client- or server-side, shows and changes nothing.
	for file, name := range authExamples {
		if r := d.kubectl(t, "", "diff", "-f", example(file)); r.err != nil {
			t.Errorf("kubectl diff -f %s: %s", file, r)
		}
		must(t, d.kubectl(t, "", "apply", "--server-side", "--force-conflicts", "-f", example(file)))
		if got := must(t, d.kubectl(t, "", "get", "ap", name, "-o", "jsonpath={.metadata.generation}")).stdout; got != "1" {
			t.Errorf("%s: generation %s after re-applying the same file", name, got)
		}
	}

	if out := must(t, d.kubectl(t, "", "explain", "authpolicy.spec.oidc.cookies")).stdout; !strings.Contains(out, "sameSite") {
		t.Errorf("kubectl explain authpolicy.spec.oidc.cookies:\n%s", out)
	}

	// An invalid policy: refused naming its field, nothing stored.
	bad := strings.Replace(readFile(t, example("4.4-grafana-login.yaml")), "sameSite: Lax}", "sameSite: None, secure: false}", 1)
	bad = strings.Replace(bad, "name: grafana-login", "name: grafana-bad", 1)
	r := d.apoxy(t, bad, "apply", "-f", "-")
	if r.err == nil || !strings.Contains(r.stderr, `spec.oidc.cookies.sameSite: Invalid value: "None"`) {
		t.Errorf("invalid AuthPolicy: %s", r)
	}
	if r := d.kubectl(t, "", "get", "ap", "grafana-bad"); r.err == nil {
		t.Error("invalid AuthPolicy was stored")
	}
	must(t, d.kubectl(t, "", "delete", "ap", "api-cors"))
	if r := d.kubectl(t, "", "get", "ap", "api-cors"); r.err == nil || !strings.Contains(r.stderr, "NotFound") {
		t.Errorf("get after delete: %s", r)
	}
}
