package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"apoxy.dev/apoxy/internal/edgetest"
)

// backendRoute is YAML for Backend and HTTPRoute `name` sending hostnames (none: any) on the
// default Gateway to the echo server ln.
func backendRoute(name string, ln net.Listener, hostnames ...string) string {
	hosts := ""
	if len(hostnames) > 0 {
		hosts = "\n  hostnames: [" + strings.Join(hostnames, ", ") + "]"
	}
	return fmt.Sprintf(`---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: %[1]s}
spec: {endpoints: [{ip: %[2]s}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: %[1]s}
spec:
  parentRefs: [{name: default}]%[4]s
  rules: [{backendRefs: [{kind: Backend, name: %[1]s, port: %[3]s}]}]
`, name, ln.Addr().(*net.TCPAddr).IP, portOf(ln), hosts)
}

// servedBy returns which echo backend answered a GET for host on addr ("" and the status when
// not 200).
func servedBy(addr, host, path string) (string, int) {
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error(), 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", resp.StatusCode
	}
	var e echo
	if json.Unmarshal(body, &e) != nil {
		return string(body), 200
	}
	return e.Backend, 200
}

func routeCondition(e *edgetest.Env, name, typ string) (status, reason, message string) {
	r := e.Get("gateway.apoxy.dev/v1", "HTTPRoute", name)
	parents, _, _ := unstructured.NestedSlice(r.Object, "status", "parents")
	for _, p := range parents {
		conds, _, _ := unstructured.NestedSlice(p.(map[string]any), "conditions")
		for _, c := range conds {
			m := c.(map[string]any)
			if m["type"] == typ {
				return fmt.Sprint(m["status"]), fmt.Sprint(m["reason"]), fmt.Sprint(m["message"])
			}
		}
	}
	return "", "", ""
}

func listenerCondition(e *edgetest.Env, gateway, listener, typ string) (status, reason, message string) {
	g := e.Get("gateway.apoxy.dev/v1", "Gateway", gateway)
	ls, _, _ := unstructured.NestedSlice(g.Object, "status", "listeners")
	for _, l := range ls {
		lm := l.(map[string]any)
		if lm["name"] != listener {
			continue
		}
		conds, _, _ := unstructured.NestedSlice(lm, "conditions")
		for _, c := range conds {
			m := c.(map[string]any)
			if m["type"] == typ {
				return fmt.Sprint(m["status"]), fmt.Sprint(m["reason"]), fmt.Sprint(m["message"])
			}
		}
	}
	return "", "", ""
}

