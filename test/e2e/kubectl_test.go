package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const seedDir = "../../docs/examples/seed"

func seed(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(seedDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKubectl drives the server with the real kubectl binary: the seed examples with
// client-side and server-side apply, get, describe, explain, diff, watch, delete and
// `create secret tls`.
func TestKubectl(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatal("kubectl is required (it ships with the machine image); install it to run the e2e tests")
	}
	d := startDev(t, "")

	// A watch running for the whole test sees every change.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	watch := exec.CommandContext(wctx, "kubectl", "--kubeconfig", d.kubeconfig(), "get", "backends", "-w", "--output-watch-events", "-o", "custom-columns=EVENT:.type,NAME:.object.metadata.name,PROTO:.object.spec.protocol", "--no-headers")
	watch.Env = append(os.Environ(), "HOME="+d.dataDir)
	wout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	events := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(wout)
		for sc.Scan() {
			events <- strings.Join(strings.Fields(sc.Text()), " ")
		}
	}()
	time.Sleep(500 * time.Millisecond) // let the watch establish before the first change

	// Client-side apply of the seed Backend, server-side apply of the seed HTTPRoute.
	out := must(t, d.kubectl(t, "", "apply", "-f", seed(t, "backend.yaml"))).stdout
	if !strings.Contains(out, "backend.core.apoxy.dev/api-backend created") {
		t.Errorf("kubectl apply: %q", out)
	}
	out = must(t, d.kubectl(t, "", "apply", "--server-side", "-f", seed(t, "httproute.yaml"))).stdout
	if !strings.Contains(out, "httproute.gateway.apoxy.dev/api-route serverside-applied") {
		t.Errorf("kubectl apply --server-side: %q", out)
	}
	// Re-applying is a no-op.
	out = must(t, d.kubectl(t, "", "apply", "-f", seed(t, "backend.yaml"))).stdout
	if !strings.Contains(out, "unchanged") {
		t.Errorf("second kubectl apply: %q, want unchanged", out)
	}
	// Server-side apply of the Backend too, on a fresh object.
	be2 := strings.Replace(readFile(t, seed(t, "backend.yaml")), "name: api-backend", "name: ssa-backend", 1)
	out = must(t, d.kubectl(t, be2, "apply", "--server-side", "-f", "-")).stdout
	if !strings.Contains(out, "backend.core.apoxy.dev/ssa-backend serverside-applied") {
		t.Errorf("kubectl apply --server-side backend: %q", out)
	}

	out = must(t, d.kubectl(t, "", "get", "be")).stdout
	for _, want := range []string{"NAME", "PROTOCOL", "ENDPOINTS", "api-backend", "h2", "api.internal.example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get be: missing %q in\n%s", want, out)
		}
	}
	out = must(t, d.kubectl(t, "", "get", "httproute", "api-route", "-o", "jsonpath={.spec.parentRefs[0].group}/{.spec.rules[0].backendRefs[0].weight}")).stdout
	if out != "gateway.apoxy.dev/1" {
		t.Errorf("defaults on the stored HTTPRoute = %q, want gateway.apoxy.dev/1", out)
	}
	out = must(t, d.kubectl(t, "", "get", "gw", "default", "-o", "yaml")).stdout
	if !strings.Contains(out, "gatewayClassName: apoxy") {
		t.Errorf("kubectl get gw default -o yaml:\n%s", out)
	}
	out = must(t, d.kubectl(t, "", "describe", "httproute", "api-route")).stdout
	if !strings.Contains(out, "api.example.com") || !strings.Contains(out, "Path Prefix") && !strings.Contains(out, "PathPrefix") {
		t.Errorf("kubectl describe:\n%s", out)
	}
	out = must(t, d.kubectl(t, "", "explain", "backend.spec.endpoints")).stdout
	if !strings.Contains(out, "fqdn") {
		t.Errorf("kubectl explain backend.spec.endpoints:\n%s", out)
	}
	out = must(t, d.kubectl(t, "", "explain", "httproute.spec.rules.matches.path")).stdout
	if !strings.Contains(out, "type") {
		t.Errorf("kubectl explain httproute path:\n%s", out)
	}

	// diff: exit 0 when equal, 1 with a change shown.
	must(t, d.kubectl(t, "", "diff", "-f", seed(t, "backend.yaml")))
	changed := strings.Replace(readFile(t, seed(t, "backend.yaml")), "protocol: h2", "protocol: h2c", 1)
	r := d.kubectl(t, changed, "diff", "-f", "-")
	if ee, ok := r.err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(r.stdout, "+  protocol: h2c") {
		t.Errorf("kubectl diff with a change: %s", r)
	}
	must(t, d.kubectl(t, changed, "apply", "-f", "-"))

	// TLS secret from files, as in the Gateway API docs.
	must(t, d.kubectl(t, "", "create", "secret", "tls", "site-tls", "--cert", filepath.Join(d.dataDir, "pki", "apiserver.crt"), "--key", filepath.Join(d.dataDir, "pki", "apiserver.key")))
	out = must(t, d.kubectl(t, "", "get", "secret", "site-tls", "-o", "jsonpath={.type}")).stdout
	if out != "kubernetes.io/tls" {
		t.Errorf("secret type = %q", out)
	}

	must(t, d.kubectl(t, "", "delete", "-f", seed(t, "backend.yaml")))
	if r := d.kubectl(t, "", "get", "backend", "api-backend"); r.err == nil || !strings.Contains(r.stderr, "NotFound") {
		t.Errorf("get after delete: %s", r)
	}

	// The watch saw the create, the update and the delete.
	want := []string{"ADDED api-backend h2", "MODIFIED api-backend h2c", "DELETED api-backend h2c"}
	deadline := time.After(10 * time.Second)
	var seen []string
	for len(want) > 0 {
		select {
		case ev := <-events:
			seen = append(seen, ev)
			if ev == want[0] {
				want = want[1:]
			}
		case <-deadline:
			t.Fatalf("watch events %q; still waiting for %q", seen, want)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
