package translate

import (
	"cmp"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

// tlsPolicyCtx is one BackendTLSPolicy's resolution.
type tlsPolicyCtx struct {
	policy *gwapiv1.BackendTLSPolicy
	tls    *ir.UpstreamTLS
	// refsReason/refsMessage explain the first CA reference that did not resolve; connections
	// through a policy with any such reference fail (500), as Gateway API requires.
	refsReason, refsMessage string
	// validCAs counts the CA references that resolved.
	validCAs int
	// invalid explains why the policy as a whole cannot be accepted (an unknown
	// wellKnownCACertificates set); empty otherwise.
	invalid string
}

// usable reports whether connections may use the policy.
func (pc *tlsPolicyCtx) usable() bool { return pc.refsReason == "" && pc.invalid == "" }

// indexTLSPolicies resolves every BackendTLSPolicy that targets a core.apoxy.dev Backend. When
// two target the same Backend, one naming a sectionName beats one without, then the older one
// applies (the GEP-713 conflict rules). Backends have no named ports, so a sectionName only
// makes a policy more specific.
func (t *translator) indexTLSPolicies() {
	t.tlsPolicies = map[status.Key]*tlsPolicyCtx{}
	t.tlsPolicyOf = map[*gwapiv1.BackendTLSPolicy]*tlsPolicyCtx{}
	type target struct {
		pc      *tlsPolicyCtx
		key     status.Key
		section bool
	}
	var targets []target
	for _, p := range t.set.BackendTLSPolicies {
		pc := t.resolveTLSPolicy(p)
		t.tlsPolicyOf[p] = pc
		for _, ref := range p.Spec.TargetRefs {
			if ref.Kind != "Backend" || (ref.Group != "" && string(ref.Group) != coreApoxyGroup) {
				continue
			}
			targets = append(targets, target{pc, status.KeyOf(p.Namespace, string(ref.Name)), ref.SectionName != nil && *ref.SectionName != ""})
		}
	}
	slices.SortStableFunc(targets, func(a, b target) int {
		if a.section != b.section {
			if a.section {
				return -1
			}
			return 1
		}
		pa, pb := a.pc.policy, b.pc.policy
		return cmp.Or(pa.CreationTimestamp.Compare(pb.CreationTimestamp.Time), cmp.Compare(pa.Namespace, pb.Namespace), cmp.Compare(pa.Name, pb.Name))
	})
	for _, tg := range targets {
		if _, taken := t.tlsPolicies[tg.key]; !taken {
			t.tlsPolicies[tg.key] = tg.pc
		}
	}
}

// resolveTLSPolicy reads a policy's CA bundle (ConfigMaps or Secrets with key ca.crt, or the
// system roots) and subject alternative names.
func (t *translator) resolveTLSPolicy(p *gwapiv1.BackendTLSPolicy) *tlsPolicyCtx {
	v := p.Spec.Validation
	pc := &tlsPolicyCtx{policy: p, tls: &ir.UpstreamTLS{ServerName: string(v.Hostname)}}
	for _, san := range v.SubjectAltNames {
		switch san.Type {
		case gwapiv1.HostnameSubjectAltNameType:
			pc.tls.SubjectAltNames = append(pc.tls.SubjectAltNames, ir.SubjectAltName{Hostname: string(san.Hostname)})
		case gwapiv1.URISubjectAltNameType:
			pc.tls.SubjectAltNames = append(pc.tls.SubjectAltNames, ir.SubjectAltName{URI: string(san.URI)})
		}
	}
	if wk := v.WellKnownCACertificates; wk != nil && *wk != "" && *wk != gwapiv1.WellKnownCACertificatesSystem {
		pc.invalid = fmt.Sprintf("wellKnownCACertificates %q is not a set this gateway knows: use System or caCertificateRefs", *wk)
	}
	for _, ref := range v.CACertificateRefs {
		bundle, reason, msg := t.caBundle(p.Namespace, string(ref.Group), string(ref.Kind), string(ref.Name))
		if reason != "" {
			if pc.refsReason == "" {
				pc.refsReason, pc.refsMessage = reason, msg
			}
			continue
		}
		pc.validCAs++
		pc.tls.CAPEM = append(pc.tls.CAPEM, bundle...)
	}
	return pc
}

// caBundle returns the PEM CA certificates under key ca.crt of a ConfigMap (or Secret), or the
// Gateway API reason and a message naming the reference when it cannot be used.
// Listener conditions use the same reasons, except InvalidKind (InvalidCACertificateKind there).
func (t *translator) caBundle(ns, group, kind, name string) ([]byte, string, string) {
	var data []byte
	switch {
	case group == "" && kind == "ConfigMap":
		cm, ok := t.configMaps[status.KeyOf(ns, name)]
		if !ok {
			return nil, string(gwapiv1.BackendTLSPolicyReasonInvalidCACertificateRef), fmt.Sprintf("ConfigMap %s/%s not found", ns, name)
		}
		data = []byte(cm.Data[caCertKey])
		if len(data) == 0 {
			data = cm.BinaryData[caCertKey]
		}
	case group == "" && kind == "Secret":
		sec, ok := t.secrets[status.KeyOf(ns, name)]
		if !ok {
			return nil, string(gwapiv1.BackendTLSPolicyReasonInvalidCACertificateRef), fmt.Sprintf("Secret %s/%s not found", ns, name)
		}
		data = sec.Data[caCertKey]
	default:
		return nil, string(gwapiv1.BackendTLSPolicyReasonInvalidKind), fmt.Sprintf("caCertificateRef %s %s/%s: use a ConfigMap (or Secret) with key %s", groupKind(group, kind), ns, name, caCertKey)
	}
	if !hasPEMCertificate(data) {
		return nil, string(gwapiv1.BackendTLSPolicyReasonInvalidCACertificateRef), fmt.Sprintf("%s %s/%s: key %s holds no PEM certificate", kind, ns, name, caCertKey)
	}
	return data, "", ""
}

// caCertKey is the key holding a CA bundle in ConfigMaps and Secrets (Gateway API and
// Kubernetes convention).
const caCertKey = "ca.crt"

// hasPEMCertificate reports whether data holds at least one parseable PEM certificate.
func hasPEMCertificate(data []byte) bool {
	for len(data) > 0 {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return false
		}
		if block.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(block.Bytes); err == nil {
				return true
			}
		}
	}
	return false
}

