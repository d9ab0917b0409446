package tunnel

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestParseName(t *testing.T) {
	for _, c := range []struct {
		host      string
		want      Name
		ok, isErr bool
	}{
		{"office-link.tun.apoxy.net", Name{Node: "office-link"}, true, false},
		{"Office-Link.TUN.apoxy.net.", Name{Node: "office-link"}, true, false},
		{"grafana.office-link.tun.apoxy.net", Name{Node: "office-link", Service: "grafana"}, true, false},
		{"a.b.office-link.tun.apoxy.net", Name{}, true, true},
		{"..tun.apoxy.net", Name{}, true, true},
		{"tun.apoxy.net", Name{}, false, false},
		{"example.com", Name{}, false, false},
		{"xtun.apoxy.net", Name{}, false, false},
	} {
		n, ok, err := ParseName(c.host, DefaultDomain)
		if n != c.want || ok != c.ok || (err != nil) != c.isErr {
			t.Errorf("ParseName(%q) = %+v %v %v, want %+v %v err=%v", c.host, n, ok, err, c.want, c.ok, c.isErr)
		}
	}
	if a, ok := DashedIPv4("10-0-0-5"); !ok || a != netip.MustParseAddr("10.0.0.5") {
		t.Errorf("DashedIPv4: %v %v", a, ok)
	}
	for _, bad := range []string{"grafana", "10-0-0", "300-0-0-1", "1-2-3-4-5"} {
		if _, ok := DashedIPv4(bad); ok {
			t.Errorf("DashedIPv4(%q) accepted", bad)
		}
	}
}

func TestParseServicesAndLabels(t *testing.T) {
	s, err := ParseServices("grafana=10.0.0.5, db=192.168.1.10")
	if err != nil || len(s) != 2 || s["db"] != netip.MustParseAddr("192.168.1.10") {
		t.Fatalf("%v %v", s, err)
	}
	if back, _ := ParseServices(FormatServices(s)); len(back) != 2 || back["grafana"] != s["grafana"] {
		t.Errorf("round trip: %v", back)
	}
	if _, err := ParseServices("x=::1,Bad_Name=10.0.0.1"); err == nil || !strings.Contains(err.Error(), "name=IPv4") {
		t.Errorf("bad services: %v", err)
	}
	l, err := ParseLabels("env=prod,apoxy.dev/cluster=eu-1")
	if err != nil || l["apoxy.dev/cluster"] != "eu-1" {
		t.Fatalf("%v %v", l, err)
	}
	for _, bad := range []string{"noequals", "k=has space", "-bad=1"} {
		if _, err := ParseLabels(bad); err == nil {
			t.Errorf("ParseLabels(%q) accepted", bad)
		}
	}
}

// The overlay DNS answers: AAAA for a node, NODATA for A, NXDOMAIN with an SOA for an unknown
// node, REFUSED outside the domain.
func TestAnswerTunnelName(t *testing.T) {
	node := NodeAddr(NodePrefix("p1", 1))
	resolve := func(host string) ([]netip.Addr, bool, error) {
		n, ok, err := ParseName(host, DefaultDomain)
		if !ok || err != nil {
			return nil, ok, err
		}
		if n.Node != "office" {
			return nil, true, errNoAgent
		}
		return []netip.Addr{node}, true, nil
	}
	ask := func(name string, qtype uint16) *dns.Msg {
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		return AnswerTunnelName(q, DefaultDomain, resolve)
	}
	if r := ask("office.tun.apoxy.net.", dns.TypeAAAA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !r.Authoritative ||
		r.Answer[0].(*dns.AAAA).AAAA.String() != node.String() {
		t.Errorf("AAAA: %v", r)
	}
	if r := ask("office.tun.apoxy.net.", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("A: %v", r)
	}
	if r := ask("nope.tun.apoxy.net.", dns.TypeAAAA); r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
		t.Errorf("NXDOMAIN: %v", r)
	}
	if r := ask("example.com.", dns.TypeAAAA); r.Rcode != dns.RcodeRefused {
		t.Errorf("outside: %v", r)
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{"office.tun.apoxy.net", "a.b.tun.apoxy.net.", "10-0-0-1.x.tun.apoxy.net", "..", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		n, ok, err := ParseName(host, DefaultDomain)
		if ok && err == nil && (n.Node == "" || strings.Contains(n.Node, ".") || strings.Contains(n.Service, ".")) {
			t.Fatalf("%q parsed as %+v", host, n)
		}
		DashedIPv4(n.Service)
	})
}

func FuzzParseServicesLabels(f *testing.F) {
	for _, s := range []string{"grafana=10.0.0.5,db=1.2.3.4", "a=b", "=,=", "k=v,apoxy.dev/x=y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s, _ := ParseServices(v)
		for name, a := range s {
			if !isLabel(name) || !a.Is4() {
				t.Fatalf("%q gave service %q=%v", v, name, a)
			}
		}
		if back, err := ParseServices(FormatServices(s)); err != nil || len(back) != len(s) {
			t.Fatalf("round trip of %v: %v %v", s, back, err)
		}
		ParseLabels(v)
	})
}

// Arbitrary DNS queries to the overlay DNS server never crash it and always get an answer
// with the query's ID.
func FuzzAnswerTunnelName(f *testing.F) {
	q := new(dns.Msg)
	q.SetQuestion("office.tun.apoxy.net.", dns.TypeAAAA)
	b, _ := q.Pack()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		q := new(dns.Msg)
		if q.Unpack(b) != nil {
			return
		}
		r := AnswerTunnelName(q, DefaultDomain, func(host string) ([]netip.Addr, bool, error) {
			n, ok, err := ParseName(host, DefaultDomain)
			if !ok || err != nil || n.Node == "" {
				return nil, ok, err
			}
			return []netip.Addr{NodeAddr(NodePrefix("p1", 1))}, true, nil
		})
		if r.Id != q.Id {
			t.Fatal("answer without the query's ID")
		}
		if _, err := r.Pack(); err != nil {
			t.Fatalf("answer does not pack: %v", err)
		}
	})
}
