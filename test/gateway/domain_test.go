package gateway

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"apoxy.dev/apoxy/internal/edgetest"
)

// ask queries the test's DNS server over UDP.
func ask(t *testing.T, e *edgetest.Env, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, e.DNSAddr)
	if err != nil {
		t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

// recordStatus returns a DomainRecord's phase and the message of its first false condition.
func objectStatus(e *edgetest.Env, kind, name string) (phase, reason, msg string, st map[string]any) {
	u := e.Get("core.apoxy.dev/v1alpha3", kind, name)
	if u == nil {
		return "", "", "not found", nil
	}
	st, _ = u.Object["status"].(map[string]any)
	phase, _ = st["phase"].(string)
	conds, _ := st["conditions"].([]any)
	for _, c := range conds {
		m := c.(map[string]any)
		if m["status"] != "True" {
			return phase, fmt.Sprint(m["reason"]), fmt.Sprint(m["message"]), st
		}
	}
	return phase, "", "", st
}

// The seed's DomainRecord, applied unchanged with a DomainZone named example-com: the zone
// goes Active and answers with authority; the record answers with the default Gateway's
// address; every change (a new record, an edit, a delete) is answered within a second with a
// new serial; a CNAME beside other data is refused at admission and a record for a missing
// zone is reported, not served; another project cannot take the zone or a name under it.
func TestDomainZoneAndRecords(t *testing.T) {
	e := edgetest.Start(t, edgetest.Options{DNS: true})
	seed, err := os.ReadFile("../../docs/examples/seed/domainrecord.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e.Apply(string(seed))
	e.WaitFor("the record waits for its zone", func() error {
		if phase, reason, _, _ := objectStatus(e, "DomainRecord", "api-example-com"); phase != "Pending" || reason != "ZoneNotFound" {
			return fmt.Errorf("phase %q reason %q", phase, reason)
		}
		return nil
	})
	e.Apply(`
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainZone
metadata: {name: example-com}
spec:
  domainName: example.com
`)
	e.WaitFor("zone Active, record Active", func() error {
		if phase, _, msg, _ := objectStatus(e, "DomainZone", "example-com"); phase != "Active" {
			return fmt.Errorf("zone %q %s", phase, msg)
		}
		if phase, _, msg, _ := objectStatus(e, "DomainRecord", "api-example-com"); phase != "Active" {
			return fmt.Errorf("record %q %s", phase, msg)
		}
		return nil
	})
	r := ask(t, e, "api.example.com", dns.TypeA)
	if !r.Authoritative || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.0.1" || r.Answer[0].Header().Ttl != 300 {
		t.Fatalf("api.example.com A: %v", r)
	}
	r = ask(t, e, "example.com", dns.TypeNS)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.NS).Ns != "ns1.example.com." || len(r.Extra) < 1 {
		t.Fatalf("NS with glue: %v", r)
	}
	r = ask(t, e, "nope.example.com", dns.TypeA)
	if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
		t.Fatalf("NXDOMAIN: %v", r)
	}
	serial := func() uint32 { return ask(t, e, "example.com", dns.TypeSOA).Answer[0].(*dns.SOA).Serial }
	s1 := serial()
	_, _, _, zst := objectStatus(e, "DomainZone", "example-com")
	if fmt.Sprint(zst["serial"]) != fmt.Sprint(s1) || fmt.Sprint(zst["nameservers"]) != "[ns1.example.com]" || zst["domainName"] != "example.com" || fmt.Sprint(zst["records"]) != "1" {
		t.Fatalf("zone status %v (serial %d)", zst, s1)
	}

	// A new record is answered within a second, with a new serial.
	start := time.Now()
	e.Apply(`
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainRecord
metadata: {name: www}
spec:
  zone: example-com
  name: www.example.com
  target: {dns: {fqdn: api.example.com}}
---
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainRecord
metadata: {name: mail}
spec:
  zone: example-com
  name: example.com
  target:
    dns:
      spf: {mx: true, all: fail}
`)
	// Apply creates the two objects one after the other: both are answered within a second
	// of the second.
	for {
		r = ask(t, e, "www.example.com", dns.TypeA)
		if len(r.Answer) == 2 && len(ask(t, e, "example.com", dns.TypeTXT).Answer) == 1 {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("www and the SPF record not answered within a second: %v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.Answer[0].(*dns.CNAME).Target != "api.example.com." || r.Answer[1].(*dns.A).A.String() != "127.0.0.1" {
		t.Fatalf("www chain %v", r.Answer)
	}
	if s2 := serial(); s2 <= s1 {
		t.Fatalf("serial %d after %d", s2, s1)
	}
	if r = ask(t, e, "example.com", dns.TypeTXT); len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != "v=spf1 mx -all" {
		t.Fatalf("SPF %v", r)
	}
	e.WaitFor("resolved values in status", func() error {
		_, _, _, st := objectStatus(e, "DomainRecord", "www")
		if fmt.Sprint(st["resolvedValues"]) != "[api.example.com.]" || st["type"] != "CNAME" {
			return fmt.Errorf("%v", st)
		}
		return nil
	})

	// An A record beside the CNAME is refused at admission, naming the field and the other
	// record; www keeps answering.
	err = e.ApplyErr(`
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainRecord
metadata: {name: www-a}
spec:
  zone: example-com
  name: www.example.com
  target: {dns: {a: [192.0.2.9]}}
`)
	if err == nil || !strings.Contains(err.Error(), "spec.name") || !strings.Contains(err.Error(), `DomainRecord "www" is a CNAME`) {
		t.Fatalf("an A record beside a CNAME: %v", err)
	}
	if r = ask(t, e, "www.example.com", dns.TypeA); len(r.Answer) != 2 {
		t.Fatalf("www after the clash: %v", r)
	}

	// Deleting a record: NXDOMAIN within a second.
	e.Delete("core.apoxy.dev/v1alpha3", "DomainRecord", "www")
	start = time.Now()
	for ask(t, e, "www.example.com", dns.TypeA).Rcode != dns.RcodeNameError {
		if time.Since(start) > time.Second {
			t.Fatal("www still answered a second after its delete")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Another project: the same zone and a zone inside it are refused, without naming the
	// holder; its own zone is served.
	other := e.Project("other")
	other.Apply(`
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainZone
metadata: {name: example.com}
---
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainZone
metadata: {name: shop-example-com}
spec: {domainName: shop.example.com}
---
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainZone
metadata: {name: other.test}
---
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainRecord
metadata: {name: hijack}
spec:
  zone: shop-example-com
  name: shop.example.com
  target: {dns: {a: [203.0.113.66]}}
`)
	other.WaitFor("the overlapping zones refused", func() error {
		for _, name := range []string{"example.com", "shop-example-com"} {
			phase, reason, msg, _ := objectStatus(other, "DomainZone", name)
			if phase != "Error" || reason != "ZoneConflict" || strings.Contains(msg, "default") {
				return fmt.Errorf("%s: %q %q %q", name, phase, reason, msg)
			}
		}
		if phase, _, msg, _ := objectStatus(other, "DomainZone", "other.test"); phase != "Active" {
			return fmt.Errorf("other.test: %q %s", phase, msg)
		}
		return nil
	})
	if r = ask(t, e, "shop.example.com", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Fatalf("the other project's record under example.com was served: %v", r)
	}
	if r = ask(t, e, "other.test", dns.TypeSOA); !r.Authoritative || len(r.Answer) != 1 {
		t.Fatalf("other.test SOA: %v", r)
	}
}
