package filter

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"

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
	claims  []ir.ClaimMatch
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
	out := &matcher{methods: m.Methods, path: m.Path, claims: m.JWTClaims}
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
	if p := m.path; p != nil {
		path := r.URL.Path
		switch p.Type {
		case ir.PathExact:
			if path != p.Value {
				return false
			}
		case ir.PathPrefix:
			prefix := strings.TrimSuffix(p.Value, "/")
			if !strings.HasPrefix(path, prefix) || (len(path) > len(prefix) && path[len(prefix)] != '/' && prefix != "") {
				return false
			}
		case ir.PathRegularExpression:
			if !m.pathRE.MatchString(path) {
				return false
			}
		}
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
	if len(m.claims) > 0 {
		return false // no verified JWT until authentication exists (AuthPolicy)
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
