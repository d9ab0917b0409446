package v1alpha3

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

func record(t *testing.T, y string) *DomainRecord {
	t.Helper()
	r := &DomainRecord{ObjectMeta: metav1.ObjectMeta{Name: "r"}}
	if err := yaml.UnmarshalStrict([]byte(y), &r.Spec); err != nil {
		t.Fatalf("%s: %v", y, err)
	}
	SetDefaultsDomainRecord(r)
	return r
}

// Each bad record is refused with its field's path and a message that says the fix.
func TestValidateDomainRecord(t *testing.T) {
	ok := []string{
		"{zone: example-com, name: api.example.com, ttl: 300, target: {ref: {group: gateway.apoxy.dev, kind: Gateway, name: default}}}",
		"{zone: z, name: '*.apps.example.com', target: {ref: {group: gateway.apoxy.dev, kind: Gateway, name: default}}}",
		"{zone: z, name: example.com, target: {dns: {mx: [{preference: 10, exchange: mail.example.com}]}}}",
		"{zone: z, name: _sip._tcp.example.com, target: {dns: {srv: [{priority: 1, weight: 1, port: 5060, target: sip.example.com}]}}}",
		"{zone: z, name: example.com, target: {dns: {dmarc: {policy: reject, aggregateReports: ['mailto:d@example.com']}}}}",
		"{zone: z, name: sub.example.com, target: {dns: {ds: [{keyTag: 1, algorithm: 13, digestType: 2, digest: " + strings.Repeat("ab", 32) + "}]}}}",
		"{name: shop.example.net, target: {ref: {group: gateway.apoxy.dev, kind: Gateway, name: default}}, tls: {challenge: HTTP01}}",
	}
	for _, y := range ok {
		if errs := ValidateDomainRecord(record(t, y), nil); len(errs) > 0 {
			t.Errorf("%s: %v", y, errs.ToAggregate())
		}
	}
	bad := []struct{ spec, path, msg string }{
		{"{zone: z, name: api.example.com, target: {dns: {a: [300.1.2.3]}}}", "spec.target.dns.a[0]", "IPv4"},
		{"{zone: z, name: api.example.com, target: {dns: {aaaa: [192.0.2.1]}}}", "spec.target.dns.aaaa[0]", "IPv6"},
		{"{zone: z, name: api.example.com, target: {dns: {a: [192.0.2.1], txt: [x]}}}", "spec.target.dns", "exactly one record type"},
		{"{zone: z, name: api.example.com, target: {}}", "spec.target", "target.ref"},
		{"{zone: z, name: api.example.com, target: {dns: {a: [192.0.2.1]}, ref: {group: gateway.apoxy.dev, kind: Gateway, name: d}}}", "spec.target", "exactly one"},
		{"{zone: z, name: api.example.com, ttl: 90000, target: {dns: {a: [192.0.2.1]}}}", "spec.ttl", "86400"},
		{"{zone: z, name: 'a..example.com', target: {dns: {a: [192.0.2.1]}}}", "spec.name", "empty label"},
		{"{zone: z, name: 'a.*.example.com', target: {dns: {a: [192.0.2.1]}}}", "spec.name", "first label"},
		{"{zone: z, name: api.example.com, target: {dns: {txt: ['" + strings.Repeat("x", 4001) + "']}}}", "spec.target.dns.txt[0]", "4000"},
		{"{zone: z, name: api.example.com, target: {dns: {fqdn: api.example.com}}}", "spec.target.dns.fqdn", "itself"},
		{"{zone: z, name: api.example.com, target: {dns: {caa: [{tag: issuer, value: x}]}}}", "spec.target.dns.caa[0].tag", "issue"},
		{"{zone: z, name: api.example.com, target: {dns: {mx: [{preference: 70000, exchange: m.example.com}]}}}", "spec.target.dns.mx[0].preference", "65535"},
		{"{zone: z, name: api.example.com, target: {dns: {ds: [{keyTag: 1, algorithm: 13, digestType: 2, digest: abcd}]}}}", "spec.target.dns.ds[0].digest", "32 bytes"},
		{"{zone: z, name: api.example.com, target: {dns: {spf: {ip4: ['2001:db8::/32']}}}}", "spec.target.dns.spf.ip4[0]", "IPv4"},
		{"{zone: z, name: api.example.com, target: {dns: {dmarc: {policy: block}}}}", "spec.target.dns.dmarc.policy", "quarantine"},
		{"{zone: z, name: api.example.com, target: {ref: {group: core.apoxy.dev, kind: Backend, name: b}}}", "spec.target.ref", "Gateway"},
		{"{zone: z, name: api.example.com, target: {dns: {a: [192.0.2.1]}}, tls: {}}", "spec.tls", "ref"},
		{"{name: api.example.com, target: {ref: {group: gateway.apoxy.dev, kind: Gateway, name: d}}, tls: {challenge: DNS01}}", "spec.tls.challenge", "spec.zone"},
		{"{zone: z, name: '*.example.com', target: {ref: {group: gateway.apoxy.dev, kind: Gateway, name: d}}, tls: {challenge: HTTP01}}", "spec.tls.challenge", "DNS01"},
	}
	for _, c := range bad {
		errs := ValidateDomainRecord(record(t, c.spec), nil)
		if len(errs) == 0 || errs[0].Field != c.path || !strings.Contains(errs[0].Error(), c.msg) {
			t.Errorf("%.80s: %v; want %s saying %q", c.spec, errs.ToAggregate(), c.path, c.msg)
		}
	}
	// Immutable: name, zone, and the target's kind.
	old := record(t, "{zone: z, name: api.example.com, target: {dns: {a: [192.0.2.1]}}}")
	for _, c := range []struct{ spec, path string }{
		{"{zone: z, name: www.example.com, target: {dns: {a: [192.0.2.1]}}}", "spec.name"},
		{"{zone: y, name: api.example.com, target: {dns: {a: [192.0.2.1]}}}", "spec.zone"},
		{"{zone: z, name: api.example.com, target: {ref: {group: gateway.apoxy.dev, kind: Gateway, name: d}}}", "spec.target"},
	} {
		errs := ValidateDomainRecord(record(t, c.spec), old)
		if len(errs) == 0 || errs[0].Field != c.path {
			t.Errorf("update %s: %v", c.spec, errs.ToAggregate())
		}
	}
	if errs := ValidateDomainRecord(record(t, "{zone: z, name: API.example.com., target: {dns: {a: [192.0.2.2]}}}"), old); len(errs) > 0 {
		t.Errorf("a changed value (same name, other case) refused: %v", errs.ToAggregate())
	}
}

