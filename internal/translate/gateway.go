package translate

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

// gatewayClasses accepts the classes whose controllerName is ours.
func (t *translator) translateGatewayClasses() {
	for _, gc := range t.set.GatewayClasses {
		if string(gc.Spec.ControllerName) != t.opts.ControllerName {
			continue
		}
		t.classes[gc.Name] = true
		st := gc.Status.DeepCopy()
		status.Set(&st.Conditions, status.Condition(string(gwapiv1.GatewayClassConditionStatusAccepted), true,
			string(gwapiv1.GatewayClassReasonAccepted), "Handled by Apoxy", gc.Generation, t.opts.Now))
		status.KeepTransitionTimes(st.Conditions, gc.Status.Conditions)
		st.SupportedFeatures = SupportedFeatures()
		t.report.GatewayClasses[status.KeyOf("", gc.Name)] = st
	}
}

type gatewayCtx struct {
	gw        *gwapiv1.Gateway
	key       status.Key
	binds     []string
	addrError string
	// poolExhausted: no address left; the Gateway is valid but cannot be programmed.
	poolExhausted bool
	listeners     []*listenerCtx
	// clientCert is presented to TLS backends (spec.tls.backend.clientCertificateRef);
	// tlsRefsReason/Msg say why it did not resolve.
	clientCert                *ir.Certificate
	tlsRefsReason, tlsRefsMsg string
	// rateLimitStore names the snapshot's store of the Gateway's Proxy ("" none);
	// rateLimitStoreErr says why the Proxy's store is unusable.
	rateLimitStore, rateLimitStoreErr string
	// telemetry names the Gateway's telemetry settings in the snapshot (its Proxy's, or the
	// project's defaults).
	telemetry string
	// httpLimits are the client limits of its Proxy's spec.http (nil: defaults).
	httpLimits *ir.HTTPLimits
}

type listenerCtx struct {
	gw *gatewayCtx
	// set is the ListenerSet the listener comes from; nil for the Gateway's own listeners.
	set      *listenerSetCtx
	spec     *gwapiv1.Listener
	hostname string
	status   gwapiv1.ListenerStatus
	// reasons why the listener is not accepted / programmed / resolved / conflicted; empty = fine.
	acceptedReason, acceptedMsg string
	refsReason, refsMsg         string
	conflictReason, conflictMsg string
	sockets                     []*ir.Listener
	vhosts                      map[string]*ir.VirtualHost // by route hostname, per socket name
	attached                    int32
	// validation is the client certificate check of an HTTPS listener (spec.tls.frontend).
	validation *ir.ClientValidation
}

// acceptsRoutes: routes attach (and count in attachedRoutes) to an accepted, unconflicted
// listener even when its references (certificates) do not resolve; it serves no traffic then.
func (l *listenerCtx) acceptsRoutes() bool {
	return l.acceptedReason == "" && l.conflictReason == "" && l.gw.addrError == ""
}

// namespace is where the listener is defined: its ListenerSet's namespace or its Gateway's.
// allowedRoutes "Same" and certificate references are relative to it.
func (l *listenerCtx) namespace() string {
	if l.set != nil {
		return l.set.ls.Namespace
	}
	return l.gw.gw.Namespace
}

// ownerKind is the kind ReferenceGrants name for references made by the listener.
func (l *listenerCtx) ownerKind() string {
	if l.set != nil {
		return "ListenerSet"
	}
	return "Gateway"
}

// rank orders listeners for conflicts: the Gateway's own (0) win over ListenerSets', which
// win in the order they attached.
func (l *listenerCtx) rank() int {
	if l.set != nil {
		return l.set.rank
	}
	return 0
}

func (l *listenerCtx) ok() bool {
	return l.acceptedReason == "" && l.refsReason == "" && l.conflictReason == "" && l.gw.addrError == ""
}

