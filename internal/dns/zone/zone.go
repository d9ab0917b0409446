// Package zone is the authoritative data of the DNS server: an immutable index of one zone's
// records (Zone), the set of zones a server answers for (Set), and the answer to a question
// (Set.Lookup) by the rules of RFC 1034 §4.3.2, RFC 2308 (negative answers), RFC 4592
// (wildcards) and RFC 6604 (CNAME chains). A new Set is built on every change and swapped in
// whole, so lookups take no lock. Nothing outside internal/dns imports miekg/dns types.
package zone

import (
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// SOA holds a zone's start-of-authority fields; Build fills the serial and names.
type SOA struct {
	MName   string // primary name server
	RName   string // the administrator's mailbox as a name (hostmaster.example.com.)
	Serial  uint32
	Refresh uint32
	Retry   uint32
	Expire  uint32
	Minimum uint32 // negative TTL (RFC 2308)
	TTL     uint32 // the SOA's own TTL
}

// Spec is what a zone is built from.
type Spec struct {
	// Origin is the zone's name (example.com, with or without the trailing dot).
	Origin string
	SOA    SOA
	// NS are the apex's name servers; NSTTL their TTL.
	NS    []string
	NSTTL uint32
	// Records are the zone's records in the order they were created: a record that
	// conflicts with one before it is refused (a CNAME beside other data, the same type at a
	// name twice).
	Records []Record
}

// Record is one DomainRecord's data: records of one type at one name (a helper such as DKIM
// may name another owner), with the key problems are reported under.
type Record struct {
	Key string
	RRs []dns.RR
}

// node is one owner name's data.
type node struct {
	sets map[uint16][]dns.RR
}

// Zone is one zone's data, immutable once built.
type Zone struct {
	origin string // canonical: lower case, trailing dot
	labels int    // of origin
	soa    *dns.SOA
	nodes  map[string]*node
	// ents are the empty non-terminals: names that hold no data but have names below them.
	ents map[string]bool
	// cuts are the names below the apex with NS records (delegations).
	cuts  map[string]bool
	count int // records accepted
}

// Canonical is a name as zones store it: lower case with the trailing dot.
func Canonical(name string) string { return dns.CanonicalName(name) }

// Build indexes a zone. Records that cannot be served are left out and returned as problems,
// keyed by Record.Key; the rest of the zone is served.
func Build(spec Spec) (*Zone, map[string]string) {
	z := &Zone{origin: Canonical(spec.Origin), nodes: map[string]*node{}, ents: map[string]bool{}, cuts: map[string]bool{}}
	z.labels = dns.CountLabel(z.origin)
	s := spec.SOA
	mname := s.MName
	if mname == "" && len(spec.NS) > 0 {
		mname = spec.NS[0]
	}
	z.soa = &dns.SOA{
		Hdr:     dns.RR_Header{Name: z.origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: s.TTL},
		Ns:      Canonical(mname),
		Mbox:    Canonical(s.RName),
		Serial:  s.Serial,
		Refresh: s.Refresh,
		Retry:   s.Retry,
		Expire:  s.Expire,
		Minttl:  s.Minimum,
	}
	z.add(z.soa)
	for _, ns := range spec.NS {
		z.add(&dns.NS{Hdr: dns.RR_Header{Name: z.origin, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: spec.NSTTL}, Ns: Canonical(ns)})
	}
	problems := map[string]string{}
	for _, r := range spec.Records {
		if msg := z.check(r); msg != "" {
			problems[r.Key] = msg
			continue
		}
		for _, rr := range r.RRs {
			rr.Header().Name = Canonical(rr.Header().Name)
			z.add(rr)
		}
		z.count++
	}
	for name := range z.nodes {
		for p := parent(name); p != "" && dns.CountLabel(p) > z.labels; p = parent(p) {
			if z.nodes[p] == nil {
				z.ents[p] = true
			}
		}
	}
	return z, problems
}

// check says why a record cannot join the zone ("" when it can).
func (z *Zone) check(r Record) string {
	if len(r.RRs) == 0 {
		return "the record has no data"
	}
	for _, rr := range r.RRs {
		h := rr.Header()
		name := Canonical(h.Name)
		if !dns.IsSubDomain(z.origin, name) {
			return fmt.Sprintf("%s is not inside the zone %s", strings.TrimSuffix(name, "."), strings.TrimSuffix(z.origin, "."))
		}
		n := z.nodes[name]
		if n == nil {
			continue
		}
		t := h.Rrtype
		if name == z.origin && (t == dns.TypeSOA || t == dns.TypeNS) {
			return fmt.Sprintf("the zone's %s at its apex is the DomainZone's (spec.nameservers, spec.soa), not a record's", dns.TypeToString[t])
		}
		if _, dup := n.sets[t]; dup {
			return fmt.Sprintf("%s already has %s records from another DomainRecord; put all the values in one record", strings.TrimSuffix(name, "."), dns.TypeToString[t])
		}
		if t == dns.TypeCNAME {
			return fmt.Sprintf("%s already has other data: a CNAME cannot share its name (RFC 1034 §3.6.2)", strings.TrimSuffix(name, "."))
		}
		if _, cname := n.sets[dns.TypeCNAME]; cname {
			return fmt.Sprintf("%s is a CNAME (an alias): no other data can share its name (RFC 1034 §3.6.2)", strings.TrimSuffix(name, "."))
		}
	}
	if rr := r.RRs[0]; rr.Header().Rrtype == dns.TypeCNAME && Canonical(rr.Header().Name) == z.origin {
		return "a CNAME cannot be at the zone's apex, which holds its SOA and NS"
	}
	return ""
}

func (z *Zone) add(rr dns.RR) {
	h := rr.Header()
	h.Class = dns.ClassINET
	n := z.nodes[h.Name]
	if n == nil {
		n = &node{sets: map[uint16][]dns.RR{}}
		z.nodes[h.Name] = n
	}
	n.sets[h.Rrtype] = append(n.sets[h.Rrtype], rr)
	if h.Rrtype == dns.TypeNS && h.Name != z.origin {
		z.cuts[h.Name] = true
	}
}

// Origin is the zone's name, canonical.
func (z *Zone) Origin() string { return z.origin }

// Serial is the zone's SOA serial.
func (z *Zone) Serial() uint32 { return z.soa.Serial }

// Records is how many records the zone serves.
func (z *Zone) Records() int { return z.count }

// SOA is the zone's SOA record.
func (z *Zone) SOA() *dns.SOA { return z.soa }

// All returns every record of the zone, SOA first, in canonical order (for a transfer).
func (z *Zone) All() []dns.RR {
	names := make([]string, 0, len(z.nodes))
	for n := range z.nodes {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return canonicalLess(names[i], names[j]) })
	out := []dns.RR{z.soa}
	for _, n := range names {
		sets := z.nodes[n].sets
		types := make([]int, 0, len(sets))
		for t := range sets {
			types = append(types, int(t))
		}
		sort.Ints(types)
		for _, t := range types {
			if uint16(t) == dns.TypeSOA {
				continue
			}
			out = append(out, sets[uint16(t)]...)
		}
	}
	return out
}

