package translate

import (
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
