package platform

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"apoxy.dev/apoxy/internal/dns/authority"
	"apoxy.dev/apoxy/internal/proxy"
	"github.com/prometheus/client_golang/prometheus"
)

// dnsServer is the authoritative DNS server as a component: it answers for the zones the
// projects' domain reconcilers offer (through domain.Registry).
type dnsServer struct {
	srv   *authority.Server
	addr  string
	bound atomic.Pointer[netip.AddrPort]
}

func (d *dnsServer) Name() string { return "dns" }

func (d *dnsServer) Start(ctx context.Context) error {
	ap, err := d.srv.Listen(d.addr)
	if err != nil {
		return err
	}
	d.bound.Store(&ap)
	return nil
}

func (d *dnsServer) Ready() error {
	if d.bound.Load() == nil {
		return errors.New("not listening yet")
	}
	return nil
}

func (d *dnsServer) Stop(ctx context.Context) error { return d.srv.Close(ctx) }

// Addr is where the DNS server answers, once started.
func (d *dnsServer) Addr() netip.AddrPort {
	if ap := d.bound.Load(); ap != nil {
		return *ap
	}
	return netip.AddrPort{}
}

// parseAddrs keeps the IP addresses of a list.
func parseAddrs(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// nsAddrs are the addresses ns1.<zone> answers with: the DNS server's own when it binds one,
// else the server's public ones.
func nsAddrs(dnsAddr string, public []netip.Addr) []netip.Addr {
	host, _, err := net.SplitHostPort(dnsAddr)
	if err == nil {
		if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
			return []netip.Addr{a}
		}
	}
	return public
}

// DNSAddr is where the DNS server answers (invalid when none runs).
func (p *Platform) DNSAddr() netip.AddrPort {
	if p.dns == nil {
		return netip.AddrPort{}
	}
	return p.dns.Addr()
}

// dnsMetrics exposes the DNS server's metrics at /metrics. It is registered once per process
// and follows the latest server started (tests start several platforms in one process; a
// second registration of the same series would panic). It is an unchecked collector: it
// describes nothing up front.
var dnsMetrics = &latestCollector{}

type latestCollector struct {
	once sync.Once
	cur  atomic.Value // prometheus.Collector, of one type per collector
}

func (c *latestCollector) set(m prometheus.Collector) {
	c.cur.Store(m)
	c.once.Do(func() { proxy.MetricsRegisterer().MustRegister(c) })
}

// Describe implements prometheus.Collector (unchecked).
func (c *latestCollector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *latestCollector) Collect(ch chan<- prometheus.Metric) {
	if m, ok := c.cur.Load().(prometheus.Collector); ok {
		m.Collect(ch)
	}
}