// canonicalLess orders names as RFC 4034 §6.1 does: by labels from the right.
func canonicalLess(a, b string) bool {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if la[i] != lb[j] {
			return la[i] < lb[j]
		}
	}
	return len(la) < len(lb)
}

// parent is the name one label up ("" above the root).
func parent(name string) string {
	i, end := dns.NextLabel(name, 0)
	if end {
		return ""
	}
	return name[i:]
}

// Set is the zones a server answers for, immutable once built.
type Set struct {
	zones map[string]*Zone
	// maxLabels bounds the suffix walk of find.
	maxLabels int
}

// NewSet makes a set of zones; a zone's name must not repeat.
func NewSet(zones ...*Zone) *Set {
	s := &Set{zones: make(map[string]*Zone, len(zones))}
	for _, z := range zones {
		s.zones[z.origin] = z
		if z.labels > s.maxLabels {
			s.maxLabels = z.labels
		}
	}
	return s
}

// Zone returns the zone of that name, or nil.
func (s *Set) Zone(origin string) *Zone {
	if s == nil {
		return nil
	}
	return s.zones[Canonical(origin)]
}

// Zones returns the set's zones.
func (s *Set) Zones() []*Zone {
	if s == nil {
		return nil
	}
	out := make([]*Zone, 0, len(s.zones))
	for _, z := range s.zones {
		out = append(out, z)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].origin < out[j].origin })
	return out
}

// Find returns the zone that holds name (canonical), the one with the longest matching
// suffix; nil when none does.
func (s *Set) Find(name string) *Zone {
	if s == nil || len(s.zones) == 0 {
		return nil
	}
	// Skip the labels that no zone's name is long enough to end with.
	n := dns.CountLabel(name)
	off := 0
	for ; n > s.maxLabels; n-- {
		off, _ = dns.NextLabel(name, off)
	}
	for {
		if z := s.zones[name[off:]]; z != nil {
			return z
		}
		var end bool
		off, end = dns.NextLabel(name, off)
		if end {
			return s.zones["."]
		}
	}
}