// gateways validates every Gateway of ours and builds its listeners' sockets, certificates
// and (empty) virtual hosts; routes attach later.
func (t *translator) translateGateways() {
	gws := slices.Clone(t.set.Gateways)
	slices.SortStableFunc(gws, func(a, b *gwapiv1.Gateway) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for _, gw := range gws {
		if !t.classes[string(gw.Spec.GatewayClassName)] {
			continue
		}
		g := &gatewayCtx{gw: gw, key: status.KeyOf(gw.Namespace, gw.Name)}
		t.gateways[g.key] = g
		t.gatewayOrder = append(t.gatewayOrder, g)
		g.resolveAddresses(t)
		t.proxySettings(g)
		t.resolveBackendClientCert(g)
		for i := range gw.Spec.Listeners {
			l := &listenerCtx{gw: g, spec: &gw.Spec.Listeners[i], hostname: ptrString(gw.Spec.Listeners[i].Hostname), vhosts: map[string]*ir.VirtualHost{}}
			l.status.Name = l.spec.Name
			g.listeners = append(g.listeners, l)
			t.validateListener(l)
		}
		all := slices.Clone(g.listeners)
		for _, lsc := range t.attachListenerSets(g) {
			all = append(all, lsc.listeners...)
		}
		detectConflicts(all)
		for _, l := range all {
			t.program(l)
		}
	}
}

// allocate gives a Gateway one address from the pool, keeping the one it already reports.
// Gateways are visited oldest first, so an older Gateway keeps its address on contention. A
// fresh address is never one a Gateway names in its spec, nor one another Gateway already
// reports (a newcomer sorting first in the same creation second must not move an address
// clients already use).
func (t *translator) allocate(gw *gwapiv1.Gateway) []string {
	if t.allocated == nil {
		t.allocated = map[string]bool{}
		t.inSpec = map[string]bool{}
		t.reportedBy = map[string]*gwapiv1.Gateway{}
		for _, other := range t.set.Gateways {
			for _, a := range other.Spec.Addresses {
				t.inSpec[a.Value] = true
			}
			for _, a := range other.Status.Addresses {
				if _, ok := t.reportedBy[a.Value]; !ok {
					t.reportedBy[a.Value] = other
				}
			}
		}
	}
	for _, a := range gw.Status.Addresses {
		if slices.Contains(t.opts.AddressPool, a.Value) && !t.allocated[a.Value] {
			t.allocated[a.Value] = true
			return []string{a.Value}
		}
	}
	for _, a := range t.opts.AddressPool {
		if owner, reported := t.reportedBy[a]; t.allocated[a] || t.inSpec[a] || (reported && owner != gw) {
			continue
		}
		t.allocated[a] = true
		return []string{a}
	}
	return nil
}

// proxySettings applies the settings of the Proxy a Gateway names through
// spec.infrastructure.parametersRef: its shutdown (the longest drain wins when Gateways name
// several) and its global rate-limit store.
func (t *translator) proxySettings(g *gatewayCtx) {
	gw := g.gw
	var proxy *corev1a2.Proxy
	defer func() { g.telemetry = t.useTelemetry(g, proxy) }()
	infra := gw.Spec.Infrastructure
	if infra == nil || infra.ParametersRef == nil || infra.ParametersRef.Kind != "Proxy" {
		return
	}
	for _, p := range t.set.Proxies {
		if p.Namespace != gw.Namespace || p.Name != infra.ParametersRef.Name {
			continue
		}
		proxy = p
		if p.Spec.Shutdown != nil && p.Spec.Shutdown.DrainTimeout != nil {
			if d := ir.Duration(p.Spec.Shutdown.DrainTimeout.Duration); d > t.snap.DrainTimeout {
				t.snap.DrainTimeout = d
			}
		}
		if rl := p.Spec.RateLimit; rl != nil && rl.Redis != nil {
			t.proxyRateLimitStore(g, p.Namespace, p.Name, rl.Redis)
		}
		g.httpLimits = httpLimits(p.Spec.HTTP)
	}
}

// httpLimits translates a Proxy's spec.http (validated on write) for its listeners.
func httpLimits(h *corev1a2.ProxyHTTP) *ir.HTTPLimits {
	if h == nil {
		return nil
	}
	dur := func(d *metav1.Duration) ir.Duration {
		if d == nil {
			return 0
		}
		return ir.Duration(d.Duration)
	}
	num := func(v *int32) int32 {
		if v == nil {
			return 0
		}
		return *v
	}
	l := &ir.HTTPLimits{
		IdleTimeout:           dur(h.IdleTimeout),
		RequestHeaderTimeout:  dur(h.RequestHeaderTimeout),
		RequestBodyTimeout:    dur(h.RequestBodyTimeout),
		MaxRequestHeaderBytes: num(h.MaxRequestHeaderBytes),
		MaxRequestHeaders:     num(h.MaxRequestHeaders),
	}
	if h2 := h.HTTP2; h2 != nil {
		l.MaxConcurrentStreams = num(h2.MaxConcurrentStreams)
		l.InitialStreamWindowSize = num(h2.InitialStreamWindowSize)
		l.InitialConnectionWindowSize = num(h2.InitialConnectionWindowSize)
		l.WriteTimeout = dur(h2.WriteTimeout)
	}
	return l
}

// proxyRateLimitStore resolves a Proxy's Redis store (its password from a Secret in the
// Proxy's namespace) into the snapshot, for the Global rate-limit rules of g's routes.
func (t *translator) proxyRateLimitStore(g *gatewayCtx, ns, name string, r *corev1a2.RedisStore) {
	st := &ir.RedisStore{Address: r.Address, TLS: r.TLS, Database: int(r.Database)}
	if ref := r.PasswordSecretRef; ref != nil {
		key := cmp.Or(ref.Key, corev1a2.DefaultRedisPasswordKey)
		sec, ok := t.secrets[status.KeyOf(ns, ref.Name)]
		if !ok {
			g.rateLimitStoreErr = fmt.Sprintf("Proxy %s/%s: spec.rateLimit.redis.passwordSecretRef: Secret %s/%s not found", ns, name, ns, ref.Name)
			return
		}
		pw, ok := sec.Data[key]
		if !ok {
			pw, ok = []byte(sec.StringData[key]), sec.StringData[key] != ""
		}
		if !ok {
			g.rateLimitStoreErr = fmt.Sprintf("Proxy %s/%s: spec.rateLimit.redis.passwordSecretRef: Secret %s/%s has no key %q", ns, name, ns, ref.Name, key)
			return
		}
		st.Password = ir.SecretString(pw)
	}
	if t.snap.RateLimitStores == nil {
		t.snap.RateLimitStores = map[string]*ir.RedisStore{}
	}
	g.rateLimitStore = t.scoped(ns + "/" + name)
	t.snap.RateLimitStores[g.rateLimitStore] = st
}

// resolveAddresses decides where the Gateway's listeners bind. Addresses in the spec
// are bound as given; an IPAddress entry without a value (GatewayAddressEmpty) asks
// for one address chosen by us, as does a Gateway with no addresses: the next free
// address of the server's pool, or the server's bind address when it has no pool.
func (g *gatewayCtx) resolveAddresses(t *translator) {
	wantAssigned := len(g.gw.Spec.Addresses) == 0
	for i, a := range g.gw.Spec.Addresses {
		typ := gwapiv1.IPAddressType
		if a.Type != nil {
			typ = *a.Type
		}
		if typ != gwapiv1.IPAddressType {
			g.addrError = fmt.Sprintf("spec.addresses[%d]: address type %q is not supported; use IPAddress", i, typ)
			return
		}
		if a.Value == "" {
			wantAssigned = true
			continue
		}
		ip, err := netip.ParseAddr(a.Value)
		if err != nil {
			g.addrError = fmt.Sprintf("spec.addresses[%d]: %q is not an IP address", i, a.Value)
			return
		}
		g.binds = append(g.binds, ip.String())
	}
	if !wantAssigned {
		return
	}
	if len(t.opts.AddressPool) == 0 {
		if !slices.Contains(g.binds, t.opts.BindAddress) {
			g.binds = append(g.binds, t.opts.BindAddress)
		}
		return
	}
	assigned := t.allocate(g.gw)
	if assigned == nil {
		g.addrError, g.poolExhausted = "the server's Gateway address pool is exhausted", true
		return
	}
	g.binds = append(g.binds, assigned...)
}

var supportedRouteKinds = map[gwapiv1.ProtocolType][]gwapiv1.Kind{
	gwapiv1.HTTPProtocolType:  {"HTTPRoute", "GRPCRoute"},
	gwapiv1.HTTPSProtocolType: {"HTTPRoute", "GRPCRoute"},
	gwapiv1.TCPProtocolType:   {"TCPRoute"},
	gwapiv1.UDPProtocolType:   {"UDPRoute"},
	gwapiv1.TLSProtocolType:   {"TLSRoute"},
}

func (t *translator) validateListener(l *listenerCtx) {
	kinds, ok := supportedRouteKinds[l.spec.Protocol]
	if !ok {
		l.acceptedReason = string(gwapiv1.ListenerReasonUnsupportedProtocol)
		l.acceptedMsg = fmt.Sprintf("protocol %s is not supported yet; use HTTP, HTTPS, TLS, TCP or UDP", l.spec.Protocol)
		return
	}
	// supportedKinds: the allowed kinds we support; unsupported ones make ResolvedRefs false.
	if ar := l.spec.AllowedRoutes; ar != nil && len(ar.Kinds) > 0 {
		var bad []string
		for _, k := range ar.Kinds {
			group := gatewayGroup
			if k.Group != nil {
				group = string(*k.Group)
			}
			if sameGroup(group, gatewayGroup) && slices.Contains(kinds, k.Kind) {
				g := gwapiv1.Group(gatewayGroup)
				l.status.SupportedKinds = append(l.status.SupportedKinds, gwapiv1.RouteGroupKind{Group: &g, Kind: k.Kind})
			} else {
				bad = append(bad, group+"/"+string(k.Kind))
			}
		}
		if len(bad) > 0 {
			l.refsReason = string(gwapiv1.ListenerReasonInvalidRouteKinds)
			l.refsMsg = "unsupported route kinds: " + strings.Join(bad, ", ")
		}
	} else {
		for _, k := range kinds {
			g := gwapiv1.Group(gatewayGroup)
			l.status.SupportedKinds = append(l.status.SupportedKinds, gwapiv1.RouteGroupKind{Group: &g, Kind: k})
		}
	}
	if l.spec.Protocol == gwapiv1.HTTPSProtocolType {
		t.resolveCertificates(l)
	}
	if l.spec.Protocol == gwapiv1.TLSProtocolType && l.terminates() {
		t.resolveCertificates(l)
	}
}

// terminates reports whether a TLS listener terminates TLS (tls.mode Terminate, the default)
// rather than passing it through.
func (l *listenerCtx) terminates() bool {
	return l.spec.TLS == nil || l.spec.TLS.Mode == nil || *l.spec.TLS.Mode == gwapiv1.TLSModeTerminate
}

// resolveCertificates loads the HTTPS listener's certificateRefs into IR certificates.
func (t *translator) resolveCertificates(l *listenerCtx) {
	tlsCfg := l.spec.TLS
	if tlsCfg == nil || len(tlsCfg.CertificateRefs) == 0 {
		l.refsReason = string(gwapiv1.ListenerReasonInvalidCertificateRef)
		l.refsMsg = "an HTTPS listener needs tls.certificateRefs"
		return
	}
	if tlsCfg.Mode != nil && *tlsCfg.Mode != gwapiv1.TLSModeTerminate {
		l.acceptedReason = string(gwapiv1.ListenerReasonUnsupportedProtocol)
		l.acceptedMsg = "HTTPS listeners terminate TLS; use a TLS listener for passthrough"
		return
	}
	for _, ref := range tlsCfg.CertificateRefs {
		cert, notPermitted, msg := t.tlsSecret(l.ownerKind(), l.namespace(), ref)
		switch {
		case notPermitted:
			l.refsReason, l.refsMsg = string(gwapiv1.ListenerReasonRefNotPermitted), msg
		case msg != "":
			l.refsReason, l.refsMsg = string(gwapiv1.ListenerReasonInvalidCertificateRef), msg
		default:
			t.certs[cert.Name] = cert
		}
	}
	t.frontendValidation(l)
}

// tlsSecret loads a kubernetes.io/tls Secret a Gateway in namespace fromNS refers to.
// notPermitted is set when the Secret is in another namespace no ReferenceGrant opens; msg says
// what is wrong whenever cert is nil.
func (t *translator) tlsSecret(fromKind, fromNS string, ref gwapiv1.SecretObjectReference) (cert *ir.Certificate, notPermitted bool, msg string) {
	group, kind := ptrString(ref.Group), "Secret"
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	ns := fromNS
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	if group != "" || kind != "Secret" {
		return nil, false, fmt.Sprintf("certificate ref %s %s/%s: only core Secrets are supported", groupKind(group, kind), ns, ref.Name)
	}
	if !t.refGrantAllows(gatewayGroup, fromKind, fromNS, "", "Secret", ns, string(ref.Name)) {
		return nil, true, fmt.Sprintf("Secret %s/%s is in another namespace and no ReferenceGrant allows it", ns, ref.Name)
	}
	sec, ok := t.secrets[status.KeyOf(ns, string(ref.Name))]
	if !ok {
		return nil, false, fmt.Sprintf("Secret %s/%s not found", ns, ref.Name)
	}
	if sec.Type != corev1.SecretTypeTLS {
		return nil, false, fmt.Sprintf("Secret %s/%s is not of type kubernetes.io/tls", ns, ref.Name)
	}
	certPEM, keyPEM := sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey]
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, false, fmt.Sprintf("Secret %s/%s: %v", ns, ref.Name, err)
	}
	name := t.certName(ns, string(ref.Name))
	return &ir.Certificate{Name: name, CertPEM: certPEM, KeyPEM: keyPEM}, false, ""
}

