package filter

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"

	authjwt "apoxy.dev/apoxy/internal/auth/jwt"
	"apoxy.dev/apoxy/internal/ir"
)

// matcher is a compiled ir.RequestMatch: every set part must hold.
type matcher struct {
	methods []string
	path    *ir.PathMatch
	pathRE  *regexp.Regexp
	headers []valueMatcher
	query   []valueMatcher
	cidrs   []netip.Prefix
	claims  []authzClaim
}

type valueMatcher struct {
	m  ir.ValueMatch
	re *regexp.Regexp
	// key is the canonical header name.
	key string
}

func compileMatch(m *ir.RequestMatch) (*matcher, error) {
	if m == nil {
		return nil, nil
	}
	out := &matcher{methods: m.Methods, path: m.Path}
	for _, c := range m.JWTClaims {
		out.claims = append(out.claims, authzClaim{path: authjwt.SplitClaimPath(c.Name), values: c.Values})
	}
	if m.Path != nil && m.Path.Type == ir.PathRegularExpression {
		re, err := regexp.Compile("^(?:" + m.Path.Value + ")$")
		if err != nil {
			return nil, fmt.Errorf("path: %w", err)
		}
		out.pathRE = re
	}
	for _, list := range []struct {
		in  []ir.ValueMatch
		out *[]valueMatcher
	}{{m.Headers, &out.headers}, {m.QueryParams, &out.query}} {
		for _, v := range list.in {
			vm := valueMatcher{m: v, key: http.CanonicalHeaderKey(v.Name)}
			if v.Type == ir.ValueRegularExpression {
				re, err := regexp.Compile("^(?:" + v.Value + ")$")
				if err != nil {
					return nil, fmt.Errorf("%s: %w", v.Name, err)
				}
				vm.re = re
			}
			*list.out = append(*list.out, vm)
		}
	}
	for _, c := range m.ClientCIDRs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("clientCIDRs: %w", err)
		}
		out.cidrs = append(out.cidrs, p.Masked())
	}
	return out, nil
}

func compileMatches(ms []ir.RequestMatch) ([]*matcher, error) {
	var out []*matcher
	for i := range ms {
		m, err := compileMatch(&ms[i])
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// matches reports whether the request holds every part. A nil matcher matches everything.
func (m *matcher) matches(x *Exchange) bool {
	if m == nil {
		return true
	}
	r := x.Req
	if len(m.methods) > 0 && !slices.Contains(m.methods, r.Method) {
		return false
	}
	if m.path != nil && !pathHolds(m.path, m.pathRE, r.URL.Path) {
		return false
	}
	for i := range m.headers {
		vs, ok := r.Header[m.headers[i].key]
		if !m.headers[i].holds(vs, ok) {
			return false
		}
	}
	for i := range m.query {
		v, ok := queryValue(r.URL.RawQuery, m.query[i].m.Name)
		if !m.query[i].holdsValue(v, ok) {
			return false
		}
	}
	if len(m.cidrs) > 0 {
		a := x.ClientAddr()
		if !slices.ContainsFunc(m.cidrs, func(p netip.Prefix) bool { return p.Contains(a) }) {
			return false
		}
	}
	for _, c := range m.claims {
		// Only verified claims count: without an authenticated token the match fails.
		v, ok := authjwt.LookupClaim(x.Identity.Claims, c.path)
		if !ok || !authjwt.ClaimContains(v, c.values) {
			return false
		}
	}
	return true
}

func (v *valueMatcher) holds(vs []string, present bool) bool {
	if !present || len(vs) == 0 {
		return v.holdsValue("", false)
	}
	return v.holdsValue(vs[0], true)
}

// holdsValue matches a header's or query parameter's first value.
func (v *valueMatcher) holdsValue(val string, present bool) bool {
	var ok bool
	switch v.m.Type {
	case ir.ValuePresent:
		ok = present
	case ir.ValueRegularExpression:
		ok = present && v.re.MatchString(val)
	default:
		ok = present && val == v.m.Value
	}
	return ok != v.m.Invert
}
