package authority

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"apoxy.dev/apoxy/internal/dns/zone"
)

// zoneOf builds a zone from zone-file lines, one record per line.
func zoneOf(t testing.TB, origin string, serial uint32, lines ...string) *zone.Zone {
	t.Helper()
	var recs []zone.Record
	for i, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		// Lines with the same owner and type are one record.
		if n := len(recs); n > 0 && recs[n-1].RRs[0].Header().Name == rr.Header().Name && recs[n-1].RRs[0].Header().Rrtype == rr.Header().Rrtype {
			recs[n-1].RRs = append(recs[n-1].RRs, rr)
			continue
		}
		recs = append(recs, zone.Record{Key: fmt.Sprint(i), RRs: []dns.RR{rr}})
	}
	z, problems := zone.Build(zone.Spec{
		Origin: origin, NS: []string{"ns1." + origin, "ns2.example.net"}, NSTTL: 3600,
		SOA:     zone.SOA{RName: "hostmaster." + origin, Serial: serial, Refresh: 3600, Retry: 600, Expire: 1209600, Minimum: 60, TTL: 300},
		Records: recs,
	})
	if len(problems) > 0 {
		t.Fatalf("zone problems: %v", problems)
	}
	return z
}

func bigTXT() []string {
	var out []string
	for i := range 12 {
		out = append(out, fmt.Sprintf(`big.example.com. 300 IN TXT "%s"`, strings.Repeat(string(rune('a'+i)), 200)))
	}
	return out
}

func testSet(t testing.TB, serial uint32) *zone.Set {
	lines := []string{
		"ns1.example.com. 300 IN A 192.0.2.53",
		"gw.example.com. 300 IN A 192.0.2.1",
		"gw.example.com. 300 IN A 192.0.2.2",
		"gw.example.com. 300 IN AAAA 2001:db8::1",
		"www.example.com. 300 IN CNAME gw.example.com.",
		"c1.example.com. 300 IN CNAME c2.example.com.",
		"c2.example.com. 300 IN CNAME gw.example.com.",
		"out.example.com. 300 IN CNAME elsewhere.example.net.",
		"*.apps.example.com. 60 IN A 192.0.2.80",
		"*.apps.example.com. 60 IN TXT \"wild\"",
		"x.b.c.example.com. 300 IN TXT \"deep\"",
		"example.com. 300 IN MX 10 mail.example.com.",
		"mail.example.com. 300 IN A 192.0.2.25",
		"_sip._tcp.example.com. 300 IN SRV 10 5 5060 mail.example.com.",
		"example.com. 300 IN CAA 0 issue \"letsencrypt.org\"",
		"example.com. 300 IN CAA 0 iodef \"mailto:security@example.com\"",
		"txt.example.com. 300 IN TXT \"one\" \"two\" \"three\"",
		"sub.example.com. 300 IN NS ns.sub.example.com.",
		"ns.sub.example.com. 300 IN A 192.0.2.99",
		"sub.example.com. 300 IN DS 12345 13 2 ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB",
		"keys.example.com. 300 IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==",
	}
	lines = append(lines, bigTXT()...)
	com := zoneOf(t, "example.com.", serial, lines...)
	org := zoneOf(t, "example.org.", serial, "www.example.org. 300 IN CNAME www.example.com.")
	return zone.NewSet(com, org)
}

func start(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	s := New(opts)
	s.Update(testSet(t, 1), nil)
	ap, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, ap.String()
}