// resolveBackendClientCert loads the certificate the Gateway presents to TLS backends.
func (t *translator) resolveBackendClientCert(g *gatewayCtx) {
	tc := g.gw.Spec.TLS
	if tc == nil || tc.Backend == nil || tc.Backend.ClientCertificateRef == nil {
		return
	}
	cert, notPermitted, msg := t.tlsSecret("Gateway", g.gw.Namespace, *tc.Backend.ClientCertificateRef)
	switch {
	case notPermitted:
		g.tlsRefsReason, g.tlsRefsMsg = string(gwapiv1.GatewayReasonRefNotPermitted), msg
	case msg != "":
		g.tlsRefsReason, g.tlsRefsMsg = string(gwapiv1.GatewayReasonInvalidClientCertificateRef), "spec.tls.backend.clientCertificateRef: "+msg
	default:
		g.clientCert = cert
	}
}

// frontendValidation resolves the client certificate check that applies to an HTTPS
// listener: the Gateway's spec.tls.frontend perPort entry for its port, else the default.
// Unresolvable CA references make ResolvedRefs false; with none valid the listener is not
// accepted (Gateway API NoValidCACertificate) rather than served without the check.
func (t *translator) frontendValidation(l *listenerCtx) {
	gw := l.gw.gw
	if gw.Spec.TLS == nil || gw.Spec.TLS.Frontend == nil {
		return
	}
	fe := gw.Spec.TLS.Frontend
	v := fe.Default.Validation
	for _, pp := range fe.PerPort {
		if pp.Port == l.spec.Port {
			v = pp.TLS.Validation
			break
		}
	}
	if v == nil {
		return
	}
	cv := &ir.ClientValidation{AllowInsecureFallback: v.Mode == gwapiv1.AllowInsecureFallback}
	valid := 0
	for _, ref := range v.CACertificateRefs {
		ns := gw.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		reason, msg := "", ""
		if !t.refGrantAllows(gatewayGroup, "Gateway", gw.Namespace, string(ref.Group), string(ref.Kind), ns, string(ref.Name)) {
			reason, msg = string(gwapiv1.ListenerReasonRefNotPermitted), fmt.Sprintf("%s %s/%s is in another namespace and no ReferenceGrant allows it", ref.Kind, ns, ref.Name)
		} else {
			var bundle []byte
			bundle, reason, msg = t.caBundle(ns, string(ref.Group), string(ref.Kind), string(ref.Name))
			switch reason {
			case "":
				valid++
				cv.CAPEM = append(cv.CAPEM, bundle...)
				continue
			case string(gwapiv1.BackendTLSPolicyReasonInvalidKind):
				reason = string(gwapiv1.ListenerReasonInvalidCACertificateKind)
			default:
				reason = string(gwapiv1.ListenerReasonInvalidCACertificateRef)
			}
		}
		if l.refsReason == "" {
			l.refsReason, l.refsMsg = reason, "client certificate validation: "+msg
		}
	}
	if valid == 0 && l.acceptedReason == "" {
		l.acceptedReason, l.acceptedMsg = string(gwapiv1.ListenerReasonNoValidCACertificate), l.refsMsg
	}
	l.validation = cv
}