func TestValidateDomainZone(t *testing.T) {
	z := &DomainZone{ObjectMeta: metav1.ObjectMeta{Name: "example-com"}, Spec: DomainZoneSpec{DomainName: "Example.com."}}
	if errs := ValidateDomainZone(z, nil); len(errs) > 0 || z.ZoneName() != "example.com" {
		t.Fatalf("%v %s", errs, z.ZoneName())
	}
	moved := z.DeepCopy()
	moved.Spec.DomainName = "example.org"
	if errs := ValidateDomainZone(moved, z); len(errs) != 1 || errs[0].Field != "spec.domainName" {
		t.Fatalf("rename: %v", errs)
	}
	bad := &DomainZone{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: DomainZoneSpec{
		Nameservers: []string{"ns1..example.com"},
		SOA:         &ZoneSOA{Email: "nobody", NegativeTTL: ptr(int32(-1))},
		Secondaries: []ZoneSecondary{{Address: "ns2.example.com"}},
	}}
	var fields []string
	for _, e := range ValidateDomainZone(bad, nil) {
		fields = append(fields, e.Field)
	}
	if got := strings.Join(fields, " "); got != "spec.nameservers[0] spec.soa.email spec.soa.negativeTTL spec.secondaries[0].address" {
		t.Fatalf("fields %s", got)
	}
}

func ptr[T any](v T) *T { return &v }

func TestValidateDomainRecordPeers(t *testing.T) {
	rec := func(name, fqdn, zone string, dnsT *DomainTargetDNS) *DomainRecord {
		r := &DomainRecord{Spec: DomainRecordSpec{Name: fqdn, Zone: zone}}
		r.Name = name
		if dnsT == nil {
			r.Spec.Target.Ref = &DomainTargetRef{Group: "gateway.apoxy.dev", Kind: "Gateway", Name: "default"}
		} else {
			r.Spec.Target.DNS = dnsT
		}
		return r
	}
	cname := rec("www", "www.example.com", "z", &DomainTargetDNS{FQDN: ptr("api.example.com")})
	a := rec("www-a", "WWW.example.com.", "z", &DomainTargetDNS{A: []string{"192.0.2.1"}})
	others := []*DomainRecord{
		cname,
		rec("mx", "mail.example.com", "z", &DomainTargetDNS{MX: []MXRecord{{Preference: 10, Exchange: "mx.example.com"}}}),
		rec("dkim", "www.example.com", "z", &DomainTargetDNS{DKIM: []DKIMRecord{{Selector: "s1", KeyType: "rsa", PublicKey: "AAAA"}}}),
		rec("elsewhere", "www.example.com", "other-zone", &DomainTargetDNS{A: []string{"192.0.2.2"}}),
	}
	for _, tc := range []struct {
		r    *DomainRecord
		want string
	}{
		{a, `spec.name: Invalid value: "WWW.example.com.": DomainRecord "www" is a CNAME`},
		{rec("www-ref", "www.example.com", "z", nil), `DomainRecord "www" is a CNAME`},
		{rec("mx2", "mail.example.com", "z", &DomainTargetDNS{MX: []MXRecord{{Preference: 20, Exchange: "mx2.example.com"}}}), `DomainRecord "mx" already holds the MX records`},
		{rec("mail-cname", "mail.example.com", "z", &DomainTargetDNS{FQDN: ptr("x.example.com")}), `spec.target.dns.fqdn: Invalid value: "x.example.com": a CNAME cannot share its name with other data (RFC 1034 §3.6.2): DomainRecord "mx" holds MX`},
		{rec("mail-a", "mail.example.com", "z", &DomainTargetDNS{A: []string{"192.0.2.3"}}), ""},
		{cname, ""}, // itself, on update; the DKIM helper lives at s1._domainkey.www
		{rec("ext", "www.example.com", "", &DomainTargetDNS{A: []string{"192.0.2.4"}}), ""},
	} {
		errs := ValidateDomainRecordPeers(tc.r, others)
		got := errs.ToAggregate()
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("%s: unexpected %v", tc.r.Name, got)
		case tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.r.Name, got, tc.want)
		}
	}
}
