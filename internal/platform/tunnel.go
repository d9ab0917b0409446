package platform

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"apoxy.dev/apoxy/internal/apiserver"
	"apoxy.dev/apoxy/internal/proxy/upstream"
	"apoxy.dev/apoxy/internal/tunnel"
	"apoxy.dev/apoxy/internal/tunnel/node"
)

// TunnelOptions configure the tunnel endpoint.
type TunnelOptions struct {
	// Addr is where agents dial it (UDP; "" runs none: TunnelNodes say so).
	Addr string
	// Domain is the tunnel domain, whose names the data plane resolves to a project's own
	// nodes (default tunnel.DefaultDomain).
	Domain string
}

// tunnelEndpoint is the tunnel endpoint as a component: HTTP/3 CONNECT-IP on a UDP socket,
// with a certificate of the server's CA (the one the CLI config trusts).
type tunnelEndpoint struct {
	srv   *tunnel.Server
	api   *apiserver.Server
	addr  string
	pc    net.PacketConn
	bound atomic.Pointer[netip.AddrPort]
}

func (t *tunnelEndpoint) Name() string { return "tunnel" }

func (t *tunnelEndpoint) Start(ctx context.Context) error {
	pc, err := net.ListenPacket("udp", t.addr)
	if err != nil {
		return err
	}
	ap := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if !ap.Addr().IsUnspecified() {
		hosts = append(hosts, ap.Addr().String())
	}
	// Agents find the endpoint through the API server's address (an unspecified host in
	// status.addresses): the certificate names what the API's does.
	if api := t.api.ServingCertificate(); api != nil {
		hosts = append(hosts, api.DNSNames...)
		for _, ip := range api.IPAddresses {
			hosts = append(hosts, ip.String())
		}
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	cert, err := t.api.ServingCert("tunnel", hosts)
	if err != nil {
		pc.Close()
		return err
	}
	t.pc = pc
	t.bound.Store(&ap)
	go t.srv.Serve(pc, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	return nil
}

func (t *tunnelEndpoint) Ready() error {
	if t.bound.Load() == nil {
		return errors.New("not listening yet")
	}
	return nil
}

func (t *tunnelEndpoint) Stop(context.Context) error {
	err := t.srv.Close()
	if t.pc != nil {
		t.pc.Close()
	}
	return err
}

// Addr is where agents dial, once started.
func (t *tunnelEndpoint) Addr() netip.AddrPort {
	if ap := t.bound.Load(); ap != nil {
		return *ap
	}
	return netip.AddrPort{}
}

// tunnelMetrics exposes the tunnel endpoint's metrics at /metrics (registered once per
// process, as dnsMetrics).
var tunnelMetrics = &latestCollector{}

// TunnelAddr is where the tunnel endpoint listens (invalid when none runs).
func (p *Platform) TunnelAddr() netip.AddrPort {
	if p.tunnel == nil {
		return netip.AddrPort{}
	}
	return p.tunnel.Addr()
}

// overlayDialer is the data plane's Dialer with the tunnels plugged in: a dial to an address
// of the dialing project's own overlay (its /48) goes through that project's tunnel stack;
// every other dial goes to next. The destination policy's control is not applied to the
// project's own overlay (its agents are the project's to reach), and another project's
// overlay is an ordinary private address, which the policy refuses.
type overlayDialer struct {
	tunnels *tunnel.Server
	next    upstream.Dialer
}

func (d overlayDialer) DialContext(ctx context.Context, scope, network, addr string, control func(string, string, syscall.RawConn) error) (net.Conn, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is6() && ap.Addr().As16()[0] == 0xfd {
		project := upstream.ProjectOf(scope)
		if tunnel.ProjectPrefix(project).Contains(ap.Addr()) {
			return d.tunnels.DialContext(ctx, project, network, addr)
		}
	}
	return d.next.DialContext(ctx, scope, network, addr, control)
}

// overlayResolver is the data plane's resolver with the tunnel domain plugged in: a name of
// it (<node>.tun.apoxy.net) is answered from the asking project's own nodes, never from
// DNS; every other name goes to next.
type overlayResolver struct {
	nodes *node.Registry
	next  upstream.Resolver
}

// overlayTTL is how long a tunnel-domain answer is kept: the addresses are the nodes' own
// and do not move while agents come and go; a node created after a Backend naming it is
// found this soon.
const overlayTTL = 2 * time.Second

func (r overlayResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return r.next.LookupNetIP(ctx, network, host)
}

func (r overlayResolver) LookupScoped(ctx context.Context, scope, host string) ([]netip.Addr, time.Duration, error) {
	if addrs, ok, err := r.nodes.Resolve(upstream.ProjectOf(scope), host); ok {
		return addrs, overlayTTL, err
	}
	return upstream.Lookup(ctx, r.next, scope, host)
}