// insecureFrontendValidation reports whether any of the Gateway's client certificate checks
// lets connections through without a valid certificate.
func insecureFrontendValidation(gw *gwapiv1.Gateway) bool {
	if gw.Spec.TLS == nil || gw.Spec.TLS.Frontend == nil {
		return false
	}
	fe := gw.Spec.TLS.Frontend
	if v := fe.Default.Validation; v != nil && v.Mode == gwapiv1.AllowInsecureFallback {
		return true
	}
	for _, pp := range fe.PerPort {
		if v := pp.TLS.Validation; v != nil && v.Mode == gwapiv1.AllowInsecureFallback {
			return true
		}
	}
	return false
}

func (t *translator) certName(ns, name string) string {
	return SecretCertificateName(t.opts.Scope, ns, name)
}

// SecretCertificateName is the snapshot's name of the certificate in Secret ns/name of the
// project scope (Options.Scope): what adds a Secret's certificate to a snapshot after
// translation (internal/acme) names it the same, so a listener that also refers to it shares
// one entry.
func SecretCertificateName(scope, ns, name string) string {
	if scope == "" {
		return "secret/" + ns + "/" + name
	}
	return "secret/" + scope + "/" + ns + "/" + name
}

// detectConflicts marks listeners of one Gateway (with its ListenerSets') that share a port
// with another protocol, or share port, protocol and hostname (Gateway API listener
// conflicts). listeners are in precedence order. Against a listener of higher precedence (the
// Gateway's over a ListenerSet's, an older ListenerSet's over a newer one's) only the lower
// one is conflicted, and a listener conflicted that way no longer counts; within one object
// both are.
func detectConflicts(listeners []*listenerCtx) {
	for _, a := range listeners {
		for _, b := range listeners {
			if b.rank() < a.rank() && b.conflictReason == "" {
				a.conflictWith(b)
			}
		}
	}
	outranked := map[*listenerCtx]bool{}
	for _, l := range listeners {
		outranked[l] = l.conflictReason != ""
	}
	for _, a := range listeners {
		for _, b := range listeners {
			if a != b && a.rank() == b.rank() && !outranked[a] && !outranked[b] {
				a.conflictWith(b)
			}
		}
	}
}

