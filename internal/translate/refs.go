package translate

import (
	"strings"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/gwschema"
)

// Groups as they appear in references. An empty core group is "".
const (
	gatewayGroup    = gwschema.Group
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
		if g == gwschema.UpstreamGroup {
			return gatewayGroup
		}
		return g
	}
	return canon(a) == canon(b)
}

// hostnameMatches reports whether a request host (no port, lower case) matches a pattern: an
// exact name, a wildcard "*.example.com" (one or more labels in front of the suffix) or "*"/"".
func hostnameMatches(pattern, host string) bool {
	switch {
	case pattern == "" || pattern == "*":
		return true
	case strings.HasPrefix(pattern, "*."):
		suffix := pattern[1:] // ".example.com"
		return len(host) > len(suffix) && strings.HasSuffix(host, suffix)
	default:
		return pattern == host
	}
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
		r := string(h)
		switch {
		case listener == "":
			out = append(out, r)
		case r == listener:
			out = append(out, r)
		case !strings.HasPrefix(r, "*.") && hostnameMatches(listener, r):
			out = append(out, r) // exact route host under a wildcard listener
		case strings.HasPrefix(r, "*.") && hostnameMatches(r, listener) && !strings.HasPrefix(listener, "*."):
			out = append(out, listener) // exact listener host under a wildcard route
		case strings.HasPrefix(r, "*.") && strings.HasPrefix(listener, "*."):
			if strings.HasSuffix(r, listener[1:]) {
				out = append(out, r) // route wildcard is narrower
			} else if strings.HasSuffix(listener, r[1:]) {
				out = append(out, listener)
			}
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

// hostSpecificity orders hostnames: exact names first (longer first), then wildcards (longer
// suffix first), then "*".
func hostSpecificity(h string) (class int, length int) {
	switch {
	case h == "*" || h == "":
		return 2, 0
	case strings.HasPrefix(h, "*."):
		return 1, len(h)
	default:
		return 0, len(h)
	}
}

func ptrString[T ~string](p *T) string {
	if p == nil {
		return ""
	}
	return string(*p)
}
