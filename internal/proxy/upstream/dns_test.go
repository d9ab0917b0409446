package upstream

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"apoxy.dev/apoxy/internal/ir"
)

// dnsServer is a real authoritative DNS server on loopback whose answers the test changes.
type dnsServer struct {
	mu      sync.Mutex
	records map[string][]dns.RR
	fail    bool
	queries int
	addr    string
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	d := &dnsServer{records: map[string][]dns.RR{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.queries++
		m := new(dns.Msg)
		m.SetReply(r)
		if d.fail {
			m.Rcode = dns.RcodeServerFailure
		} else {
			q := r.Question[0]
			for _, rr := range d.records[q.Name] {
				if rr.Header().Rrtype == q.Qtype {
					m.Answer = append(m.Answer, rr)
				}
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return d
}

func (d *dnsServer) set(t *testing.T, rrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.records = map[string][]dns.RR{}
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		d.records[rr.Header().Name] = append(d.records[rr.Header().Name], rr)
	}
}

func (d *dnsServer) setFail(v bool) { d.mu.Lock(); d.fail = v; d.mu.Unlock() }

func TestDNSResolverReturnsAllRecordsWithTTL(t *testing.T) {
	d := startDNS(t)
	d.set(t, "api.test. 7 IN A 10.0.0.1", "api.test. 30 IN A 10.0.0.2", "api.test. 5 IN AAAA fd00::1")
	r := &DNSResolver{Servers: []string{d.addr}}
	addrs, ttl, err := r.LookupTTL(context.Background(), "api.test")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	want := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::1")}
	if !slices.Equal(addrs, want) || ttl != 5*time.Second {
		t.Errorf("got %v ttl %v, want %v ttl 5s", addrs, ttl, want)
	}
	if _, _, err := r.LookupTTL(context.Background(), "missing.test"); err == nil {
		t.Error("missing name resolved")
	}
}

// TestClusterFollowsDNS: a cluster re-resolves when the TTL runs out, picks up new addresses,
// and keeps the last good answer while the resolver fails.
func TestClusterFollowsDNS(t *testing.T) {
	d := startDNS(t)
	d.set(t, "app.test. 1 IN A 10.0.0.1")
	m := NewManager(Options{Resolver: &DNSResolver{Servers: []string{d.addr}}, ResolveInterval: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer m.Close()
	c := m.Sync([]*ir.Backend{{Name: "p/ns/app", Protocol: "plain", Endpoints: []ir.Endpoint{{FQDN: "app.test"}}}}, nil)["p/ns/app"]
	c.WaitResolved(context.Background())
	ips := func() []string {
		var out []string
		for _, a := range c.Addresses() {
			out = append(out, a.IP.String())
		}
		slices.Sort(out)
		return out
	}
	if got := ips(); !slices.Equal(got, []string{"10.0.0.1"}) {
		t.Fatalf("first resolution: %v", got)
	}
	d.set(t, "app.test. 1 IN A 10.0.0.2", "app.test. 1 IN A 10.0.0.3")
	waitUntil(t, 5*time.Second, func() bool { return slices.Equal(ips(), []string{"10.0.0.2", "10.0.0.3"}) })
	d.setFail(true)
	time.Sleep(2500 * time.Millisecond) // two TTLs of failures
	if got := ips(); !slices.Equal(got, []string{"10.0.0.2", "10.0.0.3"}) {
		t.Errorf("after resolver failures: %v, want the last good answer", got)
	}
	if a, err := c.Pick(nil); err != nil || a == nil {
		t.Errorf("pick during resolver failure: %v", err)
	}
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