// conflictWith marks l conflicted when it cannot share its port with other.
func (l *listenerCtx) conflictWith(other *listenerCtx) {
	if l.spec.Port != other.spec.Port || l.conflictReason != "" {
		return
	}
	// A UDP listener shares its port number only with listeners that use no UDP: HTTP and TCP
	// bind TCP alone, HTTPS also binds UDP (HTTP/3).
	lu, ou := l.spec.Protocol == gwapiv1.UDPProtocolType, other.spec.Protocol == gwapiv1.UDPProtocolType
	if lu != ou && l.spec.Protocol != gwapiv1.HTTPSProtocolType && other.spec.Protocol != gwapiv1.HTTPSProtocolType {
		return
	}
	switch {
	case l.spec.Protocol != other.spec.Protocol:
		l.conflictReason = string(gwapiv1.ListenerReasonProtocolConflict)
		l.conflictMsg = fmt.Sprintf("port %d is also used by listener %q with protocol %s", l.spec.Port, other.spec.Name, other.spec.Protocol)
	case l.hostname == other.hostname:
		l.conflictReason = string(gwapiv1.ListenerReasonHostnameConflict)
		l.conflictMsg = fmt.Sprintf("listener %q uses the same port and hostname", other.spec.Name)
	}
}

// program binds a valid listener to its sockets. A socket already bound with another protocol
// (by an older Gateway) makes this listener conflicted.
func (t *translator) program(l *listenerCtx) {
	if !l.ok() {
		return
	}
	proto := ir.ProtocolHTTP
	switch l.spec.Protocol {
	case gwapiv1.HTTPSProtocolType:
		proto = ir.ProtocolHTTPS
	case gwapiv1.TCPProtocolType:
		proto = ir.ProtocolTCP
	case gwapiv1.UDPProtocolType:
		proto = ir.ProtocolUDP
	case gwapiv1.TLSProtocolType:
		proto = ir.ProtocolTLS
	}
	for _, addr := range l.gw.binds {
		s := t.socket(addr, int32(l.spec.Port), proto)
		if s.Protocol != proto {
			l.conflictReason = string(gwapiv1.ListenerReasonProtocolConflict)
			l.conflictMsg = fmt.Sprintf("%s is already serving %s for another Gateway", s.Name, s.Protocol)
			return
		}
		// Gateways sharing a socket must not claim the same listener hostname: the older wins.
		claim := s.Name + "|" + l.hostname
		if owner, taken := t.hostClaims[claim]; taken && owner != l.gw.key {
			l.conflictReason = string(gwapiv1.ListenerReasonHostnameConflict)
			l.conflictMsg = fmt.Sprintf("%s already serves hostname %q for Gateway %s", s.Name, l.hostname, owner)
			return
		}
		t.hostClaims[claim] = l.gw.key
		if _, set := t.limitsBy[s.Name]; !set && (proto == ir.ProtocolHTTP || proto == ir.ProtocolHTTPS) {
			// Gateways sharing a socket share its connections: the oldest one's Proxy decides.
			t.limitsBy[s.Name] = l.gw.key
			s.HTTP = l.gw.httpLimits
		}
		l.sockets = append(l.sockets, s)
	}
	for _, s := range l.sockets {
		if proto == ir.ProtocolHTTPS || proto == ir.ProtocolTLS && l.terminates() {
			if s.TLS == nil {
				s.TLS = &ir.ListenerTLS{}
			}
			for _, ref := range l.spec.TLS.CertificateRefs {
				ns := l.namespace()
				if ref.Namespace != nil {
					ns = string(*ref.Namespace)
				}
				if _, ok := t.certs[t.certName(ns, string(ref.Name))]; ok {
					s.TLS.Certificates = append(s.TLS.Certificates, ir.SNICertificate{Hostname: l.hostname, Certificate: t.certName(ns, string(ref.Name)), ClientValidation: l.validation})
				}
			}
		}
	}
}

