package zone

import (
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	corev1a3 "apoxy.dev/apoxy/api/core/v1alpha3"
)

// FromDomainRecord turns a DomainRecord into its resource records. A record whose target is
// a ref answers with addrs (the target's addresses, A and AAAA); ttl is the record's.
func FromDomainRecord(r *corev1a3.DomainRecord, addrs []netip.Addr) []dns.RR {
	name := Canonical(r.Spec.Name)
	ttl := uint32(corev1a3.DefaultTTL)
	if r.Spec.TTL != nil {
		ttl = uint32(*r.Spec.TTL)
	}
	hdr := func(owner string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	var out []dns.RR
	if r.Spec.Target.Ref != nil {
		for _, a := range addrs {
			a = a.Unmap()
			if a.Is4() {
				out = append(out, &dns.A{Hdr: hdr(name, dns.TypeA), A: net.IP(a.AsSlice())})
			} else {
				out = append(out, &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: net.IP(a.AsSlice())})
			}
		}
		return out
	}
	d := r.Spec.Target.DNS
	if d == nil {
		return nil
	}
	for _, s := range d.A {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, &dns.A{Hdr: hdr(name, dns.TypeA), A: net.IP(ip.AsSlice())})
		}
	}
	for _, s := range d.AAAA {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: net.IP(ip.AsSlice())})
		}
	}
	if d.FQDN != nil {
		out = append(out, &dns.CNAME{Hdr: hdr(name, dns.TypeCNAME), Target: Canonical(*d.FQDN)})
	}
	for _, t := range d.TXT {
		out = append(out, &dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: SplitTXT(t)})
	}
	for _, m := range d.MX {
		out = append(out, &dns.MX{Hdr: hdr(name, dns.TypeMX), Preference: uint16(m.Preference), Mx: Canonical(m.Exchange)})
	}
	for _, s := range d.SRV {
		out = append(out, &dns.SRV{Hdr: hdr(name, dns.TypeSRV), Priority: uint16(s.Priority), Weight: uint16(s.Weight), Port: uint16(s.Port), Target: Canonical(s.Target)})
	}
	for _, c := range d.CAA {
		out = append(out, &dns.CAA{Hdr: hdr(name, dns.TypeCAA), Flag: uint8(c.Flags), Tag: c.Tag, Value: c.Value})
	}
	for _, ns := range d.NS {
		out = append(out, &dns.NS{Hdr: hdr(name, dns.TypeNS), Ns: Canonical(ns)})
	}
	for _, ds := range d.DS {
		out = append(out, &dns.DS{Hdr: hdr(name, dns.TypeDS), KeyTag: uint16(ds.KeyTag), Algorithm: uint8(ds.Algorithm), DigestType: uint8(ds.DigestType), Digest: strings.ToUpper(ds.Digest)})
	}
	for _, k := range d.DNSKEY {
		proto := uint8(3)
		out = append(out, &dns.DNSKEY{Hdr: hdr(name, dns.TypeDNSKEY), Flags: uint16(k.Flags), Protocol: proto, Algorithm: uint8(k.Algorithm), PublicKey: k.PublicKey})
	}
	for i := range d.DKIM {
		k := &d.DKIM[i]
		owner := Canonical(k.Selector + "._domainkey." + name)
		out = append(out, &dns.TXT{Hdr: hdr(owner, dns.TypeTXT), Txt: SplitTXT(k.Text())})
	}
	if d.SPF != nil {
		out = append(out, &dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: SplitTXT(d.SPF.Text())})
	}
	if d.DMARC != nil {
		out = append(out, &dns.TXT{Hdr: hdr("_dmarc."+name, dns.TypeTXT), Txt: SplitTXT(d.DMARC.Text())})
	}
	return out
}

// SplitTXT cuts a TXT value into the 255-byte character-strings a TXT record is made of
// (RFC 1035 §3.3.14); a reader joins them back. miekg/dns takes its strings in zone-file
// presentation form, so '"' and '\' are escaped.
func SplitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, escapeTXT(s[:255]))
		s = s[255:]
	}
	return append(out, escapeTXT(s))
}

func escapeTXT(s string) string {
	if !strings.ContainsAny(s, `"\`) && isPrintable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			b.WriteByte('\\')
			b.WriteByte('0' + c/100)
			b.WriteByte('0' + c/10%10)
			b.WriteByte('0' + c%10)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// Values are a record's data as zone-file text, for status.resolvedValues.
func Values(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		s := rr.String()
		// Drop "name ttl class type\t": the status shows the data.
		h := rr.Header().String()
		s = strings.TrimPrefix(s, h)
		if rr.Header().Name != "" && len(rrs) > 0 && rrs[0].Header().Name != rr.Header().Name {
			s = strings.TrimSuffix(rr.Header().Name, ".") + " " + s
		}
		out = append(out, s)
	}
	return out
}