// dig asks the real dig (Debian's dnsutils) and returns its answer: the status, the flags and
// the records of each section, one line each, TTLs included.
func dig(t *testing.T, addr string, args ...string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	all := append([]string{"@" + host, "-p", port, "+norecurse", "+noall", "+comments", "+answer", "+authority", "+additional", "+nocookie", "+tries=1", "+time=2"}, args...)
	out, err := exec.Command("dig", all...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %v: %v\n%s", args, err, out)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, ";; ->>HEADER<<-"):
			keep = append(keep, "status: "+regexp.MustCompile(`status: (\w+)`).FindStringSubmatch(l)[1])
		case strings.HasPrefix(l, ";; flags:"):
			keep = append(keep, "flags: "+regexp.MustCompile(`flags: ([a-z ]*);`).FindStringSubmatch(l)[1])
		case l == "" || strings.HasPrefix(l, ";"):
		default:
			keep = append(keep, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(keep, "\n")
}

// TestDig checks answers as dig prints them: every record type, NXDOMAIN, NODATA, wildcards,
// CNAME chains inside and across zones, REFUSED, referrals with glue, EDNS and truncation
// with the retry over TCP.
func TestDig(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		if os.Getenv("APOXY_REQUIRE_DIG") != "" {
			t.Fatal("dig is not installed and APOXY_REQUIRE_DIG is set (apt-get install dnsutils)")
		}
		t.Skip("dig is not installed (apt-get install dnsutils)")
	}
	_, addr := start(t, Options{})
	soa := "example.com. 60 IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 1209600 60"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"gw.example.com", "A"}, "status: NOERROR\nflags: qr aa\ngw.example.com. 300 IN A 192.0.2.1\ngw.example.com. 300 IN A 192.0.2.2"},
		{[]string{"GW.Example.Com", "AAAA"}, "status: NOERROR\nflags: qr aa\ngw.example.com. 300 IN AAAA 2001:db8::1"},
		{[]string{"example.com", "SOA"}, "status: NOERROR\nflags: qr aa\nexample.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 1209600 60"},
		{[]string{"example.com", "NS"}, "status: NOERROR\nflags: qr aa\nexample.com. 3600 IN NS ns1.example.com.\nexample.com. 3600 IN NS ns2.example.net.\nns1.example.com. 300 IN A 192.0.2.53"},
		{[]string{"example.com", "MX"}, "status: NOERROR\nflags: qr aa\nexample.com. 300 IN MX 10 mail.example.com.\nmail.example.com. 300 IN A 192.0.2.25"},
		{[]string{"_sip._tcp.example.com", "SRV"}, "status: NOERROR\nflags: qr aa\n_sip._tcp.example.com. 300 IN SRV 10 5 5060 mail.example.com.\nmail.example.com. 300 IN A 192.0.2.25"},
		{[]string{"example.com", "CAA"}, "status: NOERROR\nflags: qr aa\nexample.com. 300 IN CAA 0 issue \"letsencrypt.org\"\nexample.com. 300 IN CAA 0 iodef \"mailto:security@example.com\""},
		{[]string{"txt.example.com", "TXT"}, "status: NOERROR\nflags: qr aa\ntxt.example.com. 300 IN TXT \"one\" \"two\" \"three\""},
		{[]string{"sub.example.com", "DS"}, "status: NOERROR\nflags: qr aa\nsub.example.com. 300 IN DS 12345 13 2 " + strings.Repeat("AB", 28) + " ABABABAB"},
		{[]string{"keys.example.com", "DNSKEY"}, "status: NOERROR\nflags: qr aa\nkeys.example.com. 300 IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+ KkxLbxILfDLUT0rAK9iUzy1L53eKGQ=="},
		{[]string{"www.example.com", "A"}, "status: NOERROR\nflags: qr aa\nwww.example.com. 300 IN CNAME gw.example.com.\ngw.example.com. 300 IN A 192.0.2.1\ngw.example.com. 300 IN A 192.0.2.2"},
		{[]string{"www.example.com", "CNAME"}, "status: NOERROR\nflags: qr aa\nwww.example.com. 300 IN CNAME gw.example.com."},
		{[]string{"c1.example.com", "AAAA"}, "status: NOERROR\nflags: qr aa\nc1.example.com. 300 IN CNAME c2.example.com.\nc2.example.com. 300 IN CNAME gw.example.com.\ngw.example.com. 300 IN AAAA 2001:db8::1"},
		{[]string{"www.example.org", "A"}, "status: NOERROR\nflags: qr aa\nwww.example.org. 300 IN CNAME www.example.com.\nwww.example.com. 300 IN CNAME gw.example.com.\ngw.example.com. 300 IN A 192.0.2.1\ngw.example.com. 300 IN A 192.0.2.2"},
		{[]string{"out.example.com", "A"}, "status: NOERROR\nflags: qr aa\nout.example.com. 300 IN CNAME elsewhere.example.net."},
		{[]string{"nope.example.com", "A"}, "status: NXDOMAIN\nflags: qr aa\n" + soa},
		{[]string{"gw.example.com", "TXT"}, "status: NOERROR\nflags: qr aa\n" + soa},
		{[]string{"b.c.example.com", "A"}, "status: NOERROR\nflags: qr aa\n" + soa},
		{[]string{"a.apps.example.com", "A"}, "status: NOERROR\nflags: qr aa\na.apps.example.com. 60 IN A 192.0.2.80"},
		{[]string{"x.y.apps.example.com", "TXT"}, "status: NOERROR\nflags: qr aa\nx.y.apps.example.com. 60 IN TXT \"wild\""},
		{[]string{"a.apps.example.com", "MX"}, "status: NOERROR\nflags: qr aa\n" + soa},
		{[]string{"apps.example.com", "A"}, "status: NOERROR\nflags: qr aa\n" + soa},
		{[]string{"host.sub.example.com", "A"}, "status: NOERROR\nflags: qr\nsub.example.com. 300 IN NS ns.sub.example.com.\nns.sub.example.com. 300 IN A 192.0.2.99"},
		{[]string{"example.net", "A"}, "status: REFUSED\nflags: qr"},
		{[]string{"gw.example.com", "A", "CH"}, "status: REFUSED\nflags: qr"},
		{[]string{"example.com", "AXFR", "+notcp"}, "status: REFUSED\nflags: qr"},
		{[]string{"example.com", "ANY", "+notcp"}, "status: NOERROR\nflags: qr aa\nexample.com. 3600 IN HINFO \"RFC8482\" \"\""},
		{[]string{"gw.example.com", "A", "+edns=1", "+noednsnegotiation"}, "status: BADVERS\nflags: qr"},
		{[]string{"gw.example.com", "A", "+noedns"}, "status: NOERROR\nflags: qr aa\ngw.example.com. 300 IN A 192.0.2.1\ngw.example.com. 300 IN A 192.0.2.2"},
	} {
		if got := dig(t, addr, c.args...); got != c.want {
			t.Errorf("dig %s:\n got:\n%s\n want:\n%s", strings.Join(c.args, " "), got, c.want)
		}
	}
	// 2.4 KB of TXT: over UDP truncated, then dig retries over TCP and gets all twelve.
	out := dig(t, addr, "big.example.com", "TXT", "+ignore")
	if !strings.Contains(out, "flags: qr aa tc") || strings.Contains(out, "IN TXT") {
		t.Errorf("truncated UDP answer:\n%s", out)
	}
	out = dig(t, addr, "big.example.com", "TXT")
	if strings.Count(out, "IN TXT") != 12 || strings.Contains(out, " tc") {
		t.Errorf("after the TCP retry:\n%s", out)
	}
}

