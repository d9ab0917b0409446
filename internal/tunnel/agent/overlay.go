package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	socks5 "github.com/armon/go-socks5"
	"github.com/miekg/dns"

	"apoxy.dev/apoxy/internal/tunnel"
)

// ErrNoEgress is a connection to an address beyond the overlay from an agent whose node has
// no egress (spec.egressGateway.enabled is off).
var ErrNoEgress = errors.New("this TunnelNode has no egress through the gateway (spec.egressGateway.enabled is off): only the overlay is reachable")

// DialContext connects through the tunnel: to an overlay address, or, when the node has
// egress, to any address (IPv4 through the gateway's NAT64 prefix). Names of the tunnel
// domain are resolved by the gateway; others by this machine's resolver.
func (a *Agent) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ips, err := a.LookupHost(ctx, host)
		if err != nil {
			return nil, err
		}
		ip = ips[0]
	}
	to, err := a.overlayAddr(ip)
	if err != nil {
		return nil, err
	}
	return a.plane.dial(ctx, network, net.JoinHostPort(to.String(), port))
}

// overlayAddr is where ip is reached in the overlay: itself if a route leads there, an IPv4
// address in the NAT64 prefix when the gateway gave one.
func (a *Agent) overlayAddr(ip netip.Addr) (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ip = ip.Unmap()
	if ip.Is4() {
		if !a.pref64.IsValid() {
			return netip.Addr{}, fmt.Errorf("%s: %w", ip, ErrNoEgress)
		}
		return tunnel.Map4(a.pref64, ip), nil
	}
	if !slices.ContainsFunc(a.routes, func(p netip.Prefix) bool { return p.Contains(ip) }) {
		if len(a.routes) == 0 {
			return netip.Addr{}, errors.New("the tunnel is not connected yet")
		}
		return netip.Addr{}, fmt.Errorf("%s: %w", ip, ErrNoEgress)
	}
	return ip, nil
}

// InTunnelDomain reports whether host is a name the gateway answers (its DNS configuration's
// internal domains).
func (a *Agent) InTunnelDomain(host string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.ContainsFunc(a.domains, func(d string) bool { return tunnel.InDomain(host, d) })
}

// LookupHost resolves a name: the tunnel domain's at the gateway's overlay DNS server, others
// with this machine's resolver.
func (a *Agent) LookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if !a.InTunnelDomain(host) {
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(host), dns.TypeAAAA)
	r, err := a.ExchangeOverlay(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, rr := range r.Answer {
		if v, ok := rr.(*dns.AAAA); ok {
			if ip, ok := netip.AddrFromSlice(v.AAAA); ok {
				out = append(out, ip)
			}
		}
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host (" + dns.RcodeToString[r.Rcode] + " from the gateway)", Name: host, IsNotFound: true}
	}
	return out, nil
}

// ExchangeOverlay asks the gateway's overlay DNS server, through the tunnel.
func (a *Agent) ExchangeOverlay(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	a.mu.Lock()
	server := a.dnsAddr
	a.mu.Unlock()
	if !server.IsValid() {
		return nil, errors.New("the gateway sent no DNS server (not connected yet?)")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var lastErr error
	for range 3 { // UDP through the tunnel: retry a lost datagram
		c, err := a.plane.dial(ctx, "udp", server.String())
		if err != nil {
			return nil, err
		}
		dc := &dns.Conn{Conn: c}
		c.SetDeadline(time.Now().Add(time.Second))
		if err = dc.WriteMsg(q); err == nil {
			var r *dns.Msg
			if r, err = dc.ReadMsg(); err == nil && r.Id == q.Id {
				c.Close()
				return r, nil
			}
		}
		c.Close()
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("tunnel DNS %s: %w", server, lastErr)
}

// ServeSOCKS runs a SOCKS5 proxy (CONNECT, no authentication: bind it to loopback) whose
// connections go through the tunnel, until l is closed.
func (a *Agent) ServeSOCKS(l net.Listener) error {
	srv, err := socks5.New(&socks5.Config{
		Dial:     a.DialContext,
		Resolver: socksResolver{a},
		Logger:   log.New(io.Discard, "", 0),
	})
	if err != nil {
		return err
	}
	return srv.Serve(l)
}

type socksResolver struct{ a *Agent }

func (r socksResolver) Resolve(ctx context.Context, name string) (context.Context, net.IP, error) {
	ips, err := r.a.LookupHost(ctx, name)
	if err != nil {
		return ctx, nil, err
	}
	return ctx, ips[0].AsSlice(), nil
}

// DNSHandler is the DNS proxy (--dns-addr): the tunnel domain is asked of the gateway,
// everything else of this machine's nameservers (servers; none: REFUSED).
func (a *Agent) DNSHandler(servers []string) dns.Handler {
	client := &dns.Client{Timeout: 3 * time.Second}
	return dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		var r *dns.Msg
		var err error
		if len(q.Question) == 1 && a.InTunnelDomain(q.Question[0].Name) {
			r, err = a.ExchangeOverlay(ctx, q)
		} else {
			err = errors.New("no upstream nameserver")
			for _, s := range servers {
				if r, _, err = client.ExchangeContext(ctx, q, s); err == nil {
					break
				}
			}
		}
		if err != nil {
			r = new(dns.Msg)
			r.SetRcode(q, dns.RcodeServerFailure)
			if len(servers) == 0 && !(len(q.Question) == 1 && a.InTunnelDomain(q.Question[0].Name)) {
				r.Rcode = dns.RcodeRefused
			}
		}
		w.WriteMsg(r)
	})
}

// SystemNameservers are /etc/resolv.conf's, as host:port (the DNS proxy's upstreams).
func SystemNameservers() []string {
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(strings.Trim(s, "[]"), cc.Port))
	}
	return out
}
