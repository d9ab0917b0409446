package domain

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	corev1a3 "apoxy.dev/apoxy/api/core/v1alpha3"
	"apoxy.dev/apoxy/internal/acme"
	"apoxy.dev/apoxy/internal/dns/zone"
	"apoxy.dev/apoxy/internal/hostname"
	"apoxy.dev/apoxy/internal/resource"
)

// challengeTTL is the TTL of DNS-01 answers: short, they live for one validation.
const challengeTTL = 60

// challengeRecords are the DNS-01 answers (owner name → values) inside the zone at origin,
// one TXT record per value.
func challengeRecords(origin string, txt map[string][]string) []zone.Record {
	var out []zone.Record
	names := make([]string, 0, len(txt))
	for n := range txt {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		if !dns.IsSubDomain(origin, name) {
			continue
		}
		rec := zone.Record{Key: "acme-challenge/" + name}
		for _, v := range txt[name] {
			rec.RRs = append(rec.RRs, &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: challengeTTL}, Txt: []string{v}})
		}
		out = append(out, rec)
	}
	return out
}

// syncCertificates hands the certificates the records want to the project's acme.Project
// and returns what each record's status says of its own (nil without a certificate manager).
// A record wants one when it targets a Gateway and its tls block does not disable it.
func (r *Reconciler) syncCertificates(ctx context.Context, set *resource.Set, api dynamic.Interface, states []*recordState, kick func()) map[string]acme.Result {
	if r.certs == nil {
		return nil
	}
	var wants []acme.Want
	for _, st := range states {
		rec := st.rec
		ref := rec.Spec.Target.Ref
		if ref == nil || rec.Spec.TLS != nil && rec.Spec.TLS.Disabled {
			continue
		}
		gw := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
		if gw.Namespace == "" {
			gw.Namespace = "default"
		}
		w := acme.Want{
			Record: rec.Name, Name: strings.ToLower(strings.TrimSuffix(rec.Spec.Name, ".")), Gateway: gw,
			Renew: rec.Annotations[acme.AnnRenew], Serving: st.phase == corev1a3.DomainRecordPhaseActive,
		}
		var explicit string
		if t := rec.Spec.TLS; t != nil {
			w.CA, explicit = t.CertificateAuthority, t.Challenge
		}
		switch {
		case explicit != "":
			w.Challenges = []string{explicit}
		case strings.HasPrefix(w.Name, "*."):
			w.Challenges = []string{acme.DNS01}
		case rec.Spec.Zone != "":
			// The zone is ours: DNS-01 needs nothing of the Gateway; HTTP-01 is the
			// alternative on every other attempt.
			w.Challenges = []string{acme.DNS01, acme.HTTP01}
		default:
			w.Challenges = []string{acme.HTTP01}
		}
		w.Probe = r.probeAddrs(set, gw, w.Name)
		wants = append(wants, w)
	}
	return r.certs.Sync(ctx, api, set, wants, kick)
}

// probeAddrs are the host:port addresses of a Gateway's HTTP listeners serving name, where an
// HTTP-01 answer is checked before the CA fetches it: its status addresses (an unspecified
// address is reached on loopback).
func (r *Reconciler) probeAddrs(set *resource.Set, ref types.NamespacedName, name string) []string {
	var out []string
	for _, gw := range set.Gateways {
		if gw.Namespace != ref.Namespace || gw.Name != ref.Name {
			continue
		}
		for _, l := range gw.Spec.Listeners {
			if l.Protocol != gwapiv1.HTTPProtocolType {
				continue
			}
			if l.Hostname != nil {
				if _, ok := hostname.Intersect(string(*l.Hostname), name); !ok {
					continue
				}
			}
			for _, a := range gw.Status.Addresses {
				ip, err := netip.ParseAddr(a.Value)
				if err != nil {
					continue
				}
				switch {
				case ip.IsUnspecified() && ip.Is4():
					ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
				case ip.IsUnspecified():
					ip = netip.IPv6Loopback()
				}
				out = append(out, net.JoinHostPort(ip.String(), strconv.Itoa(int(l.Port))))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
