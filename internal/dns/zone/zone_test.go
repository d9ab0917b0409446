package zone

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1a3 "apoxy.dev/apoxy/api/core/v1alpha3"
)

func rr(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return r
}

func rec(t *testing.T, key string, lines ...string) Record {
	r := Record{Key: key}
	for _, l := range lines {
		r.RRs = append(r.RRs, rr(t, l))
	}
	return r
}

// testZones is example.com with every kind of node the lookup rules care about, and
// example.org, whose CNAME points into example.com.
func testZones(t *testing.T) (*Set, map[string]string) {
	soa := SOA{RName: "hostmaster.example.com", Serial: 7, Refresh: 3600, Retry: 600, Expire: 1209600, Minimum: 60, TTL: 300}
	com, problems := Build(Spec{
		Origin: "example.com", SOA: soa, NS: []string{"ns1.example.com", "ns2.example.net"}, NSTTL: 3600,
		Records: []Record{
			rec(t, "ns1", "ns1.example.com. 300 IN A 192.0.2.53"),
			rec(t, "gw", "gw.example.com. 300 IN A 192.0.2.1", "gw.example.com. 300 IN A 192.0.2.2"),
			rec(t, "gw6", "gw.example.com. 300 IN AAAA 2001:db8::1"),
			rec(t, "www", "www.example.com. 300 IN CNAME gw.example.com."),
			rec(t, "c1", "c1.example.com. 300 IN CNAME c2.example.com."),
			rec(t, "c2", "c2.example.com. 300 IN CNAME gw.example.com."),
			rec(t, "out", "out.example.com. 300 IN CNAME elsewhere.example.net."),
			rec(t, "dangling", "dangling.example.com. 300 IN CNAME nothing.example.com."),
			rec(t, "wild", "*.apps.example.com. 60 IN A 192.0.2.80"),
			rec(t, "deep", "x.b.c.example.com. 300 IN TXT \"deep\""),
			rec(t, "mx", "example.com. 300 IN MX 10 mail.example.com."),
			rec(t, "mail", "mail.example.com. 300 IN A 192.0.2.25"),
			rec(t, "sub", "sub.example.com. 300 IN NS ns.sub.example.com."),
			rec(t, "subglue", "ns.sub.example.com. 300 IN A 192.0.2.99"),
			rec(t, "subds", "sub.example.com. 300 IN DS 12345 13 2 ABCDEF"),
			// Refused: a CNAME beside data, a second A set, out of zone, CNAME at the apex,
			// NS at the apex.
			rec(t, "cname-clash", "gw.example.com. 300 IN CNAME www.example.com."),
			rec(t, "data-on-cname", "www.example.com. 300 IN TXT \"x\""),
			rec(t, "dup", "gw.example.com. 300 IN A 192.0.2.3"),
			rec(t, "outside", "api.example.net. 300 IN A 192.0.2.4"),
			rec(t, "apex-cname", "example.com. 300 IN CNAME gw.example.com."),
			rec(t, "apex-ns", "example.com. 300 IN NS other.example.net."),
		},
	})
	org, _ := Build(Spec{Origin: "example.org.", SOA: soa, NS: []string{"ns1.example.com"},
		Records: []Record{rec(t, "alias", "www.example.org. 300 IN CNAME www.example.com.")}})
	return NewSet(com, org), problems
}

func TestBuildRefusesConflicts(t *testing.T) {
	_, problems := testZones(t)
	want := map[string]string{
		"cname-clash":   "already has other data",
		"data-on-cname": "is a CNAME",
		"dup":           "already has A records",
		"outside":       "not inside the zone example.com",
		"apex-cname":    "already has other data",
		"apex-ns":       "DomainZone's",
	}
	for k, frag := range want {
		if !strings.Contains(problems[k], frag) {
			t.Errorf("%s: problem %q, want it to say %q", k, problems[k], frag)
		}
	}
	if len(problems) != len(want) {
		t.Errorf("problems %v", problems)
	}
}