// virtualHost returns the listener's virtual host for a route hostname on a socket.
func (l *listenerCtx) virtualHost(s *ir.Listener, hostname string) *ir.VirtualHost {
	key := s.Name + "|" + hostname
	if vh, ok := l.vhosts[key]; ok {
		return vh
	}
	vh := &ir.VirtualHost{
		ListenerHostname: l.hostname,
		Hostname:         hostname,
		Origin:           l.origin(),
	}
	l.vhosts[key] = vh
	s.VirtualHosts = append(s.VirtualHosts, vh)
	return vh
}

// origin names the listener in the IR: its Gateway's or ListenerSet's section.
func (l *listenerCtx) origin() ir.Origin {
	if l.set != nil {
		return ir.Origin{Kind: "ListenerSet", Namespace: l.set.ls.Namespace, Name: l.set.ls.Name, Section: string(l.spec.Name)}
	}
	return ir.Origin{Kind: "Gateway", Namespace: l.gw.gw.Namespace, Name: l.gw.gw.Name, Section: string(l.spec.Name)}
}

// allowsRoute reports whether the listener admits routes of kind from namespace routeNS.
func (t *translator) allowsRoute(l *listenerCtx, kind, routeNS string) bool {
	if !slices.ContainsFunc(l.status.SupportedKinds, func(k gwapiv1.RouteGroupKind) bool { return string(k.Kind) == kind }) {
		return false
	}
	from := gwapiv1.NamespacesFromSame
	var selector *metav1.LabelSelector
	if ar := l.spec.AllowedRoutes; ar != nil && ar.Namespaces != nil {
		if ar.Namespaces.From != nil {
			from = *ar.Namespaces.From
		}
		selector = ar.Namespaces.Selector
	}
	return t.namespaceAllowed(from, selector, l.namespace(), routeNS)
}

