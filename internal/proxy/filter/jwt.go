package filter

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	authjwt "apoxy.dev/apoxy/internal/auth/jwt"
	"apoxy.dev/apoxy/internal/ir"
)

// jwtAuth verifies bearer tokens (an AuthPolicy's jwt block; internal/auth/jwt does the
// verification). Every header named in a claimToHeaders is removed from the client's request
// first, whatever the outcome. The token is looked for in every provider's places, in
// provider order; its (unverified) issuer chooses the provider, which must read tokens from
// where this one was found. A verified token's claims become the request's Identity, for
// authorization rules, external authorization, claim-keyed rate limits and edge functions.
// A request without a token is refused with 401 (`WWW-Authenticate: Bearer`) unless the block
// is optional; a present but invalid one always is, with error="invalid_token".
type jwtAuth struct {
	j       *ir.JWTAuth
	v       *authjwt.Verifier
	sources authjwt.Extractor // every provider's places, in order
	// byIssuer are the providers by issuer: where they read tokens and what they copy to
	// headers.
	byIssuer map[string]*jwtProvider
	strip    []string // canonical claim header names
	// passMissing: a request without a token goes on unauthenticated (optional, or the oidc
	// block logs it in: passThroughBearer).
	passMissing bool
	// unavailable: the block cannot verify (its keys or Backend are unusable); requests fail
	// closed with 500.
	unavailable string

	missing, invalid, down prometheus.Counter
}

type jwtProvider struct {
	name    string
	sources authjwt.Extractor
	headers []jwtClaimHeader
	ok      prometheus.Counter
}

type jwtClaimHeader struct {
	path   []string
	header string // canonical
}

func newJWTAuth(r *ir.Route, env *Env) (Stage, error) {
	if r.Auth == nil || r.Auth.JWT == nil {
		return nil, nil
	}
	j := r.Auth.JWT
	s := &jwtAuth{j: j, byIssuer: map[string]*jwtProvider{}, unavailable: j.Unavailable, passMissing: j.Optional || r.Auth.OIDC != nil && r.Auth.OIDC.PassThroughBearer,
		missing: env.authCounter("jwt", j.Policy, "", "missing"), invalid: env.authCounter("jwt", j.Policy, "", "invalid"),
		down: env.authCounter("jwt", j.Policy, "", "unavailable")}
	var providers []authjwt.Provider
	for i := range j.Providers {
		p := &j.Providers[i]
		jp := &jwtProvider{name: p.Name, sources: extractorOf(p.Extract), ok: env.authCounter("jwt", j.Policy, p.Name, "ok")}
		for _, ch := range p.ClaimToHeaders {
			h := http.CanonicalHeaderKey(ch.Header)
			jp.headers = append(jp.headers, jwtClaimHeader{path: authjwt.SplitClaimPath(ch.Claim), header: h})
			s.strip = append(s.strip, h)
		}
		s.byIssuer[p.Issuer] = jp
		s.sources.Headers = appendNew(s.sources.Headers, jp.sources.Headers...)
		s.sources.Cookies = appendNew(s.sources.Cookies, jp.sources.Cookies...)
		s.sources.Query = appendNew(s.sources.Query, jp.sources.Query...)
		keys, err := jwtKeys(p, env)
		if r, ok := keys.(*authjwt.Remote); ok && err == nil {
			watch(env, j.ID, "JWKS "+p.RemoteJWKS.URI+" (provider "+p.Name+")", r.Health)
		}
		if err != nil {
			s.unavailable = fmt.Sprintf("provider %s: %v", p.Name, err)
			continue
		}
		providers = append(providers, authjwt.Provider{Name: p.Name, Issuer: p.Issuer, Audiences: p.Audiences, Algorithms: p.Algorithms,
			ClockSkew: time.Duration(p.ClockSkew), Keys: keys})
	}
	if s.unavailable == "" {
		v, err := authjwt.New(providers...)
		if err != nil {
			s.unavailable = err.Error()
		}
		s.v = v
	}
	return s, nil
}

func appendNew[T comparable](list []T, items ...T) []T {
	for _, it := range items {
		found := false
		for _, have := range list {
			if have == it {
				found = true
				break
			}
		}
		if !found {
			list = append(list, it)
		}
	}
	return list
}

