package filter

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	authjwt "apoxy.dev/apoxy/internal/auth/jwt"
	"apoxy.dev/apoxy/internal/ir"
)

// authorization runs an AuthPolicy's access rules after authentication: the first rule whose
// match holds decides (Allow or Deny), and defaultAction decides when none does. A denial is
// 403, except when the request is unauthenticated and an Allow rule fails only for want of
// an identity (authenticated, users, jwt): then it is 401 with the policy's challenge, so a
// client knows to log in. The reason (which rule) goes to the access log and metrics, never
// to the client.
type authorization struct {
	a     *ir.Authorization
	rules []authzRule
	// challenge is the WWW-Authenticate of the policy's authentication methods.
	challenge []string
	// allowDefault and denyDefault count decisions made by defaultAction.
	allowDefault, denyDefault prometheus.Counter
}

type authzRule struct {
	r            *ir.AuthzRule
	paths        []*ir.PathMatch
	cidrs        []netip.Prefix
	headers      []authzHeader
	claims       []authzClaim
	needIdentity bool // the match checks who the client is
	decided      prometheus.Counter
}

type authzHeader struct {
	key    string // canonical
	values []string
}

type authzClaim struct {
	path   []string
	values []string
}

func newAuthorization(r *ir.Route, env *Env) (Stage, error) {
	if r.Auth == nil || r.Auth.Authorization == nil {
		return nil, nil
	}
	a := r.Auth.Authorization
	s := &authorization{a: a, challenge: authChallenge(r.Auth),
		allowDefault: env.authCounter("authorization", a.Policy, "defaultAction", "allowed"),
		denyDefault:  env.authCounter("authorization", a.Policy, "defaultAction", "denied")}
	for i := range a.Rules {
		rule := &a.Rules[i]
		m := &rule.Match
		decision := "denied"
		if rule.Allow {
			decision = "allowed"
		}
		cr := authzRule{r: rule, decided: env.authCounter("authorization", a.Policy, rule.Name, decision),
			needIdentity: m.Authenticated != nil && *m.Authenticated || len(m.Users) > 0 || m.JWTProvider != "" || len(m.Claims) > 0 || len(m.Scopes) > 0}
		for j := range m.Paths {
			cr.paths = append(cr.paths, &m.Paths[j])
		}
		for _, c := range m.ClientCIDRs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return nil, fmt.Errorf("authorization rule %s: clientCIDRs: %w", rule.Name, err)
			}
			cr.cidrs = append(cr.cidrs, p.Masked())
		}
		for _, h := range m.Headers {
			cr.headers = append(cr.headers, authzHeader{key: http.CanonicalHeaderKey(h.Name), values: h.Values})
		}
		for _, c := range m.Claims {
			cr.claims = append(cr.claims, authzClaim{path: authjwt.SplitClaimPath(c.Name), values: c.Values})
		}
		s.rules = append(s.rules, cr)
	}
	return s, nil
}

// authChallenge is the WWW-Authenticate a 401 carries for a route's authentication methods.
func authChallenge(a *ir.Auth) []string {
	var out []string
	if a.JWT != nil || a.OIDC != nil {
		out = append(out, "Bearer")
	}
	if a.Basic != nil {
		out = append(out, `Basic realm="`+quoteRealm(a.Basic.Realm)+`", charset="UTF-8"`)
	}
	return out
}

// Contained: Serve works on the request's goroutine and keeps nothing of it.
func (*authorization) Contained() {}

func (s *authorization) Serve(x *Exchange) bool {
	wantedIdentity := false
	for i := range s.rules {
		r := &s.rules[i]
		if !r.requestHolds(x) {
			continue
		}
		if !r.identityHolds(&x.Identity) {
			if r.r.Allow && r.needIdentity && !x.Identity.Authenticated {
				wantedIdentity = true
			}
			continue
		}
		inc(r.decided)
		if r.r.Allow {
			x.Auth = appendDecision(x.Auth, "allow:"+r.r.Name)
			return false
		}
		return s.deny(x, "deny:"+r.r.Name, wantedIdentity)
	}
	if s.a.DefaultAllow {
		inc(s.allowDefault)
		x.Auth = appendDecision(x.Auth, "allow:default")
		return false
	}
	inc(s.denyDefault)
	return s.deny(x, "deny:default", wantedIdentity)
}

func appendDecision(log, d string) string {
	if log == "" {
		return d
	}
	return log + " " + d
}

func (s *authorization) deny(x *Exchange, why string, wantedIdentity bool) bool {
	x.Auth = appendDecision(x.Auth, why)
	if wantedIdentity && len(s.challenge) > 0 {
		x.W.Header()["Www-Authenticate"] = s.challenge
		x.Error("unauthorized", http.StatusUnauthorized)
		return true
	}
	x.Error("forbidden", http.StatusForbidden)
	return true
}

// requestHolds checks what the request says: method, path, client address, headers.
func (r *authzRule) requestHolds(x *Exchange) bool {
	m := &r.r.Match
	if len(m.Methods) > 0 && !slices.Contains(m.Methods, x.Req.Method) {
		return false
	}
	if len(r.paths) > 0 && !slices.ContainsFunc(r.paths, func(p *ir.PathMatch) bool { return pathHolds(p, nil, x.Req.URL.Path) }) {
		return false
	}
	if len(r.cidrs) > 0 {
		a := x.ClientAddr()
		if !slices.ContainsFunc(r.cidrs, func(p netip.Prefix) bool { return p.Contains(a) }) {
			return false
		}
	}
	for _, h := range r.headers {
		vs := x.Req.Header[h.key]
		if !slices.ContainsFunc(vs, func(v string) bool { return slices.Contains(h.values, v) }) {
			return false
		}
	}
	return true
}

// identityHolds checks who the client is: authenticated, basic-auth user, JWT provider,
// claims and scopes.
func (r *authzRule) identityHolds(id *Identity) bool {
	m := &r.r.Match
	if m.Authenticated != nil && *m.Authenticated != id.Authenticated {
		return false
	}
	if len(m.Users) > 0 && (id.User == "" || !slices.Contains(m.Users, id.User)) {
		return false
	}
	if m.JWTProvider != "" && id.Provider != m.JWTProvider {
		return false
	}
	if len(r.claims) > 0 || len(m.Scopes) > 0 {
		if id.Claims == nil {
			return false
		}
		for _, c := range r.claims {
			v, ok := authjwt.LookupClaim(id.Claims, c.path)
			if !ok || !authjwt.ClaimContains(v, c.values) {
				return false
			}
		}
		if !authjwt.HasScopes(id.Claims, m.Scopes) {
			return false
		}
	}
	return true
}

// pathHolds matches a path against a Gateway API style path match (re for regular
// expressions).
func pathHolds(p *ir.PathMatch, re *regexp.Regexp, path string) bool {
	switch p.Type {
	case ir.PathExact:
		return path == p.Value
	case ir.PathRegularExpression:
		return re != nil && re.MatchString(path)
	default:
		prefix := strings.TrimSuffix(p.Value, "/")
		return strings.HasPrefix(path, prefix) && (len(path) == len(prefix) || path[len(prefix)] == '/' || prefix == "")
	}
}
