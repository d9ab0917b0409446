package translate

import (
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

// irBackend returns the IR backend for an API Backend, adding it to the snapshot.
func (t *translator) irBackend(b *corev1a2.Backend) *ir.Backend {
	name := t.scoped(string(status.KeyOf(b.Namespace, b.Name)))
	if ib, ok := t.usedBackends[name]; ok {
		return ib
	}
	proto := string(b.Spec.Protocol)
	if proto == "" {
		proto = string(corev1a2.BackendProtocolPlain)
	}
	ib := &ir.Backend{Name: name, Origin: ir.Origin{Kind: "Backend", Namespace: b.Namespace, Name: b.Name}, Protocol: proto, DynamicProxy: b.Spec.DynamicProxy != nil}
	for _, ep := range b.Spec.Endpoints {
		ib.Endpoints = append(ib.Endpoints, ir.Endpoint{FQDN: ep.FQDN, IP: ep.IP})
	}
	if hc := b.Spec.HealthCheck; hc != nil {
		ihc := &ir.HealthCheck{
			Interval:           ir.Duration(dur(hc.Interval, corev1a2.DefaultHealthInterval)),
			Timeout:            ir.Duration(dur(hc.Timeout, corev1a2.DefaultHealthTimeout)),
			HealthyThreshold:   int(deref(hc.HealthyThreshold, corev1a2.DefaultHealthyThreshold)),
			UnhealthyThreshold: int(deref(hc.UnhealthyThreshold, corev1a2.DefaultUnhealthyThreshold)),
		}
		if h := hc.HTTP; h != nil {
			p := &ir.HTTPProbe{Path: or(h.Path, "/"), Method: or(h.Method, "GET"), Host: h.Host}
			for _, c := range h.ExpectedStatuses {
				p.ExpectedStatuses = append(p.ExpectedStatuses, int(c))
			}
			ihc.HTTP = p
		}
		ib.HealthCheck = ihc
	}
	t.applyTLSPolicy(status.KeyOf(b.Namespace, b.Name), ib)
	t.usedBackends[name] = ib
	return ib
}

// gatewayRoutes returns a route's IR routes as served through Gateway g. When g presents a
// client certificate to TLS backends (spec.tls.backend.clientCertificateRef) they are copies
// whose TLS backends are g's own variants carrying that certificate, so two Gateways sharing a
// Backend each connect with their own identity.
func (t *translator) gatewayRoutes(rc *routeCtx, g *gatewayCtx) []*ir.Route {
	if g.clientCert == nil {
		return rc.routes
	}
	out := make([]*ir.Route, len(rc.routes))
	for i, r := range rc.routes {
		c := *r
		c.Filters = t.clientFilters(r.Filters, g)
		c.Backends = make([]ir.WeightedBackend, len(r.Backends))
		for j, wb := range r.Backends {
			if !wb.Invalid {
				wb.Backend = t.clientVariant(wb.Backend, g)
			}
			wb.Filters = t.clientFilters(wb.Filters, g)
			c.Backends[j] = wb
		}
		t.order[&c] = t.order[r]
		out[i] = &c
	}
	return out
}

// clientFilters points request mirrors at g's client-certificate variants of their backends.
func (t *translator) clientFilters(filters []ir.Filter, g *gatewayCtx) []ir.Filter {
	if !slices.ContainsFunc(filters, func(f ir.Filter) bool { return f.Mirror != nil }) {
		return filters
	}
	out := slices.Clone(filters)
	for i := range out {
		if m := out[i].Mirror; m != nil {
			mc := *m
			mc.Backend = t.clientVariant(m.Backend, g)
			out[i].Mirror = &mc
		}
	}
	return out
}

// clientVariant returns the IR backend to use through Gateway g: for a backend spoken to over
// TLS, a copy presenting g's client certificate; any other backend unchanged.
func (t *translator) clientVariant(name string, g *gatewayCtx) string {
	ib, ok := t.usedBackends[name]
	if !ok || (ib.TLS == nil && ib.Protocol != string(corev1a2.BackendProtocolTLS) && ib.Protocol != string(corev1a2.BackendProtocolH2)) {
		return name
	}
	variant := name + "@gateway/" + string(g.key)
	if _, ok := t.usedBackends[variant]; ok {
		return variant
	}
	vb := *ib
	vb.Name = variant
	vt := ir.UpstreamTLS{}
	if ib.TLS != nil {
		vt = *ib.TLS
	}
	vt.ClientCertificate = g.clientCert
	vb.TLS = &vt
	t.usedBackends[variant] = &vb
	return variant
}

// defaultPort is used when a backendRef to a Backend names no port.
func defaultPort(protocol string) int32 {
	switch protocol {
	case string(corev1a2.BackendProtocolTLS), string(corev1a2.BackendProtocolH2):
		return 443
	}
	return 80
}

func dur(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.Duration
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
