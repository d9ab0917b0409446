package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/tunnel/tunneltest"
)

// endpoint runs a tunnel endpoint on loopback UDP with a self-signed certificate; the token
// "good" is node "office" (index 1) of project "p1".
func endpoint(t testing.TB) (*Server, string, *tls.Config) {
	t.Helper()
	serverTLS, clientTLS := tunneltest.TLS(t)
	var changes atomic.Int32
	s := NewServer(ServerOptions{
		Authenticate: func(r *http.Request) (Identity, error) {
			if r.Header.Get("Authorization") != "Bearer good" {
				return Identity{}, errors.New("token not valid for any TunnelNode")
			}
			return Identity{Project: "p1", Node: "office", NodeIndex: 1}, nil
		},
		OnChange: func(string) { changes.Add(1) },
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(pc, serverTLS)
	t.Cleanup(func() { s.Close(); pc.Close() })
	return s, pc.LocalAddr().String(), clientTLS
}

// An agent connects over real QUIC (HTTP/3 CONNECT-IP) and the gateway side reaches a local
// HTTP service of the agent's through the project's stack, at the agent's overlay address;
// the agent is listed with its /96; a wrong token gets 401 and no session; when the agent
// goes, dials fail at once; when it comes back under the same name it gets the same /96.
// Both paths: QUIC streams and IP packets through the stacks.
func TestAgentReachedThroughEndpoint(t *testing.T) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) { testAgentReached(t, p.streams) })
	}
}

func testAgentReached(t *testing.T, streams bool) {
	s, addr, clientTLS := endpoint(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "behind the tunnel") }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	if _, err := Connect(t.Context(), AgentOptions{Endpoint: addr, Token: "bad", TLS: clientTLS}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a bad token: %v", err)
	}
	if n := len(s.Agents("p1")); n != 0 {
		t.Fatalf("%d agents after a refused token", n)
	}

	ctx, cancel := context.WithCancel(t.Context())
	a, err := Connect(ctx, AgentOptions{Endpoint: addr, Token: "good", Name: "laptop", TLS: clientTLS, Streams: streams})
	if err != nil {
		t.Fatal(err)
	}
	if !NodePrefix("p1", 1).Contains(a.Prefix.Addr()) || a.Prefix.Bits() != 96 {
		t.Errorf("agent prefix %s, node %s", a.Prefix, NodePrefix("p1", 1))
	}
	tunneltest.WaitFor(t, func() bool { return len(s.Agents("p1")) == 1 })
	if got := s.Agents("p1")[0]; got.Name != "laptop" || got.Node != "office" || got.Prefix != a.Prefix {
		t.Errorf("agent %+v", got)
	}
	target := "[" + AgentAddr(a.Prefix).String() + "]:" + port
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			return s.DialContext(ctx, "p1", network, address)
		}, DisableKeepAlives: true}}
	for i := range 50 {
		resp, err := client.Get("http://" + target + "/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "behind the tunnel" {
			t.Fatalf("body %q", body)
		}
	}
	// Another project has no route to it.
	if c, err := s.DialContext(t.Context(), "p2", "tcp", target); err == nil {
		c.Close()
		t.Error("project p2 reached p1's agent")
	}

	first := a.Prefix
	a.Close()
	cancel()
	tunneltest.WaitFor(t, func() bool { return len(s.Agents("p1")) == 0 })
	dctx, dcancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer dcancel()
	if c, err := s.DialContext(dctx, "p1", "tcp", target); err == nil {
		c.Close()
		t.Error("dialed a gone agent")
	}
	b, err := Connect(t.Context(), AgentOptions{Endpoint: addr, Token: "good", Name: "laptop", TLS: clientTLS, Streams: streams})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Prefix != first {
		t.Errorf("reconnected with %s, had %s", b.Prefix, first)
	}
	resp, err := client.Get("http://" + target + "/")
	if err != nil {
		t.Fatalf("after reconnecting: %v", err)
	}
	resp.Body.Close()
}

func TestAddressPlan(t *testing.T) {
	p := ProjectPrefix("p1")
	if p.Bits() != 48 || p.Addr().As16()[0] != 0xfd || ProjectPrefix("p2") == p {
		t.Errorf("project prefix %s", p)
	}
	n := NodePrefix("p1", 7)
	if !p.Contains(n.Addr()) || n.Bits() != 64 || n == NodePrefix("p1", 8) {
		t.Errorf("node prefix %s", n)
	}
	a := AgentPrefix(n, agentSlot("laptop"))
	if !n.Contains(a.Addr()) || a.Bits() != 96 || a != AgentPrefix(n, agentSlot("laptop")) || a == AgentPrefix(n, agentSlot("desktop")) {
		t.Errorf("agent prefix %s", a)
	}
	got := Map4(a, netip4("10.1.2.3"))
	if b := got.As16(); !a.Contains(got) || fmt.Sprint(b[12:]) != "[10 1 2 3]" {
		t.Errorf("4in6 %s", got)
	}
	if !p.Contains(GatewayAddr("p1")) || NodePrefix("p1", 1).Contains(GatewayAddr("p1")) {
		t.Errorf("gateway %s", GatewayAddr("p1"))
	}
}

func netip4(s string) netip.Addr { return netip.MustParseAddr(s) }