func TestLookup(t *testing.T) {
	s, _ := testZones(t)
	type want struct {
		rcode  int
		aa     bool
		answer []string
		ns     []string
		extra  []string
	}
	soaNeg := "example.com.\t60\tIN\tSOA\tns1.example.com. hostmaster.example.com. 7 3600 600 1209600 60"
	for _, c := range []struct {
		name  string
		qtype uint16
		want  want
	}{
		{"GW.Example.COM", dns.TypeA, want{0, true, []string{"gw.example.com.\t300\tIN\tA\t192.0.2.1", "gw.example.com.\t300\tIN\tA\t192.0.2.2"}, nil, nil}},
		{"gw.example.com", dns.TypeAAAA, want{0, true, []string{"gw.example.com.\t300\tIN\tAAAA\t2001:db8::1"}, nil, nil}},
		{"gw.example.com", dns.TypeTXT, want{0, true, nil, []string{soaNeg}, nil}},
		{"nope.example.com", dns.TypeA, want{dns.RcodeNameError, true, nil, []string{soaNeg}, nil}},
		{"www.example.com", dns.TypeA, want{0, true, []string{"www.example.com.\t300\tIN\tCNAME\tgw.example.com.", "gw.example.com.\t300\tIN\tA\t192.0.2.1", "gw.example.com.\t300\tIN\tA\t192.0.2.2"}, nil, nil}},
		{"www.example.com", dns.TypeCNAME, want{0, true, []string{"www.example.com.\t300\tIN\tCNAME\tgw.example.com."}, nil, nil}},
		{"c1.example.com", dns.TypeAAAA, want{0, true, []string{"c1.example.com.\t300\tIN\tCNAME\tc2.example.com.", "c2.example.com.\t300\tIN\tCNAME\tgw.example.com.", "gw.example.com.\t300\tIN\tAAAA\t2001:db8::1"}, nil, nil}},
		{"out.example.com", dns.TypeA, want{0, true, []string{"out.example.com.\t300\tIN\tCNAME\telsewhere.example.net."}, nil, nil}},
		{"dangling.example.com", dns.TypeA, want{dns.RcodeNameError, true, []string{"dangling.example.com.\t300\tIN\tCNAME\tnothing.example.com."}, []string{soaNeg}, nil}},
		{"www.example.org", dns.TypeA, want{0, true, []string{"www.example.org.\t300\tIN\tCNAME\twww.example.com.", "www.example.com.\t300\tIN\tCNAME\tgw.example.com.", "gw.example.com.\t300\tIN\tA\t192.0.2.1", "gw.example.com.\t300\tIN\tA\t192.0.2.2"}, nil, nil}},
		{"a.apps.example.com", dns.TypeA, want{0, true, []string{"a.apps.example.com.\t60\tIN\tA\t192.0.2.80"}, nil, nil}},
		{"x.y.apps.example.com", dns.TypeA, want{0, true, []string{"x.y.apps.example.com.\t60\tIN\tA\t192.0.2.80"}, nil, nil}},
		{"a.apps.example.com", dns.TypeTXT, want{0, true, nil, []string{soaNeg}, nil}},
		{"apps.example.com", dns.TypeA, want{0, true, nil, []string{soaNeg}, nil}}, // an empty non-terminal
		{"b.c.example.com", dns.TypeTXT, want{0, true, nil, []string{soaNeg}, nil}},
		{"c.example.com", dns.TypeA, want{0, true, nil, []string{soaNeg}, nil}},
		{"x.b.c.example.com", dns.TypeTXT, want{0, true, []string{"x.b.c.example.com.\t300\tIN\tTXT\t\"deep\""}, nil, nil}},
		{"example.com", dns.TypeMX, want{0, true, []string{"example.com.\t300\tIN\tMX\t10 mail.example.com."}, nil, []string{"mail.example.com.\t300\tIN\tA\t192.0.2.25"}}},
		{"example.com", dns.TypeNS, want{0, true, []string{"example.com.\t3600\tIN\tNS\tns1.example.com.", "example.com.\t3600\tIN\tNS\tns2.example.net."}, nil, []string{"ns1.example.com.\t300\tIN\tA\t192.0.2.53"}}},
		{"example.com", dns.TypeSOA, want{0, true, []string{"example.com.\t300\tIN\tSOA\tns1.example.com. hostmaster.example.com. 7 3600 600 1209600 60"}, nil, nil}},
		{"host.sub.example.com", dns.TypeA, want{0, false, nil, []string{"sub.example.com.\t300\tIN\tNS\tns.sub.example.com."}, []string{"ns.sub.example.com.\t300\tIN\tA\t192.0.2.99"}}},
		{"sub.example.com", dns.TypeA, want{0, false, nil, []string{"sub.example.com.\t300\tIN\tNS\tns.sub.example.com."}, []string{"ns.sub.example.com.\t300\tIN\tA\t192.0.2.99"}}},
		{"sub.example.com", dns.TypeDS, want{0, true, []string{"sub.example.com.\t300\tIN\tDS\t12345 13 2 ABCDEF"}, nil, nil}},
		{"example.net", dns.TypeA, want{dns.RcodeRefused, false, nil, nil, nil}},
		{"com", dns.TypeA, want{dns.RcodeRefused, false, nil, nil, nil}},
	} {
		a := s.Lookup(c.name, c.qtype)
		got := want{a.Rcode, a.Authoritative, strs(a.Answer), strs(a.Ns), strs(a.Extra)}
		if got.rcode != c.want.rcode || got.aa != c.want.aa || !slices.Equal(got.answer, c.want.answer) || !slices.Equal(got.ns, c.want.ns) || !slices.Equal(got.extra, c.want.extra) {
			t.Errorf("%s %s:\n got  %+v\n want %+v", c.name, dns.TypeToString[c.qtype], got, c.want)
		}
	}
}

func strs(rrs []dns.RR) []string {
	var out []string
	for _, r := range rrs {
		out = append(out, r.String())
	}
	return out
}

