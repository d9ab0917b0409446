package zone

import (
	"github.com/miekg/dns"
)

// MaxChain bounds the CNAMEs followed inside the hosted zones for one question.
const MaxChain = 8

// Answer is the reply to one question: what goes in each section. Its records are the
// zone's own (shared, never to be modified); synthesised ones (wildcards) are copies.
type Answer struct {
	// Zone answered; nil when no hosted zone holds the name (REFUSED).
	Zone          *Zone
	Rcode         int
	Authoritative bool
	Answer        []dns.RR
	Ns            []dns.RR
	Extra         []dns.RR
}

// Lookup answers a question (class IN). A name outside every zone is REFUSED; a CNAME is
// followed through the hosted zones up to MaxChain times, the rcode then being the last
// name's (RFC 6604).
func (s *Set) Lookup(qname string, qtype uint16) Answer {
	qname = Canonical(qname)
	z := s.Find(qname)
	if z == nil {
		return Answer{Rcode: dns.RcodeRefused}
	}
	a := Answer{Zone: z, Authoritative: true, Rcode: dns.RcodeSuccess}
	name := qname
	for hop := 0; ; hop++ {
		next := z.lookup(name, qtype, &a)
		if next == "" || hop == MaxChain {
			return a
		}
		if z = s.Find(next); z == nil {
			return a // the chain leaves our zones: the resolver follows it
		}
		name = next
	}
}

// lookup adds one name's answer; a CNAME's target is returned to be followed.
func (z *Zone) lookup(name string, qtype uint16, a *Answer) string {
	if len(z.cuts) > 0 {
		if cut := z.cut(name); cut != "" && !(cut == name && qtype == dns.TypeDS) {
			// A referral: the child's servers are the authority (RFC 1034 §4.3.2 3b).
			a.Authoritative = a.Authoritative && len(a.Answer) > 0
			ns := z.nodes[cut].sets[dns.TypeNS]
			a.Ns = append(a.Ns, ns...)
			for _, rr := range ns {
				a.Extra = z.addresses(rr.(*dns.NS).Ns, a.Extra)
			}
			return ""
		}
	}
	if n := z.nodes[name]; n != nil {
		return z.answer(n, name, false, qtype, a)
	}
	if z.ents[name] {
		z.noData(a)
		return ""
	}
	// RFC 4592: the closest encloser's wildcard, if it has one, answers for the name.
	ce := parent(name)
	for z.nodes[ce] == nil && !z.ents[ce] {
		ce = parent(ce)
	}
	if n := z.nodes["*."+ce]; n != nil {
		return z.answer(n, name, true, qtype, a)
	}
	a.Rcode = dns.RcodeNameError
	a.Ns = append(a.Ns, z.negSOA())
	return ""
}

// answer adds a node's records of qtype (its CNAME when it has one), as owned by name when
// synthesised from a wildcard.
func (z *Zone) answer(n *node, name string, synth bool, qtype uint16, a *Answer) string {
	if cn, ok := n.sets[dns.TypeCNAME]; ok && qtype != dns.TypeCNAME {
		a.Answer = appendOwned(a.Answer, cn, name, synth)
		return cn[0].(*dns.CNAME).Target
	}
	if qtype == dns.TypeANY {
		for _, set := range n.sets {
			a.Answer = appendOwned(a.Answer, set, name, synth)
		}
		return ""
	}
	set, ok := n.sets[qtype]
	if !ok {
		z.noData(a)
		return ""
	}
	a.Answer = appendOwned(a.Answer, set, name, synth)
	for _, rr := range set {
		switch rr := rr.(type) {
		case *dns.MX:
			a.Extra = z.addresses(rr.Mx, a.Extra)
		case *dns.SRV:
			a.Extra = z.addresses(rr.Target, a.Extra)
		case *dns.NS:
			a.Extra = z.addresses(rr.Ns, a.Extra)
		}
	}
	return ""
}

// noData is NOERROR without an answer: the SOA in authority says for how long to cache that.
func (z *Zone) noData(a *Answer) { a.Ns = append(a.Ns, z.negSOA()) }

// negSOA is the SOA for a negative answer, with TTL min(SOA TTL, MINIMUM) (RFC 2308 §3).
func (z *Zone) negSOA() dns.RR {
	if z.soa.Minttl >= z.soa.Hdr.Ttl {
		return z.soa
	}
	s := *z.soa
	s.Hdr.Ttl = z.soa.Minttl
	return &s
}

// cut returns the highest delegation at or above name, below the apex ("" when none).
func (z *Zone) cut(name string) string {
	found := ""
	for n := name; n != z.origin && n != ""; n = parent(n) {
		if z.cuts[n] {
			found = n
		}
	}
	return found
}

// addresses appends the zone's A and AAAA records of target, for the additional section.
func (z *Zone) addresses(target string, extra []dns.RR) []dns.RR {
	n := z.nodes[Canonical(target)]
	if n == nil {
		return extra
	}
	for _, rr := range extra {
		if rr.Header().Name == Canonical(target) {
			return extra // already there
		}
	}
	extra = append(extra, n.sets[dns.TypeA]...)
	return append(extra, n.sets[dns.TypeAAAA]...)
}

// appendOwned appends a set, re-owned by name when synthesised from a wildcard.
func appendOwned(dst []dns.RR, set []dns.RR, name string, synth bool) []dns.RR {
	if !synth {
		return append(dst, set...)
	}
	for _, rr := range set {
		c := dns.Copy(rr)
		c.Header().Name = name
		dst = append(dst, c)
	}
	return dst
}
