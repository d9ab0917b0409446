package tunnel

import (
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"apoxy.dev/apoxy/internal/tunnel/netstack"
)

// DNSPort is where each project's overlay DNS server listens, at the gateway's address.
const DNSPort = 53

// serveDNS answers the tunnel domain for one project inside its overlay, at the gateway's
// address: agents' DNS proxies ask it (the endpoint sends them its address in the CONNECT-IP
// DNS configuration). Each query flow is answered on its own connection, which closes after
// a few idle seconds.
func (s *Server) serveDNS(project string, st *netstack.Stack) {
	server := netip.AddrPortFrom(GatewayAddr(project), DNSPort)
	st.ForwardUDP(func(_, to netip.AddrPort) bool { return to == server }, func(c net.Conn, _, _ netip.AddrPort) {
		defer c.Close()
		buf := make([]byte, dns.MaxMsgSize)
		for {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			r := AnswerTunnelName(q, s.opts.Domain, func(host string) ([]netip.Addr, bool, error) { return s.opts.Resolve(project, host) })
			if b, err := r.Pack(); err == nil {
				c.Write(b)
			}
		}
	})
}

// AnswerTunnelName answers a DNS query for the tunnel domain with resolve: AAAA records for a
// name that resolves, NODATA for other types of it, NXDOMAIN for a name that does not, REFUSED
// for names outside the domain (a tunnel DNS server is no recursive resolver).
func AnswerTunnelName(q *dns.Msg, domain string, resolve func(host string) ([]netip.Addr, bool, error)) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = false
	if len(q.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	qq := q.Question[0]
	addrs, ok, err := resolve(qq.Name)
	switch {
	case !ok:
		m.Rcode = dns.RcodeRefused
		return m
	case err != nil:
		m.Rcode = dns.RcodeNameError
		var soa dns.RR = &dns.SOA{Hdr: dns.RR_Header{Name: dns.Fqdn(domain), Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 5},
			Ns: "ns." + dns.Fqdn(domain), Mbox: "hostmaster." + dns.Fqdn(domain), Serial: 1, Refresh: 60, Retry: 60, Expire: 60, Minttl: 5}
		m.Ns = append(m.Ns, soa)
		return m
	}
	m.Authoritative = true
	for _, a := range addrs {
		if qq.Qtype == dns.TypeAAAA || qq.Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 5}, AAAA: a.AsSlice()})
		}
	}
	return m
}

// InDomain reports whether host is the tunnel domain or below it.
func InDomain(host, domain string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	return domain != "" && (host == domain || strings.HasSuffix(host, "."+domain))
}