func exchange(t *testing.T, addr, net string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: net, Timeout: 2 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %v: %v", net, m.Question, err)
	}
	return r
}

// TestEDNSAndTruncation: the reply's size limit is the client's EDNS buffer (capped at 1232),
// 512 without EDNS; over it the answer is empty with TC; over TCP it is whole.
func TestEDNSAndTruncation(t *testing.T) {
	_, addr := start(t, Options{})
	for _, c := range []struct {
		edns    uint16
		net     string
		tc      bool
		answers int
	}{{0, "udp", true, 0}, {1232, "udp", true, 0}, {4096, "udp", true, 0}, {0, "tcp", false, 12}} {
		m := new(dns.Msg)
		m.SetQuestion("big.example.com.", dns.TypeTXT)
		if c.edns > 0 {
			m.SetEdns0(c.edns, false)
		}
		r := exchange(t, addr, c.net, m)
		if r.Truncated != c.tc || len(r.Answer) != c.answers {
			t.Errorf("edns %d %s: tc %v, %d answers", c.edns, c.net, r.Truncated, len(r.Answer))
		}
		if opt := r.IsEdns0(); (opt != nil) != (c.edns > 0) || (opt != nil && opt.UDPSize() != ourUDPSize) {
			t.Errorf("edns %d: reply OPT %v", c.edns, opt)
		}
		if b, _ := r.Pack(); c.net == "udp" && len(b) > max(int(c.edns), 512) {
			t.Errorf("edns %d: %d bytes", c.edns, len(b))
		}
	}
	// A small answer fits in 512 bytes whole.
	m := new(dns.Msg)
	m.SetQuestion("gw.example.com.", dns.TypeA)
	if r := exchange(t, addr, "udp", m); r.Truncated || len(r.Answer) != 2 || !r.Authoritative {
		t.Errorf("small answer %v", r)
	}
}

