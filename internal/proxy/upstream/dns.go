package upstream

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// TTLResolver is a resolver that also reports how long its answer may be cached. Clusters
// re-resolve an FQDN when its TTL runs out (bounded to [MinTTL, ResolveInterval]).
type TTLResolver interface {
	LookupTTL(ctx context.Context, host string) ([]netip.Addr, time.Duration, error)
}

// Resolver looks names up: net.Resolver, DNSResolver.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ScopedResolver is a resolver whose answers depend on who asks: a project's tunnel names
// (<node>.tun.<domain>) are its own nodes' addresses, and mean nothing to another project.
// scope is the asker's, in the Dialer's "project/namespace/name" form.
type ScopedResolver interface {
	LookupScoped(ctx context.Context, scope, host string) ([]netip.Addr, time.Duration, error)
}

// Lookup asks r for host's addresses and how long they may be cached (0: unknown), through
// the richest interface r has.
func Lookup(ctx context.Context, r Resolver, scope, host string) ([]netip.Addr, time.Duration, error) {
	switch v := r.(type) {
	case ScopedResolver:
		return v.LookupScoped(ctx, scope, host)
	case TTLResolver:
		return v.LookupTTL(ctx, host)
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	return ips, 0, err
}

// MinTTL is the shortest re-resolution period, whatever the DNS TTL says.
const MinTTL = time.Second

// DNSResolver queries nameservers directly (A and AAAA) so answers carry their TTL. Names in
// the hosts file, and every name when no nameserver is configured, go through the system
// resolver with the default interval.
type DNSResolver struct {
	// Servers are "host:port" nameservers; empty means those of /etc/resolv.conf.
	Servers []string
	Timeout time.Duration

	once   sync.Once
	client *dns.Client
	conf   []string
	search []string
}

func (r *DNSResolver) init() {
	r.once.Do(func() {
		r.client = &dns.Client{Timeout: r.Timeout}
		if r.client.Timeout == 0 {
			r.client.Timeout = 2 * time.Second
		}
		r.conf = r.Servers
		if len(r.conf) == 0 {
			if cc, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil {
				for _, s := range cc.Servers {
					r.conf = append(r.conf, net.JoinHostPort(s, cc.Port))
				}
			}
		}
	})
}

// LookupNetIP implements the plain resolver interface.
func (r *DNSResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	addrs, _, err := r.LookupTTL(ctx, host)
	return addrs, err
}

// LookupTTL returns every A and AAAA address of host and the smallest TTL among them.
func (r *DNSResolver) LookupTTL(ctx context.Context, host string) ([]netip.Addr, time.Duration, error) {
	r.init()
	if len(r.conf) == 0 || inHostsFile(host) {
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		return addrs, 0, err
	}
	fqdn := dns.Fqdn(host)
	var addrs []netip.Addr
	ttl := time.Duration(-1)
	var lastErr error
	answered := false
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		m := new(dns.Msg)
		m.SetQuestion(fqdn, qtype)
		m.RecursionDesired = true
		var in *dns.Msg
		for _, server := range r.conf {
			resp, _, err := r.client.ExchangeContext(ctx, m, server)
			if err != nil {
				lastErr = err
				continue
			}
			in = resp
			break
		}
		if in == nil {
			continue
		}
		answered = true
		if in.Rcode != dns.RcodeSuccess && in.Rcode != dns.RcodeNameError {
			lastErr = fmt.Errorf("dns: %s %s: %s", fqdn, dns.TypeToString[qtype], dns.RcodeToString[in.Rcode])
			continue
		}
		for _, rr := range in.Answer {
			var ip net.IP
			switch v := rr.(type) {
			case *dns.A:
				ip = v.A
			case *dns.AAAA:
				ip = v.AAAA
			default:
				continue // CNAME chain records: the resolver returns the final addresses too
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				addrs = append(addrs, a.Unmap())
				if d := time.Duration(rr.Header().Ttl) * time.Second; ttl < 0 || d < ttl {
					ttl = d
				}
			}
		}
	}
	if len(addrs) == 0 {
		if lastErr != nil || !answered {
			return nil, 0, lastErr
		}
		return nil, 0, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return addrs, max(ttl, 0), nil
}

// inHostsFile reports whether /etc/hosts names host (localhost and friends).
func inHostsFile(host string) bool {
	hostsOnce.Do(loadHosts)
	return hostsNames[strings.ToLower(strings.TrimSuffix(host, "."))]
}

var (
	hostsOnce  sync.Once
	hostsNames = map[string]bool{}
)

func loadHosts() {
	data, err := os.ReadFile("/etc/hosts")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		for _, f := range fields[min(1, len(fields)):] {
			hostsNames[strings.ToLower(f)] = true
		}
	}
}