func extractorOf(t ir.TokenSources) authjwt.Extractor {
	var e authjwt.Extractor
	for _, h := range t.Headers {
		e.Headers = append(e.Headers, authjwt.HeaderSource{Name: h.Name, Prefix: h.Prefix})
	}
	e.Cookies, e.Query = t.Cookies, t.Query
	if len(e.Headers) == 0 && len(e.Cookies) == 0 && len(e.Query) == 0 {
		return authjwt.DefaultExtractor()
	}
	return e
}

// jwtKeys returns a provider's key source: a local set, or a remote one kept across swaps
// (its cached keys and fetch schedule) while its settings are unchanged.
func jwtKeys(p *ir.JWTProvider, env *Env) (authjwt.KeySource, error) {
	if r := p.RemoteJWKS; r != nil {
		key := "jwks/" + r.URI + "|" + r.Backend + "|" + strconv.Itoa(int(r.BackendPort)) + "|" + time.Duration(r.CacheDuration).String() + "|" + time.Duration(r.Timeout).String()
		return keep(env, key, func() (*authjwt.Remote, error) {
			return authjwt.NewRemote(authjwt.RemoteConfig{URI: r.URI, CacheDuration: time.Duration(r.CacheDuration), Timeout: time.Duration(r.Timeout),
				Client: env.httpClient(r.Backend, r.BackendPort, "")})
		})
	}
	return authjwt.ParseJWKS([]byte(p.LocalJWKS))
}

// Contained: Serve works on the request's goroutine and keeps nothing of it.
func (*jwtAuth) Contained() {}

func (s *jwtAuth) Serve(x *Exchange) bool {
	h := x.Req.Header
	for _, k := range s.strip {
		delete(h, k)
	}
	if s.unavailable != "" {
		inc(s.down)
		x.Auth = appendDecision(x.Auth, "jwt:unavailable")
		x.Error("authentication is unavailable", http.StatusInternalServerError)
		return true
	}
	token, where, ok := s.sources.Extract(x.Req)
	if !ok {
		if s.passMissing {
			return false
		}
		inc(s.missing)
		x.Auth = appendDecision(x.Auth, "jwt:missing")
		x.W.Header()["Www-Authenticate"] = []string{authjwt.Challenge("", nil)}
		x.Error("unauthorized", http.StatusUnauthorized)
		return true
	}
	tok, err := s.v.Verify(x.Req.Context(), token)
	var p *jwtProvider
	if err == nil {
		if p = s.byIssuer[tok.Issuer]; p == nil || !p.reads(where) {
			err = fmt.Errorf("token found in %s, where provider %s does not read tokens", where, tok.Provider)
		}
	}
	if err != nil {
		inc(s.invalid)
		x.Auth = appendDecision(x.Auth, "jwt:invalid:"+string(authjwt.ReasonOf(err)))
		x.W.Header()["Www-Authenticate"] = []string{authjwt.Challenge("", err)}
		x.Error("unauthorized", http.StatusUnauthorized)
		return true
	}
	inc(p.ok)
	x.Identity.Authenticated, x.Identity.Provider, x.Identity.Claims = true, p.name, tok.Claims
	x.Auth = appendDecision(x.Auth, "jwt:"+p.name)
	for _, ch := range p.headers {
		if v, ok := tok.Claim(ch.path); ok {
			if text, ok := authjwt.HeaderValue(v); ok {
				h[ch.header] = []string{text}
			}
		}
	}
	if !s.j.ForwardToken {
		s.sources.Remove(x.Req, where)
	}
	return false
}

// reads reports whether the provider reads tokens from where.
func (p *jwtProvider) reads(where authjwt.Location) bool {
	switch where.Kind {
	case authjwt.LocationHeader:
		for _, h := range p.sources.Headers {
			if strings.EqualFold(h.Name, where.Name) {
				return true
			}
		}
	case authjwt.LocationCookie:
		for _, c := range p.sources.Cookies {
			if c == where.Name {
				return true
			}
		}
	case authjwt.LocationQuery:
		for _, q := range p.sources.Query {
			if q == where.Name {
				return true
			}
		}
	}
	return false
}