// namespaceAllowed applies a Gateway API namespace filter (from All/Same/Selector/None) of an
// object in ownerNS to an object in ns.
func (t *translator) namespaceAllowed(from gwapiv1.FromNamespaces, selector *metav1.LabelSelector, ownerNS, ns string) bool {
	switch from {
	case gwapiv1.NamespacesFromAll:
		return true
	case gwapiv1.NamespacesFromSame:
		return ns == ownerNS
	case gwapiv1.NamespacesFromSelector:
		if selector == nil {
			return false
		}
		sel, err := metav1.LabelSelectorAsSelector(selector)
		if err != nil {
			return false
		}
		n, ok := t.namespaces[ns]
		if !ok {
			return false
		}
		return sel.Matches(labels.Set(n.Labels))
	}
	return false
}

// programmed reports whether the listener serves traffic.
func (l *listenerCtx) programmed() bool { return l.ok() && len(l.sockets) > 0 }

// listenerStatus is the listener's status (Gateway API conditions; old are the stored ones,
// whose transition times are kept). A conflicted listener is neither accepted nor programmed,
// with the conflict as the reason.
func (l *listenerCtx) listenerStatus(gen int64, now time.Time, old []metav1.Condition) gwapiv1.ListenerStatus {
	ls := l.status
	ls.AttachedRoutes = l.attached
	if ls.SupportedKinds == nil {
		ls.SupportedKinds = []gwapiv1.RouteGroupKind{}
	}
	accepted := l.acceptedReason == "" && l.conflictReason == ""
	status.Set(&ls.Conditions, status.Condition(string(gwapiv1.ListenerConditionAccepted), accepted,
		or(or(l.conflictReason, l.acceptedReason), string(gwapiv1.ListenerReasonAccepted)), or(or(l.conflictMsg, l.acceptedMsg), "Listener is valid"), gen, now))
	status.Set(&ls.Conditions, status.Condition(string(gwapiv1.ListenerConditionResolvedRefs), l.refsReason == "",
		or(l.refsReason, string(gwapiv1.ListenerReasonResolvedRefs)), or(l.refsMsg, "All references resolved"), gen, now))
	conflicted := l.conflictReason != ""
	status.Set(&ls.Conditions, status.Condition(string(gwapiv1.ListenerConditionConflicted), conflicted,
		or(l.conflictReason, string(gwapiv1.ListenerReasonNoConflicts)), or(l.conflictMsg, "No conflicts"), gen, now))
	programmed := l.programmed()
	msg, reason := "Listener is serving", string(gwapiv1.ListenerReasonProgrammed)
	if !programmed {
		msg = "Listener is not serving: " + firstNonEmpty(l.conflictMsg, l.acceptedMsg, l.refsMsg, l.gw.addrError)
		reason = or(l.conflictReason, string(gwapiv1.ListenerReasonInvalid))
	}
	status.Set(&ls.Conditions, status.Condition(string(gwapiv1.ListenerConditionProgrammed), programmed, reason, msg, gen, now))
	status.KeepTransitionTimes(ls.Conditions, old)
	return ls
}