// TestCacheFollowsUpdates: a cached answer is served with each query's ID, RD bit and
// spelling, and an Update is answered at once (the serial moves, the new data shows).
func TestCacheFollowsUpdates(t *testing.T) {
	s, addr := start(t, Options{})
	ask := func(name string, rd bool) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.RecursionDesired = rd
		m.SetEdns0(1232, false)
		r := exchange(t, addr, "udp", m)
		if r.Id != m.Id || r.RecursionDesired != rd || r.Question[0].Name != name {
			t.Fatalf("reply to %s rd=%v: id %d/%d rd %v name %s", name, rd, r.Id, m.Id, r.RecursionDesired, r.Question[0].Name)
		}
		return r
	}
	for i := range 3 {
		ask("gw.example.com.", i%2 == 0)
		ask("Gw.ExAmple.com.", i%2 == 1)
	}
	set := zone.NewSet(zoneOf(t, "example.com.", 2, "gw.example.com. 300 IN A 192.0.2.77"))
	s.Update(set, nil)
	if r := ask("gw.example.com.", false); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.77" {
		t.Fatalf("after the update: %v", r.Answer)
	}
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeSOA)
	if r := exchange(t, addr, "udp", m); r.Answer[0].(*dns.SOA).Serial != 2 {
		t.Fatalf("serial %v", r.Answer)
	}
}

// TestRateLimit: past its rate a source's responses are dropped, every second one slipped
// (empty, TC set); other prefixes are untouched.
func TestRateLimit(t *testing.T) {
	s := New(Options{RateLimit: 5, Slip: 2})
	s.Update(testSet(t, 1), nil)
	now := time.Unix(1000, 0)
	s.rrl.now = func() time.Time { return now }
	src := netip.MustParseAddr("198.51.100.7")
	var sent, slipped_, dropped, reports int
	for range 15 {
		v, report := s.rrl.allow(src)
		if report {
			reports++
		}
		switch v {
		case send:
			sent++
		case slip:
			slipped_++
		case drop:
			dropped++
		}
	}
	if sent != 5 || slipped_ != 5 || dropped != 5 || reports != 1 {
		t.Fatalf("sent %d slipped %d dropped %d, %d log lines", sent, slipped_, dropped, reports)
	}
	if v, _ := s.rrl.allow(netip.MustParseAddr("198.51.101.7")); v != send {
		t.Fatal("another /24 was limited")
	}
	if v, _ := s.rrl.allow(netip.MustParseAddr("198.51.100.200")); v == send {
		t.Fatal("the same /24 was not limited")
	}
	now = now.Add(time.Second)
	if v, _ := s.rrl.allow(src); v != send {
		t.Fatal("no refill after a second")
	}
	// Limited again within the minute: no second log line; after it, one.
	for range 10 {
		if _, report := s.rrl.allow(src); report {
			t.Fatal("a second log line within a minute")
		}
	}
	now = now.Add(time.Minute)
	reports = 0
	for range 20 {
		if _, report := s.rrl.allow(src); report {
			reports++
		}
	}
	if reports != 1 {
		t.Fatalf("%d log lines after a minute, want 1", reports)
	}
	// The slipped form is the header and question with TC.
	m := new(dns.Msg)
	m.SetQuestion("gw.example.com.", dns.TypeA)
	b, _ := m.Pack()
	resp := s.Handle(b, src, UDP, nil)
	r := new(dns.Msg)
	if err := r.Unpack(slipped(resp, questionEnd(resp))); err != nil || !r.Truncated || len(r.Answer) != 0 || r.Question[0].Name != "gw.example.com." {
		t.Fatalf("slipped %v %v", r, err)
	}
}

