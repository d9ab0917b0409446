// Command dnsserve serves zone files with Apoxy's authoritative DNS server
// (internal/dns/authority), so that `make bench-dns` drives the product's server with the very
// zone NSD and Knot serve. It is a benchmark harness, not part of the product: the product
// builds its zones from DomainZones and DomainRecords.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/miekg/dns"

	"apoxy.dev/apoxy/internal/dns/authority"
	"apoxy.dev/apoxy/internal/dns/zone"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5300", "UDP and TCP address")
	rrl := flag.Int("rate-limit", 0, "responses per second per source prefix (0: off)")
	flag.Parse()
	var zones []*zone.Zone
	for _, arg := range flag.Args() {
		origin, file, ok := strings.Cut(arg, "=")
		if !ok {
			log.Fatalf("%s: want ORIGIN=FILE", arg)
		}
		z, err := load(origin, file)
		if err != nil {
			log.Fatal(err)
		}
		zones = append(zones, z)
	}
	s := authority.New(authority.Options{RateLimit: *rrl})
	s.Update(zone.NewSet(zones...), nil)
	ap, err := s.Listen(*addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("serving on", ap)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	s.Close(context.Background())
}

// load reads a zone file: its SOA and apex NS make the zone's spec, every other RRset one
// record.
func load(origin, file string) (*zone.Zone, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	origin = dns.Fqdn(strings.ToLower(origin))
	spec := zone.Spec{Origin: origin}
	sets := map[string]*zone.Record{}
	var order []string
	zp := dns.NewZoneParser(f, origin, file)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		switch {
		case h.Rrtype == dns.TypeSOA:
			s := rr.(*dns.SOA)
			spec.SOA = zone.SOA{MName: s.Ns, RName: s.Mbox, Serial: s.Serial, Refresh: s.Refresh, Retry: s.Retry, Expire: s.Expire, Minimum: s.Minttl, TTL: h.Ttl}
		case h.Rrtype == dns.TypeNS && zone.Canonical(h.Name) == origin:
			spec.NS = append(spec.NS, rr.(*dns.NS).Ns)
			spec.NSTTL = h.Ttl
		default:
			key := zone.Canonical(h.Name) + "/" + dns.TypeToString[h.Rrtype]
			if sets[key] == nil {
				sets[key] = &zone.Record{Key: key}
				order = append(order, key)
			}
			sets[key].RRs = append(sets[key].RRs, rr)
		}
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	for _, k := range order {
		spec.Records = append(spec.Records, *sets[k])
	}
	z, problems := zone.Build(spec)
	for k, p := range problems {
		log.Printf("%s: %s", k, p)
	}
	return z, nil
}
