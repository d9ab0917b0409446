package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/proxy"

	"apoxy.dev/apoxy/internal/tunnel"
	"apoxy.dev/apoxy/internal/tunnel/tunneltest"
)

// gateway is a tunnel endpoint for project p1 with node "office" (index 1), whose current
// token is "new"; egress is on while egressOn is.
type gateway struct {
	srv      *tunnel.Server
	addr     string
	opts     Options
	egressOn atomic.Bool
}

func newGateway(t *testing.T) *gateway {
	g := &gateway{}
	g.egressOn.Store(true)
	node := tunnel.NodePrefix("p1", 1)
	serverTLS, clientTLS := tunneltest.TLS(t)
	srv := tunnel.NewServer(tunnel.ServerOptions{
		Authenticate: func(r *http.Request) (tunnel.Identity, error) {
			if r.Header.Get("Authorization") != "Bearer new" {
				return tunnel.Identity{}, errors.New("the token of TunnelNode \"office\" was rotated")
			}
			return tunnel.Identity{Project: "p1", Node: "office", NodeIndex: 1, Credential: "new"}, nil
		},
		Domain: tunnel.DefaultDomain,
		Resolve: func(project, host string) ([]netip.Addr, bool, error) {
			n, ok, err := tunnel.ParseName(host, tunnel.DefaultDomain)
			if !ok || err != nil {
				return nil, ok, err
			}
			if n.Node != "office" || n.Service != "" {
				return nil, true, errors.New("no such node")
			}
			return []netip.Addr{tunnel.NodeAddr(node)}, true, nil
		},
		Egress: func(project, node string) bool { return g.egressOn.Load() },
		Dial: func(ctx context.Context, project, network, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(pc, serverTLS)
	t.Cleanup(func() { srv.Close(); pc.Close() })
	addr := pc.LocalAddr().String()
	g.srv, g.addr = srv, addr
	g.opts = Options{Node: "office", Endpoints: []string{addr}, TLS: clientTLS, Token: func() string { return "new" },
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, DrainTimeout: 3 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return g
}

// run starts an agent named name whose forwarded connections reach a local HTTP server
// answering name; it returns the agent and a stop function (a graceful drain).
func (g *gateway) run(t *testing.T, name string, minConns int) (*Agent, func()) {
	t.Helper()
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(time.Second)
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(svc.Close)
	opts := g.opts
	opts.Name, opts.MinConns = name, minConns
	opts.Forward = func(netip.Prefix, netip.AddrPort) string { return svc.Listener.Addr().String() }
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	tunneltest.WaitFor(t, func() bool { return a.Ready() == nil })
	stop := sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return a, stop
}

// client makes requests from the gateway side to the node's address.
func (g *gateway) client() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return g.srv.DialContext(ctx, "p1", network, addr)
		}}}
}