// TestTransferAndNotify: a change NOTIFYs the zone's secondary (signed); the secondary's signed
// AXFR gets the zone, SOA first and last; unsigned, from elsewhere or with a wrong key it is
// refused; an IXFR at the current serial gets the SOA alone.
func TestTransferAndNotify(t *testing.T) {
	key := &TSIGKey{Name: "xfr-key.", Secret: "c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0IQ=="}
	// A fake secondary: it records NOTIFYs and acknowledges them.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	notified := make(chan *dns.Msg, 4)
	sec := &dns.Server{PacketConn: pc, TsigSecret: map[string]string{key.Name: key.Secret}, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
		if w.TsigStatus() == nil && m.IsTsig() != nil {
			notified <- m
		}
		r := new(dns.Msg)
		r.SetReply(m)
		r.SetTsig(key.Name, dns.HmacSHA256, 300, time.Now().Unix())
		w.WriteMsg(r)
	})}
	go sec.ActivateAndServe()
	defer sec.Shutdown()
	secAddr := pc.LocalAddr().(*net.UDPAddr).AddrPort()

	s, addr := start(t, Options{})
	secs := map[string][]Secondary{"example.com": {{Addr: secAddr, Key: key}}}
	s.Update(testSet(t, 5), secs)
	select {
	case m := <-notified:
		if m.Opcode != dns.OpcodeNotify || m.Question[0].Name != "example.com." || m.Answer[0].(*dns.SOA).Serial != 5 {
			t.Fatalf("notify %v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no NOTIFY")
	}
	// The same serial again: no NOTIFY.
	s.Update(testSet(t, 5), secs)
	select {
	case m := <-notified:
		t.Fatalf("NOTIFY without a change: %v", m)
	case <-time.After(300 * time.Millisecond):
	}

	axfr := func(k *TSIGKey) ([]dns.RR, error) {
		m := new(dns.Msg)
		m.SetAxfr("example.com.")
		tr := &dns.Transfer{}
		if k != nil {
			m.SetTsig(k.Name, dns.HmacSHA256, 300, time.Now().Unix())
			tr.TsigSecret = map[string]string{k.Name: k.Secret}
		}
		ch, err := tr.In(m, addr)
		if err != nil {
			return nil, err
		}
		var rrs []dns.RR
		for env := range ch {
			if env.Error != nil {
				return rrs, env.Error
			}
			rrs = append(rrs, env.RR...)
		}
		return rrs, nil
	}
	rrs, err := axfr(key)
	if err != nil {
		t.Fatal(err)
	}
	want := len(s.Zones().Zone("example.com").All()) + 1
	if len(rrs) != want || rrs[0].Header().Rrtype != dns.TypeSOA || rrs[len(rrs)-1].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("AXFR: %d records (want %d), first %v last %v", len(rrs), want, rrs[0], rrs[len(rrs)-1])
	}
	if _, err := axfr(nil); err == nil || !strings.Contains(err.Error(), "REFUSED") && !strings.Contains(err.Error(), "bad xfr rcode") {
		t.Fatalf("unsigned AXFR: %v", err)
	}
	if _, err := axfr(&TSIGKey{Name: key.Name, Secret: "d3Jvbmcgd3Jvbmcgd3Jvbmc="}); err == nil {
		t.Fatal("AXFR with a wrong secret succeeded")
	}
	// From an address that is not a secondary.
	s.Update(testSet(t, 6), map[string][]Secondary{"example.com": {{Addr: netip.MustParseAddrPort("192.0.2.200:53"), Key: key}}})
	if _, err := axfr(key); err == nil {
		t.Fatal("AXFR from a stranger succeeded")
	}
	// IXFR at the current serial: the SOA alone.
	s.Update(testSet(t, 6), secs)
	m := new(dns.Msg)
	m.SetIxfr("example.com.", 6, "ns1.example.com.", "hostmaster.example.com.")
	m.SetTsig(key.Name, dns.HmacSHA256, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", TsigSecret: map[string]string{key.Name: key.Secret}}
	r, _, err := c.Exchange(m, addr)
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != 6 {
		t.Fatalf("IXFR at the current serial: %v %v", r, err)
	}
}