func groupKind(group, kind string) string {
	if group == "" {
		return kind
	}
	return kind + "." + group
}

// tlsPolicyBlocks reports whether a Backend's policy forbids connections (a CA reference that
// does not resolve): references to such a Backend get 500 rather than an unverified connection.
func (t *translator) tlsPolicyBlocks(key status.Key) bool {
	pc, ok := t.tlsPolicies[key]
	return ok && !pc.usable()
}

// applyTLSPolicy makes a Backend speak TLS as its policy says: plain becomes tls, h2c h2.
func (t *translator) applyTLSPolicy(key status.Key, b *ir.Backend) {
	pc, ok := t.tlsPolicies[key]
	if !ok || !pc.usable() {
		return
	}
	b.TLS = pc.tls
	switch b.Protocol {
	case "plain":
		b.Protocol = "tls"
	case "h2c":
		b.Protocol = "h2"
	}
}

// finishTLSPolicies writes each policy's ancestors: the Gateways whose routes reach a Backend
// the policy targets.
func (t *translator) finishTLSPolicies() {
	for _, p := range t.set.BackendTLSPolicies {
		st := &gwapiv1.PolicyStatus{}
		gws := map[status.Key]bool{}
		for _, ref := range p.Spec.TargetRefs {
			for g := range t.backendGateways[status.KeyOf(p.Namespace, string(ref.Name))] {
				gws[g] = true
			}
		}
		keys := make([]string, 0, len(gws))
		for g := range gws {
			keys = append(keys, string(g))
		}
		slices.Sort(keys)
		for _, k := range keys {
			g := t.gateways[status.Key(k)]
			group, kind, ns := gwapiv1.Group(gatewayGroup), gwapiv1.Kind("Gateway"), gwapiv1.Namespace(g.gw.Namespace)
			anc := gwapiv1.PolicyAncestorStatus{
				AncestorRef:    gwapiv1.ParentReference{Group: &group, Kind: &kind, Namespace: &ns, Name: gwapiv1.ObjectName(g.gw.Name)},
				ControllerName: gwapiv1.GatewayController(t.opts.ControllerName),
			}
			accepted, reason, msg := true, string(gwapiv1.PolicyReasonAccepted), "Policy is applied"
			resolved, rreason, rmsg := true, string(gwapiv1.BackendTLSPolicyReasonResolvedRefs), "All references resolved"
			pc := t.tlsPolicyOf[p]
			applied := slices.ContainsFunc(p.Spec.TargetRefs, func(ref gwapiv1.LocalPolicyTargetReferenceWithSectionName) bool {
				return t.tlsPolicies[status.KeyOf(p.Namespace, string(ref.Name))] == pc
			})
			switch {
			case !applied:
				accepted, reason, msg = false, string(gwapiv1.PolicyReasonConflicted), "another BackendTLSPolicy targets the same Backend and takes precedence (a sectionName first, then the oldest)"
			case pc.invalid != "":
				accepted, reason, msg = false, string(gwapiv1.PolicyReasonInvalid), pc.invalid
			case pc.refsReason != "" && pc.validCAs == 0:
				accepted, reason, msg = false, string(gwapiv1.BackendTLSPolicyReasonNoValidCACertificate), pc.refsMessage
			}
			if pc.refsReason != "" {
				resolved, rreason, rmsg = false, pc.refsReason, pc.refsMessage
			}
			status.Set(&anc.Conditions, status.Condition(string(gwapiv1.PolicyConditionAccepted), accepted, reason, msg, p.Generation, t.opts.Now))
			status.Set(&anc.Conditions, status.Condition(string(gwapiv1.BackendTLSPolicyConditionResolvedRefs), resolved, rreason, rmsg, p.Generation, t.opts.Now))
			st.Ancestors = append(st.Ancestors, anc)
		}
		if len(st.Ancestors) > 0 {
			t.report.BackendTLSPolicies[status.KeyOf(p.Namespace, p.Name)] = st
		}
	}
}
