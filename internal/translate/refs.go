package translate

import (
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	gatewayv1 "apoxy.dev/apoxy/api/gateway/v1"
	"apoxy.dev/apoxy/internal/hostname"
)

// Groups as they appear in references. An empty core group is "".
const (
	gatewayGroup    = gatewayv1.GroupName
	coreApoxyGroup  = "core.apoxy.dev"
	extensionsGroup = "extensions.apoxy.dev"
)

// refGrantAllows reports whether a ReferenceGrant in toNS lets objects of fromKind in fromNS
// refer to toGroup/toKind (named toName) in toNS. Same-namespace references need no grant.
func (t *translator) refGrantAllows(fromGroup, fromKind, fromNS, toGroup, toKind, toNS, toName string) bool {
	if fromNS == toNS {
		return true
	}
	for _, g := range t.set.ReferenceGrants {
		if g.Namespace != toNS {
			continue
		}
		fromOK := false
		for _, f := range g.Spec.From {
			if sameGroup(string(f.Group), fromGroup) && string(f.Kind) == fromKind && string(f.Namespace) == fromNS {
				fromOK = true
				break
			}
		}
		if !fromOK {
			continue
		}
		for _, to := range g.Spec.To {
			if sameGroup(string(to.Group), toGroup) && string(to.Kind) == toKind && (to.Name == nil || string(*to.Name) == toName) {
				return true
			}
		}
	}
	return false
}

// sameGroup compares groups, treating the upstream Gateway API group as ours.
func sameGroup(a, b string) bool {
	canon := func(g string) string {
		if g == gatewayv1.UpstreamGroupName {
			return gatewayGroup
		}
		return g
	}
	return canon(a) == canon(b)
}

// intersectHostnames returns the hostnames a route serves on a listener (Gateway API hostname
// intersection): route hostnames narrowed to the listener's. It returns nil when they do not
// intersect; ["*"] means any host.
func intersectHostnames(listener string, route []gwapiv1.Hostname) []string {
	if len(route) == 0 {
		if listener == "" {
			return []string{"*"}
		}
		return []string{listener}
	}
	var out []string
	for _, h := range route {
		if n, ok := hostname.Intersect(listener, string(h)); ok {
			out = append(out, n)
		}
	}
	return dedupe(out)
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func ptrString[T ~string](p *T) string {
	if p == nil {
		return ""
	}
	return string(*p)
}