// TestMalformed: garbage gets FORMERR or nothing, never a crash; a compression loop is
// refused by the parser.
func TestMalformed(t *testing.T) {
	s, _ := start(t, Options{})
	loop := []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1}
	r := s.Handle(loop, netip.MustParseAddr("127.0.0.1"), UDP, nil)
	m := new(dns.Msg)
	if r == nil || m.Unpack(r) != nil || m.Rcode != dns.RcodeFormatError || m.Id != 1 {
		t.Fatalf("compression loop: %v", r)
	}
	for _, b := range [][]byte{nil, {1}, make([]byte, 11), {0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0}} {
		if r := s.Handle(b, netip.MustParseAddr("127.0.0.1"), UDP, nil); r != nil {
			t.Errorf("%x: answered %x", b, r)
		}
	}
}

// FuzzHandle: any message gets no answer, or a well-formed one within the size limit, and
// the server never panics.
func FuzzHandle(f *testing.F) {
	s := New(Options{})
	s.Update(testSet(f, 1), nil)
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  bool
	}{{"gw.example.com.", dns.TypeA, true}, {"big.example.com.", dns.TypeTXT, false}, {"x.apps.example.com.", dns.TypeTXT, true}, {"www.example.org.", dns.TypeAAAA, false}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		if q.edns {
			m.SetEdns0(4096, true)
		}
		b, _ := m.Pack()
		f.Add(b, false)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1}, true)
	src := netip.MustParseAddr("192.0.2.9")
	f.Fuzz(func(t *testing.T, b []byte, tcp bool) {
		tr := UDP
		if tcp {
			tr = TCP
		}
		r := s.Handle(b, src, tr, nil)
		if r == nil {
			return
		}
		if tr == UDP && len(r) > ourUDPSize {
			t.Fatalf("%d-byte UDP answer", len(r))
		}
		if len(r) < 12 || r[0] != b[0] || r[1] != b[1] || r[2]&0x80 == 0 {
			t.Fatalf("answer %x to %x", r, b)
		}
	})
}

// BenchmarkHandleCached is the per-query cost of a cached answer.
func BenchmarkHandleCached(b *testing.B) {
	s := New(Options{})
	s.Update(testSet(b, 1), nil)
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	m.SetEdns0(1232, false)
	q, _ := m.Pack()
	src := netip.MustParseAddr("127.0.0.1")
	out := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		out = s.Handle(q, src, UDP, out[:0])
	}
}