// TestProjectIsolation is the cross-project matrix: three projects share the default
// Gateway's ports. No project can take another's hostname (whatever the project names sort
// like), its port (by switching the listener's protocol), or read its Secrets; same-named
// routes coexist; every refusal is explained in the refused project's status without naming
// the other project.
func TestProjectIsolation(t *testing.T) {
	lnDefault := echoServer(t, "127.0.0.61:0", "default", nil)
	lnAAA := echoServer(t, "127.0.0.62:0", "aaa", nil)
	lnBBB := echoServer(t, "127.0.0.63:0", "bbb", nil)
	def := edgetest.Start(t, edgetest.Options{})
	def.Apply(backendRoute("web", lnDefault, "echo.test") + backendRoute("fallback", lnDefault))
	def.WaitFor("default serves echo.test", func() error {
		if b, code := servedBy(def.HTTPAddr, "echo.test", "/"); b != "default" {
			return fmt.Errorf("served by %q (%d)", b, code)
		}
		return nil
	})

	// Hostname takeover (F2): project aaa sorts before default and routes the same hostname
	// and a catch-all. default keeps both; aaa's route says why it is not served.
	aaa := def.Project("aaa")
	aaa.Apply(backendRoute("web", lnAAA, "echo.test", "aaa.test") + backendRoute("fallback", lnAAA))
	aaa.WaitFor("aaa serves its own hostname", func() error {
		if b, code := servedBy(def.HTTPAddr, "aaa.test", "/"); b != "aaa" {
			return fmt.Errorf("aaa.test served by %q (%d)", b, code)
		}
		return nil
	})
	for i := 0; i < 20; i++ {
		if b, _ := servedBy(def.HTTPAddr, "echo.test", "/"); b != "default" {
			t.Fatalf("echo.test taken over: served by %q", b)
		}
		if b, _ := servedBy(def.HTTPAddr, "unknown.test", "/"); b != "default" {
			t.Fatalf("catch-all taken over: served by %q", b)
		}
	}
	aaa.WaitFor("aaa's routes report the conflicts", func() error {
		st, reason, msg := routeCondition(aaa, "web", "Accepted")
		if st != "True" || !strings.Contains(msg, "hostnames not served: echo.test") {
			return fmt.Errorf("web: %s %s %q", st, reason, msg)
		}
		if strings.Contains(msg, "default") {
			t.Errorf("the refusal names the other project: %q", msg)
		}
		st, reason, msg = routeCondition(aaa, "fallback", "Accepted")
		if st != "False" || reason != "HostnameConflict" {
			return fmt.Errorf("fallback: %s %s %q", st, reason, msg)
		}
		return nil
	})
	if st, _, _ := routeCondition(def, "web", "Accepted"); st != "True" {
		t.Fatalf("default's route Accepted = %s", st)
	}

	// A wildcard over a name another project holds is refused too.
	bbb := def.Project("bbb")
	bbb.Apply(backendRoute("web", lnBBB, `"*.test"`))
	bbb.WaitFor("bbb's wildcard refused", func() error {
		if st, reason, msg := routeCondition(bbb, "web", "Accepted"); st != "False" || reason != "HostnameConflict" {
			return fmt.Errorf("%s %s %q", st, reason, msg)
		}
		return nil
	})
	if b, _ := servedBy(def.HTTPAddr, "other.test", "/"); b != "default" {
		t.Fatalf("other.test served by %q, want default's catch-all", b)
	}

	// When default lets echo.test go, aaa (first in line) gets it without any change of its own.
	def.Apply(backendRoute("web", lnDefault, "released.example"))
	def.WaitFor("aaa takes over the released hostname", func() error {
		if b, code := servedBy(def.HTTPAddr, "echo.test", "/"); b != "aaa" {
			return fmt.Errorf("echo.test served by %q (%d)", b, code)
		}
		return nil
	})

	// Backends aimed at the server itself (F5): the API server's socket through loopback, and
	// the link-local metadata address. Neither is reached; the Backend status says why.
	apiPort := strings.TrimPrefix(def.P.API.URL(), "https://127.0.0.1:")
	aaa.Apply(fmt.Sprintf(`
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: self}
spec: {endpoints: [{ip: 127.0.0.1}]}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: metadata}
spec: {endpoints: [{ip: 169.254.169.254}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: ssrf}
spec:
  parentRefs: [{name: default}]
  hostnames: [ssrf.aaa.test]
  rules:
  - matches: [{path: {type: PathPrefix, value: /meta}}]
    backendRefs: [{kind: Backend, name: metadata, port: 80}]
  - backendRefs: [{kind: Backend, name: self, port: %s}]
`, apiPort))
	aaa.WaitFor("metadata Backend refused in status", func() error {
		b := aaa.Get("core.apoxy.dev/v1alpha2", "Backend", "metadata")
		if st := fmt.Sprint(b.Object["status"]); !strings.Contains(st, "DestinationDenied") || !strings.Contains(st, "link-local") {
			return fmt.Errorf("status %s", st)
		}
		return nil
	})
	for _, path := range []string{"/version", "/meta/latest/meta-data/"} {
		req, _ := http.NewRequest("GET", "http://"+def.HTTPAddr+path, nil)
		req.Host = "ssrf.aaa.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 500 || strings.Contains(string(body), "gitVersion") || strings.Contains(string(body), "Unauthorized") {
			t.Fatalf("GET %s through a Backend aimed at the server: %d %s", path, resp.StatusCode, body)
		}
	}

	// The admin assigns a hostname default holds to bbb (Project spec.hostnames): the
	// assignment overrides first come, default's route for it is refused, bbb serves it.
	def.Apply(backendRoute("assigned", lnDefault, "shop.example"))
	def.WaitFor("default serves shop.example", func() error {
		if b, code := servedBy(def.HTTPAddr, "shop.example", "/"); b != "default" {
			return fmt.Errorf("served by %q (%d)", b, code)
		}
		return nil
	})
	bbb.Apply(backendRoute("shop", lnBBB, "shop.example"))
	root, err := dynamic.NewForConfig(def.P.API.RootConfig())
	if err != nil {
		t.Fatal(err)
	}
	projects := root.Resource(schema.GroupVersionResource{Group: "platform.apoxy.dev", Version: "v1alpha1", Resource: "projects"})
	if _, err := projects.Patch(context.Background(), "bbb", types.MergePatchType, []byte(`{"spec":{"hostnames":["shop.example"]}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	def.WaitFor("the assigned hostname moves to bbb", func() error {
		if b, code := servedBy(def.HTTPAddr, "shop.example", "/"); b != "bbb" {
			return fmt.Errorf("served by %q (%d)", b, code)
		}
		if st, reason, msg := routeCondition(def, "assigned", "Accepted"); st != "False" || reason != "HostnameConflict" || !strings.Contains(msg, "assigned to another project") {
			return fmt.Errorf("default's route: %s %s %q", st, reason, msg)
		}
		return nil
	})

	// Port takeover (F3): aaa switches its default Gateway's HTTP listener to TCP with a
	// TCPRoute. Everyone's HTTP traffic on the port stays HTTP; aaa's listener is Conflicted.
	tcpBackend := tcpEcho(t, "127.0.0.62:0", "aaa-raw")
	aaa.Apply(fmt.Sprintf(`
apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: default}
spec:
  gatewayClassName: apoxy
  listeners:
  - {name: http, protocol: TCP, port: %[1]s, allowedRoutes: {namespaces: {from: All}}}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: raw}
