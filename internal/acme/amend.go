package acme

import (
	"cmp"
	"slices"

	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/hostname"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/resource"
	"apoxy.dev/apoxy/internal/status"
	"apoxy.dev/apoxy/internal/translate"
)

// challengePath is where a CA fetches an HTTP-01 answer (RFC 8555 §8.3).
const challengePath = "/.well-known/acme-challenge/"

// Amend adds the project's certificates and pending HTTP-01 answers to its snapshot, right
// after translation (binds are the Gateways' bind addresses, report.GatewayBinds; scope the
// translation's Options.Scope):
//
//   - each record's certificate goes to every HTTPS listener of its Gateway whose hostname
//     covers the record's name, as an SNI entry for that name, unless the listener already
//     has a certificate for exactly that name (a user's own wins);
//   - each HTTP-01 answer is a route for the challenge's exact path on the Gateway's HTTP
//     listeners for that host, put before every other route of its virtual host, answered
//     directly (no stage of the request path knows about ACME).
//
// The caller re-versions the snapshot.
func (p *Project) Amend(set *resource.Set, snap *ir.Snapshot, binds map[status.Key][]string, scope string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	gws := map[types.NamespacedName]*gwapiv1.Gateway{}
	for _, gw := range set.Gateways {
		gws[types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}] = gw
	}
	sockets := map[string]*ir.Listener{}
	for _, l := range snap.Listeners {
		sockets[l.Name] = l
	}
	// each calls fn with every socket of gw's listeners of protocol proto whose hostname
	// meets host, and the name they serve it under.
	each := func(gw *gwapiv1.Gateway, proto gwapiv1.ProtocolType, host string, fn func(s *ir.Listener, spec *gwapiv1.Listener, lh, name string)) {
		irProto := ir.ProtocolHTTP
		if proto == gwapiv1.HTTPSProtocolType {
			irProto = ir.ProtocolHTTPS
		}
		for i := range gw.Spec.Listeners {
			spec := &gw.Spec.Listeners[i]
			if spec.Protocol != proto {
				continue
			}
			lh := ""
			if spec.Hostname != nil {
				lh = string(*spec.Hostname)
			}
			name, ok := hostname.Intersect(lh, host)
			if !ok {
				continue
			}
			for _, addr := range binds[status.KeyOf(gw.Namespace, gw.Name)] {
				if s := sockets[ir.SocketName(irProto, addr, int32(spec.Port))]; s != nil && s.Protocol == irProto {
					fn(s, spec, lh, name)
				}
			}
		}
	}

	have := map[string]bool{}
	for _, c := range snap.Certificates {
		have[c.Name] = true
	}
	for _, rec := range sortedKeys(p.certs) {
		cur, w := p.certs[rec], p.wants[rec]
		gw := gws[w.Gateway]
		if gw == nil {
			continue
		}
		certName := translate.SecretCertificateName(scope, Namespace, CertSecretName(rec))
		used := false
		each(gw, gwapiv1.HTTPSProtocolType, w.Name, func(s *ir.Listener, spec *gwapiv1.Listener, lh, name string) {
			if s.TLS == nil || spec.TLS != nil && spec.TLS.Mode != nil && *spec.TLS.Mode != gwapiv1.TLSModeTerminate {
				return
			}
			var validation *ir.ClientValidation
			for _, e := range s.TLS.Certificates {
				if e.Hostname == name {
					return
				}
				if e.Hostname == lh {
					validation = e.ClientValidation
				}
			}
			s.TLS.Certificates = append(s.TLS.Certificates, ir.SNICertificate{Hostname: name, Certificate: certName, ClientValidation: validation})
			slices.SortStableFunc(s.TLS.Certificates, func(a, b ir.SNICertificate) int {
				return cmp.Or(cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.Certificate, b.Certificate))
			})
			used = true
		})
		if used && !have[certName] {
			have[certName] = true
			snap.Certificates = append(snap.Certificates, &ir.Certificate{Name: certName, CertPEM: cur.certPEM, KeyPEM: cur.keyPEM})
		}
	}
	slices.SortFunc(snap.Certificates, func(a, b *ir.Certificate) int { return cmp.Compare(a.Name, b.Name) })

	clear(p.amended)
	touched := map[*ir.Listener]bool{}
	for _, token := range sortedKeys(p.http01) {
		a := p.http01[token]
		gw := gws[a.gw]
		if gw == nil {
			continue
		}
		each(gw, gwapiv1.HTTPProtocolType, a.host, func(s *ir.Listener, spec *gwapiv1.Listener, lh, name string) {
			var vh *ir.VirtualHost
			for _, v := range s.VirtualHosts {
				if v.ListenerHostname == lh && v.Hostname == name {
					vh = v
					break
				}
			}
			if vh == nil {
				vh = &ir.VirtualHost{ListenerHostname: lh, Hostname: name,
					Origin: ir.Origin{Kind: "Gateway", Namespace: gw.Namespace, Name: gw.Name, Section: string(spec.Name)}}
				s.VirtualHosts = append(s.VirtualHosts, vh)
				touched[s] = true
			}
			route := &ir.Route{
				Name:   "acme-http-01/" + token,
				Origin: ir.Origin{Kind: "DomainRecord", Name: a.record, Section: "acme-http-01"},
				Match:  ir.Match{PathType: ir.PathExact, Path: challengePath + token},
				DirectResponse: &ir.DirectResponse{StatusCode: 200, ContentType: "text/plain",
					Body: a.keyAuth},
				Intercept: true,
			}
			vh.Routes = append([]*ir.Route{route}, vh.Routes...)
			p.amended[token] = true
		})
	}
	for s := range touched {
		slices.SortStableFunc(s.VirtualHosts, func(a, b *ir.VirtualHost) int {
			return hostname.ComparePairs(a.ListenerHostname, a.Hostname, b.ListenerHostname, b.Hostname)
		})
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