func nodeURL(path string) string {
	return "http://[" + tunnel.NodeAddr(tunnel.NodePrefix("p1", 1)).String() + "]:80" + path
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Two agents of one node, two sessions each: the node's address reaches both in turn, every
// session is listed once per agent name's /96; when one agent drains, a request it is
// serving finishes, new ones go to the other, and none fails. Connections as QUIC streams
// (the default) and as packets through the stacks.
func TestAgentsShareANodeAndDrain(t *testing.T) {
	for _, packets := range []bool{false, true} {
		t.Run(map[bool]string{false: "streams", true: "packets"}[packets], func(t *testing.T) {
			g := newGateway(t)
			g.opts.Packets = packets
			testShareAndDrain(t, g)
		})
	}
}

func testShareAndDrain(t *testing.T, g *gateway) {
	a1, stop1 := g.run(t, "a1", 2)
	a2, _ := g.run(t, "a2", 2)
	tunneltest.WaitFor(t, func() bool { return len(g.srv.Agents("p1")) == 4 })
	if a1.Prefix() == a2.Prefix() || !tunnel.NodePrefix("p1", 1).Contains(a1.Prefix().Addr()) {
		t.Fatalf("prefixes %s and %s", a1.Prefix(), a2.Prefix())
	}
	for _, c := range a1.Status().Conns {
		if c.State != "up" {
			t.Errorf("a1 conn %d: %s (%s)", c.Index, c.State, c.LastError)
		}
	}
	c := g.client()
	seen := map[string]int{}
	for range 20 {
		body, err := get(c, nodeURL("/"))
		if err != nil {
			t.Fatal(err)
		}
		seen[body]++
	}
	if seen["a1"] == 0 || seen["a2"] == 0 {
		t.Fatalf("the node's address reached %v", seen)
	}

	slow := make(chan string, 1)
	go func() { body, err := get(c, nodeURL("/slow")); slow <- body + errString(err) }()
	// Load through the drain: no request may fail.
	var failed, served atomic.Int32
	var wg sync.WaitGroup
	loadCtx, stopLoad := context.WithCancel(context.Background())
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				started := time.Now()
				if _, err := get(c, nodeURL("/")); err != nil {
					failed.Add(1)
					t.Logf("during the drain (started %s, took %s): %v", started.Format("15:04:05.000"), time.Since(started), err)
				} else {
					served.Add(1)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	stop1()
	time.Sleep(300 * time.Millisecond)
	stopLoad()
	wg.Wait()
	if got := <-slow; got != "a1" && got != "a2" {
		t.Errorf("the request open during the drain: %q", got)
	}
	if failed.Load() > 0 {
		t.Errorf("%d of %d requests failed while an agent drained", failed.Load(), failed.Load()+served.Load())
	}
	for range 10 {
		if body, err := get(c, nodeURL("/")); err != nil || body != "a2" {
			t.Fatalf("after a1 left: %q %v", body, err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return " " + err.Error()
}

// An agent holding a rotated token fetches the current one when the endpoint refuses it.
func TestAgentRefreshesARotatedToken(t *testing.T) {
	g := newGateway(t)
	var refreshed atomic.Int32
	g.opts.Token = func() string { return "old" }
	g.opts.Refresh = func(context.Context) (string, error) { refreshed.Add(1); return "new", nil }
	g.run(t, "a1", 1)
	if refreshed.Load() != 1 {
		t.Errorf("refreshed %d times", refreshed.Load())
	}
}

// With egress, the agent reaches a gateway-side IPv4 service (through the NAT64 prefix) by
// DialContext and by SOCKS5; once egress is off, the same connection is refused. Tunnel-domain
// names resolve at the gateway, also through the DNS proxy; other names are refused by it
// when it has no upstream.
func TestAgentEgressSOCKSAndDNS(t *testing.T) {
	g := newGateway(t)
	a, _ := g.run(t, "a1", 1)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "gateway side") }))
	defer gw.Close()

	c, err := a.DialContext(t.Context(), "tcp", gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go a.ServeSOCKS(l)
	socks, err := proxy.SOCKS5("tcp", l.Addr().String(), nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: socks.(proxy.ContextDialer).DialContext}}
	if body, err := get(hc, gw.URL); err != nil || body != "gateway side" {
		t.Fatalf("SOCKS5 with egress: %q %v", body, err)
	}

	ips, err := a.LookupHost(t.Context(), "office.tun.apoxy.net")
	if err != nil || len(ips) != 1 || ips[0] != tunnel.NodeAddr(tunnel.NodePrefix("p1", 1)) {
		t.Fatalf("office.tun.apoxy.net: %v %v", ips, err)
	}
	if _, err := a.LookupHost(t.Context(), "nope.tun.apoxy.net"); err == nil {
		t.Error("nope.tun.apoxy.net resolved")
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dnsSrv := &dns.Server{PacketConn: pc, Handler: a.DNSHandler(nil)}
	go dnsSrv.ActivateAndServe()
	defer dnsSrv.Shutdown()
	for name, want := range map[string]int{"office.tun.apoxy.net.": dns.RcodeSuccess, "nope.tun.apoxy.net.": dns.RcodeNameError, "example.com.": dns.RcodeRefused} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeAAAA)
		r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(q, pc.LocalAddr().String())
		if err != nil || r.Rcode != want {
			t.Errorf("DNS proxy %s: %v %v, want %s", name, r, err, dns.RcodeToString[want])
		}
	}

	g.egressOn.Store(false)
	if body, err := get(hc, gw.URL); err == nil {
		t.Fatalf("SOCKS5 without egress reached %q", body)
	} else if !strings.Contains(err.Error(), "socks") && !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "refused") {
		t.Logf("refused as: %v", err)
	}
}

// A node the agent's own address cannot route beyond the overlay: without egress, IPv4 has no
// NAT64 prefix and the error says why.
func TestAgentWithoutEgress(t *testing.T) {
	g := newGateway(t)
	g.egressOn.Store(false)
	a, _ := g.run(t, "a1", 1)
	if _, err := a.DialContext(t.Context(), "tcp", "127.0.0.1:80"); !errors.Is(err, ErrNoEgress) {
		t.Fatalf("IPv4 without egress: %v", err)
	}
	if _, err := a.DialContext(t.Context(), "tcp", "[2001:db8::1]:80"); !errors.Is(err, ErrNoEgress) {
		t.Fatalf("IPv6 beyond the overlay without egress: %v", err)
	}
}

// UDP through the tunnel (user mode): the gateway's datagrams to the agent's address, and to
// the node's, reach a local UDP service, and its answers come back.
func TestAgentForwardsUDP(t *testing.T) {
	g := newGateway(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("echo "), buf[:n]...), from)
		}
	}()
	g.opts.Forward = func(netip.Prefix, netip.AddrPort) string { return pc.LocalAddr().String() }
	a, err := New(g.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go a.Run(ctx)
	tunneltest.WaitFor(t, func() bool { return a.Ready() == nil })
	for _, to := range []netip.Addr{tunnel.AgentAddr(a.Prefix()), tunnel.NodeAddr(tunnel.NodePrefix("p1", 1))} {
		c, err := g.srv.DialContext(t.Context(), "p1", "udp", netip.AddrPortFrom(to, 5353).String())
		if err != nil {
			t.Fatalf("%s: %v", to, err)
		}
		defer c.Close()
		buf := make([]byte, 2048)
		for i := range 3 {
			msg := fmt.Sprintf("datagram %d", i)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			c.Write([]byte(msg))
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != "echo "+msg {
				t.Fatalf("%s: %q %v", to, buf[:n], err)
			}
		}
	}
}