spec: {endpoints: [{ip: 127.0.0.62}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: TCPRoute
metadata: {name: raw}
spec:
  parentRefs: [{name: default, sectionName: http}]
  rules: [{backendRefs: [{kind: Backend, name: raw, port: %[2]s}]}]
`, strings.Split(def.HTTPAddr, ":")[1], portOf(tcpBackend)))
	aaa.WaitFor("aaa's TCP listener is Conflicted", func() error {
		st, reason, msg := listenerCondition(aaa, "default", "http", "Conflicted")
		if st != "True" || reason != "ProtocolConflict" {
			return fmt.Errorf("%s %s %q", st, reason, msg)
		}
		if st, reason, _ := listenerCondition(aaa, "default", "http", "Programmed"); st != "False" {
			return fmt.Errorf("Programmed %s %s", st, reason)
		}
		return nil
	})
	for i := 0; i < 20; i++ {
		if b, code := servedBy(def.HTTPAddr, "released.example", "/"); b != "default" {
			t.Fatalf("after aaa's switch to TCP, released.example served by %q (%d)", b, code)
		}
	}
	if st, _, _ := listenerCondition(def, "default", "http", "Programmed"); st != "True" {
		t.Fatalf("default's listener Programmed = %s", st)
	}

	// Secrets: each project's default certificate is its own, none is the API server's, and
	// one project's key cannot read another's Secrets.
	keys := map[string]string{}
	for _, env := range []*edgetest.Env{def, aaa, bbb} {
		sec := env.Get("v1", "Secret", "default-tls")
		k, _, _ := unstructured.NestedString(sec.Object, "data", "tls.key")
		if k == "" {
			t.Fatal("default-tls has no key")
		}
		for other, ok := range keys {
			if ok == k {
				t.Fatalf("two projects share a default-tls key (%s)", other)
			}
		}
		keys[fmt.Sprint(len(keys))] = k
	}
	apiCert := def.P.API.ServingCertificate()
	for _, sni := range []string{"whatever.test", "echo.test", ""} {
		conn, err := tls.Dial("tcp", def.TLSAddr, &tls.Config{InsecureSkipVerify: true, ServerName: sni})
		if err != nil {
			t.Fatal(err)
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if leaf.Equal(apiCert) {
			t.Fatalf("the data plane presents the API server's certificate (SNI %q)", sni)
		}
	}
	token, err := def.P.API.ProjectToken("aaa")
	if err != nil {
		t.Fatal(err)
	}
	cfg := def.P.API.ProjectConfig("default")
	cfg = rest.AnonymousClientConfig(cfg)
	cfg.BearerToken = token
	cross, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cross.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace("default").Get(context.Background(), "default-tls", metav1.GetOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("aaa's key reading default's Secret: err = %v, want 403", err)
	}

}
