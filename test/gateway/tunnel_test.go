package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	corev1a "apoxy.dev/apoxy/api/core/v1alpha"
	"apoxy.dev/apoxy/internal/edgetest"
	"apoxy.dev/apoxy/internal/tunnel"
	"apoxy.dev/apoxy/internal/tunnel/node"
)

func tunnelNode(e *edgetest.Env, name string) (*corev1a.TunnelNode, error) {
	u := e.Get("core.apoxy.dev/v1alpha", "TunnelNode", name)
	if u == nil {
		return nil, fmt.Errorf("%s not found", name)
	}
	var n corev1a.TunnelNode
	return &n, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &n)
}

// The seed's TunnelNode, applied unchanged, gets a /64 of the project's overlay, a token and
// the endpoint's address; an agent (user mode, over real QUIC) connecting with the token is
// listed in status with its /96 and the node goes Ready; the gateway reaches a service on the
// agent's loopback through the project's stack, and an HTTPRoute to a Backend at the agent's
// overlay address serves it through the data plane; a rotated token is refused (401) and the new
// one accepted; a deleted node's token is refused.
func TestTunnelNodeAgent(t *testing.T) {
	e := edgetest.Start(t, edgetest.Options{Tunnel: true})
	seed, err := os.ReadFile("../../docs/examples/seed/tunnelnode.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e.Apply(string(seed))
	var n *corev1a.TunnelNode
	e.WaitFor("token, prefix and address", func() error {
		var err error
		if n, err = tunnelNode(e, "office-link"); err != nil {
			return err
		}
		if n.Status.Credentials == nil || n.Status.Credentials.Token == "" || n.Status.Prefix == "" || len(n.Status.Addresses) != 1 {
			return fmt.Errorf("status %+v", n.Status)
		}
		return nil
	})
	if n.Status.Addresses[0] != e.TunnelAddr || n.Status.Prefix != tunnel.NodePrefix("default", 1).String() {
		t.Errorf("addresses %v (endpoint %s), prefix %s", n.Status.Addresses, e.TunnelAddr, n.Status.Prefix)
	}
	if c := findCond(n.Status.Conditions, "Ready"); c == nil || c.Reason != "NoAgents" {
		t.Errorf("Ready before an agent = %+v", c)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(e.P.API.CACertPEM())
	clientTLS := &tls.Config{RootCAs: roots}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "office service") }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := tunnel.Connect(ctx, tunnel.AgentOptions{Endpoint: e.TunnelAddr, Token: n.Status.Credentials.Token, Name: "laptop", TLS: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	e.WaitFor("the agent in status", func() error {
		n, err := tunnelNode(e, "office-link")
		if err != nil {
			return err
		}
		c := findCond(n.Status.Conditions, "Ready")
		if len(n.Status.Agents) != 1 || n.Status.Agents[0].Name != "laptop" || n.Status.Agents[0].AgentAddress != a.Prefix.String() || c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("agents %+v, Ready %+v", n.Status.Agents, c)
		}
		return nil
	})
	if pfx := netip.MustParsePrefix(n.Status.Prefix); !pfx.Contains(a.Prefix.Addr()) {
		t.Errorf("agent's %s outside the node's %s", a.Prefix, pfx)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return e.P.Tunnels.DialContext(ctx, "default", network, addr)
	}}}
	resp, err := client.Get("http://[" + tunnel.AgentAddr(a.Prefix).String() + "]:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "office service" {
		t.Errorf("body %q", body)
	}

	// Through the data plane: HTTPRoute -> Backend at the agent's overlay address -> tunnel.
	e.Apply(fmt.Sprintf(`
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: office}
spec: {endpoints: [{ip: "%s"}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: office}
spec:
  parentRefs: [{name: default}]
  hostnames: [office.example.com]
  rules: [{backendRefs: [{kind: Backend, name: office, port: %s}]}]
`, tunnel.AgentAddr(a.Prefix), port))
	e.WaitFor("the route through the tunnel", func() error {
		req, _ := http.NewRequest(http.MethodGet, "http://"+e.HTTPAddr+"/", nil)
		req.Host = "office.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "office service" {
			return fmt.Errorf("%d %q", resp.StatusCode, body)
		}
		return nil
	})

	// Another project's Backend at the same address does not reach this project's agent.
	p2 := e.Project("p2")
	p2.Apply(fmt.Sprintf(`
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: steal}
spec: {endpoints: [{ip: "%s"}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: steal}
spec:
  parentRefs: [{name: default}]
  hostnames: [steal.example.com]
  rules: [{backendRefs: [{kind: Backend, name: steal, port: %s}]}]
`, tunnel.AgentAddr(a.Prefix), port))
	e.WaitFor("the other project's route answers, without the agent", func() error {
		req, _ := http.NewRequest(http.MethodGet, "http://"+e.HTTPAddr+"/", nil)
		req.Host = "steal.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) == "office service" {
			t.Fatal("project p2 reached project default's agent")
		}
		if resp.StatusCode == 404 {
			return errors.New("route not programmed yet")
		}
		return nil
	})

	// Rotation: the old token is refused, the new one accepted.
	old := n.Status.Credentials.Token
	u := e.Get("core.apoxy.dev/v1alpha", "TunnelNode", "office-link")
	u.SetAnnotations(map[string]string{node.AnnRotate: time.Now().UTC().Format(time.RFC3339Nano)})
	if _, err := e.Client.Resource(corev1a.SchemeGroupVersion.WithResource("tunnelnodes")).Update(context.Background(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var fresh string
	e.WaitFor("a new token", func() error {
		n, err := tunnelNode(e, "office-link")
		if err != nil {
			return err
		}
		if fresh = n.Status.Credentials.Token; fresh == old {
			return errors.New("same token")
		}
		return nil
	})
	if _, err := tunnel.Connect(ctx, tunnel.AgentOptions{Endpoint: e.TunnelAddr, Token: old, Name: "desktop", TLS: clientTLS}); !errors.Is(err, tunnel.ErrUnauthorized) {
		t.Errorf("the rotated token: %v", err)
	}
	b, err := tunnel.Connect(ctx, tunnel.AgentOptions{Endpoint: e.TunnelAddr, Token: fresh, Name: "desktop", TLS: clientTLS})
	if err != nil {
		t.Fatalf("the new token: %v", err)
	}
	b.Close()

	e.Delete("core.apoxy.dev/v1alpha", "TunnelNode", "office-link")
	e.WaitFor("a deleted node's token refused", func() error {
		c, err := tunnel.Connect(ctx, tunnel.AgentOptions{Endpoint: e.TunnelAddr, Token: fresh, Name: "desktop", TLS: clientTLS})
		if err == nil {
			c.Close()
			return errors.New("accepted")
		}
		if !errors.Is(err, tunnel.ErrUnauthorized) {
			return err
		}
		return nil
	})
}

func findCond(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}