// A CNAME loop inside our zones stops after MaxChain hops.
func TestCNAMELoop(t *testing.T) {
	z, _ := Build(Spec{Origin: "loop.test", SOA: SOA{TTL: 60}, Records: []Record{
		rec(t, "a", "a.loop.test. 60 IN CNAME b.loop.test."),
		rec(t, "b", "b.loop.test. 60 IN CNAME a.loop.test."),
	}})
	a := NewSet(z).Lookup("a.loop.test", dns.TypeA)
	if len(a.Answer) != MaxChain+1 || a.Rcode != 0 {
		t.Fatalf("rcode %d, %d answers", a.Rcode, len(a.Answer))
	}
}

func TestFromDomainRecord(t *testing.T) {
	ttl := int32(120)
	mk := func(name string, d corev1a3.DomainTargetDNS) *corev1a3.DomainRecord {
		return &corev1a3.DomainRecord{ObjectMeta: metav1.ObjectMeta{Name: "r"}, Spec: corev1a3.DomainRecordSpec{Name: name, TTL: &ttl, Target: corev1a3.DomainRecordTarget{DNS: &d}}}
	}
	long := strings.Repeat("a", 300)
	pct := int32(50)
	for _, c := range []struct {
		r    *corev1a3.DomainRecord
		want []string
	}{
		{mk("Api.Example.com", corev1a3.DomainTargetDNS{A: []string{"192.0.2.1"}}), []string{"api.example.com.\t120\tIN\tA\t192.0.2.1"}},
		{mk("api.example.com", corev1a3.DomainTargetDNS{TXT: []string{long}}), []string{"api.example.com.\t120\tIN\tTXT\t\"" + long[:255] + "\" \"" + long[255:] + "\""}},
		{mk("api.example.com", corev1a3.DomainTargetDNS{TXT: []string{`say "hi"`}}), []string{"api.example.com.\t120\tIN\tTXT\t\"say \\\"hi\\\"\""}},
		{mk("example.com", corev1a3.DomainTargetDNS{SPF: &corev1a3.SPFRecord{MX: true, IP4: []string{"192.0.2.0/24"}, Include: []string{"_spf.example.net"}, All: "fail"}}),
			[]string{"example.com.\t120\tIN\tTXT\t\"v=spf1 mx ip4:192.0.2.0/24 include:_spf.example.net -all\""}},
		{mk("example.com", corev1a3.DomainTargetDNS{DMARC: &corev1a3.DMARCRecord{Policy: "reject", Percent: &pct, AggregateReports: []string{"mailto:d@example.com"}}}),
			[]string{"_dmarc.example.com.\t120\tIN\tTXT\t\"v=DMARC1; p=reject; pct=50; rua=mailto:d@example.com\""}},
		{mk("example.com", corev1a3.DomainTargetDNS{DKIM: []corev1a3.DKIMRecord{{Selector: "s1", PublicKey: "AAAA"}}}),
			[]string{"s1._domainkey.example.com.\t120\tIN\tTXT\t\"v=DKIM1; k=rsa; p=AAAA\""}},
		{mk("example.com", corev1a3.DomainTargetDNS{CAA: []corev1a3.CAARecord{{Tag: "issue", Value: "letsencrypt.org"}}}),
			[]string{"example.com.\t120\tIN\tCAA\t0 issue \"letsencrypt.org\""}},
		{mk("_sip._tcp.example.com", corev1a3.DomainTargetDNS{SRV: []corev1a3.SRVRecord{{Priority: 10, Weight: 5, Port: 5060, Target: "sip.example.com"}}}),
			[]string{"_sip._tcp.example.com.\t120\tIN\tSRV\t10 5 5060 sip.example.com."}},
	} {
		if got := strs(FromDomainRecord(c.r, nil)); !slices.Equal(got, c.want) {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
	ref := &corev1a3.DomainRecord{Spec: corev1a3.DomainRecordSpec{Name: "api.example.com", TTL: &ttl, Target: corev1a3.DomainRecordTarget{Ref: &corev1a3.DomainTargetRef{Group: "gateway.apoxy.dev", Kind: "Gateway", Name: "default"}}}}
	got := strs(FromDomainRecord(ref, []netip.Addr{netip.MustParseAddr("::ffff:192.0.2.7"), netip.MustParseAddr("2001:db8::7")}))
	if want := []string{"api.example.com.\t120\tIN\tA\t192.0.2.7", "api.example.com.\t120\tIN\tAAAA\t2001:db8::7"}; !slices.Equal(got, want) {
		t.Errorf("ref: %q", got)
	}
}

// The transfer order is canonical with the SOA first.
func TestAll(t *testing.T) {
	s, _ := testZones(t)
	all := s.Zone("example.com").All()
	if all[0].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("first %v", all[0])
	}
	var names []string
	for _, r := range all[1:] {
		if n := r.Header().Name; len(names) == 0 || names[len(names)-1] != n {
			names = append(names, n)
		}
	}
	if !slices.IsSortedFunc(names, func(a, b string) int {
		if canonicalLess(a, b) {
			return -1
		}
		return 1
	}) || names[0] != "example.com." {
		t.Fatalf("order %v", names)
	}
}
