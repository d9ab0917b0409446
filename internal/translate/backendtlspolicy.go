package translate

import (
	"cmp"
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
	// reason/message explain why the policy cannot be applied; empty when it applies.
	reason, message string
}

// indexTLSPolicies resolves every BackendTLSPolicy that targets a core.apoxy.dev Backend. When
// two target the same Backend the older one applies (Gateway API conflict rule).
func (t *translator) indexTLSPolicies() {
	t.tlsPolicies = map[status.Key]*tlsPolicyCtx{}
	policies := slices.Clone(t.set.BackendTLSPolicies)
	slices.SortStableFunc(policies, func(a, b *gwapiv1.BackendTLSPolicy) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for _, p := range policies {
		pc := &tlsPolicyCtx{policy: p, tls: &ir.UpstreamTLS{ServerName: string(p.Spec.Validation.Hostname)}}
		v := p.Spec.Validation
		for _, ref := range v.CACertificateRefs {
			if ref.Group != "" || ref.Kind != "Secret" {
				pc.reason, pc.message = string(gwapiv1.BackendTLSPolicyReasonInvalidKind), fmt.Sprintf("caCertificateRef %s/%s: use a Secret with key ca.crt", ref.Kind, ref.Name)
				break
			}
			sec, ok := t.secrets[status.KeyOf(p.Namespace, string(ref.Name))]
			if !ok || len(sec.Data["ca.crt"]) == 0 {
				pc.reason, pc.message = string(gwapiv1.BackendTLSPolicyReasonInvalidCACertificateRef), fmt.Sprintf("Secret %s/%s with key ca.crt not found", p.Namespace, ref.Name)
				break
			}
			pc.tls.CAPEM = append(pc.tls.CAPEM, sec.Data["ca.crt"]...)
		}
		for _, ref := range p.Spec.TargetRefs {
			if ref.Kind != "Backend" || (ref.Group != "" && string(ref.Group) != coreApoxyGroup) {
				continue
			}
			key := status.KeyOf(p.Namespace, string(ref.Name))
			if _, taken := t.tlsPolicies[key]; !taken {
				t.tlsPolicies[key] = pc
			}
		}
	}
}

// applyTLSPolicy makes a Backend speak TLS as its policy says: plain becomes tls, h2c h2.
func (t *translator) applyTLSPolicy(key status.Key, b *ir.Backend) {
	pc, ok := t.tlsPolicies[key]
	if !ok || pc.reason != "" {
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
			var own *tlsPolicyCtx
			for _, ref := range p.Spec.TargetRefs {
				if pc := t.tlsPolicies[status.KeyOf(p.Namespace, string(ref.Name))]; pc != nil {
					own = pc
				}
			}
			switch {
			case own == nil || own.policy != p:
				accepted, reason, msg = false, string(gwapiv1.PolicyReasonConflicted), "an older BackendTLSPolicy targets the same Backend"
			case own.reason != "":
				accepted, reason, msg = false, string(gwapiv1.BackendTLSPolicyReasonNoValidCACertificate), own.message
				resolved, rreason, rmsg = false, own.reason, own.message
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