// finish writes the Gateway's status.
func (g *gatewayCtx) finish(t *translator) {
	gw := g.gw
	gen := gw.Generation
	now := t.opts.Now
	st := &gwapiv1.GatewayStatus{}
	if g.addrError == "" {
		addrs := g.binds
		if len(gw.Spec.Addresses) == 0 && len(t.opts.AddressPool) == 0 {
			addrs = t.opts.StatusAddresses
		}
		for _, a := range addrs {
			if a == "" {
				continue
			}
			typ := gwapiv1.IPAddressType
			st.Addresses = append(st.Addresses, gwapiv1.GatewayStatusAddress{Type: &typ, Value: a})
		}
	}
	valid := 0
	for _, l := range g.listeners {
		var old []metav1.Condition
		if o := findListenerStatus(gw.Status.Listeners, l.spec.Name); o != nil {
			old = o.Conditions
		}
		ls := l.listenerStatus(gen, now, old)
		t.setPolicyAffected(&ls.Conditions, old, "Gateway", gw.Namespace, gw.Name, string(l.spec.Name), gen)
		if l.programmed() {
			valid++
		}
		st.Listeners = append(st.Listeners, ls)
	}
	if n := t.attachedListenerSets(g); n > 0 || gw.Spec.AllowedListeners != nil {
		st.AttachedListenerSets = &n
	}
	if g.addrError != "" {
		accepted := status.Condition(string(gwapiv1.GatewayConditionAccepted), false, string(gwapiv1.GatewayReasonUnsupportedAddress), g.addrError, gen, now)
		if g.poolExhausted {
			accepted = status.Condition(string(gwapiv1.GatewayConditionAccepted), true, string(gwapiv1.GatewayReasonAccepted), "Gateway is accepted", gen, now)
		}
		status.Set(&st.Conditions, accepted)
		status.Set(&st.Conditions, status.Condition(string(gwapiv1.GatewayConditionProgrammed), false, string(gwapiv1.GatewayReasonAddressNotAssigned), g.addrError, gen, now))
	} else {
		reason, msg := string(gwapiv1.GatewayReasonAccepted), "Gateway is accepted"
		if valid < len(g.listeners) {
			reason, msg = string(gwapiv1.GatewayReasonListenersNotValid), fmt.Sprintf("%d of %d listeners are not valid", len(g.listeners)-valid, len(g.listeners))
		}
		// Gateway API: a Gateway none of whose listeners is accepted is not accepted.
		anyAccepted := false
		for _, l := range g.listeners {
			if l.acceptedReason == "" && l.conflictReason == "" {
				anyAccepted = true
			}
		}
		status.Set(&st.Conditions, status.Condition(string(gwapiv1.GatewayConditionAccepted), anyAccepted, reason, msg, gen, now))
		programmed := valid > 0
		status.Set(&st.Conditions, status.Condition(string(gwapiv1.GatewayConditionProgrammed), programmed,
			ternary(programmed, string(gwapiv1.GatewayReasonProgrammed), string(gwapiv1.GatewayReasonInvalid)),
			ternary(programmed, "Gateway is serving", "no listener is valid"), gen, now))
	}
	if tc := gw.Spec.TLS; tc != nil && tc.Backend != nil {
		status.Set(&st.Conditions, status.Condition(string(gwapiv1.GatewayConditionResolvedRefs), g.tlsRefsReason == "",
			or(g.tlsRefsReason, string(gwapiv1.GatewayReasonResolvedRefs)), or(g.tlsRefsMsg, "All references resolved"), gen, now))
	}
	if insecureFrontendValidation(gw) {
		status.Set(&st.Conditions, status.Condition(string(gwapiv1.GatewayConditionInsecureFrontendValidationMode), true,
			string(gwapiv1.GatewayReasonConfigurationChanged), "a client certificate check uses AllowInsecureFallback: clients without a valid certificate are let through", gen, now))
	}
	t.setPolicyAffected(&st.Conditions, gw.Status.Conditions, "Gateway", gw.Namespace, gw.Name, "", gen)
	status.KeepTransitionTimes(st.Conditions, gw.Status.Conditions)
	t.report.Gateways[g.key] = st
	t.report.GatewayBinds[g.key] = g.binds
}

func findListenerStatus(list []gwapiv1.ListenerStatus, name gwapiv1.SectionName) *gwapiv1.ListenerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func ternary[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}
