package filter

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	authjwt "apoxy.dev/apoxy/internal/auth/jwt"
	"apoxy.dev/apoxy/internal/auth/oidc"
	"apoxy.dev/apoxy/internal/ir"
)

// oidcAuth logs browsers in with OpenID Connect (an AuthPolicy's oidc block;
// internal/auth/oidc is the relying party: code flow with PKCE, sealed cookie sessions,
// refresh, logout). The callback and logout paths reach it before route matching: the
// translator adds intercept routes for them on every host the policy covers. A request with
// a session goes on with the ID token's claims as its identity; the RP's own cookies never
// reach the upstream. With passThroughBearer, a request whose bearer token the policy's jwt
// block verified skips the login.
type oidcAuth struct {
	o  *ir.OIDCAuth
	rp *oidc.RP
	// headers are the claim headers; strip every header the block sets, removed from the
	// client's request first.
	headers []jwtClaimHeader
	strip   []string
	idHdr   string
	// unavailable: the block cannot run; requests fail closed (500).
	unavailable string
	outcomes    map[oidc.Outcome]prometheus.Counter
}

func newOIDCAuth(r *ir.Route, env *Env) (Stage, error) {
	if r.Auth == nil || r.Auth.OIDC == nil {
		return nil, nil
	}
	o := r.Auth.OIDC
	s := &oidcAuth{o: o, unavailable: o.Unavailable, outcomes: map[oidc.Outcome]prometheus.Counter{}}
	for _, ch := range o.ClaimToHeaders {
		h := http.CanonicalHeaderKey(ch.Header)
		s.headers = append(s.headers, jwtClaimHeader{path: authjwt.SplitClaimPath(ch.Claim), header: h})
		s.strip = append(s.strip, h)
	}
	if o.ForwardIDTokenHeader != "" {
		s.idHdr = http.CanonicalHeaderKey(o.ForwardIDTokenHeader)
		s.strip = append(s.strip, s.idHdr)
	}
	for _, oc := range []oidc.Outcome{oidc.OutcomeSession, oidc.OutcomeRefreshed, oidc.OutcomeLogin, oidc.OutcomeDenied, oidc.OutcomeCallback,
		oidc.OutcomeBadCallback, oidc.OutcomeLogout, oidc.OutcomeUnavailable} {
		s.outcomes[oc] = env.authCounter("oidc", o.Policy, o.Issuer, string(oc))
	}
	if s.unavailable != "" {
		return s, nil
	}
	var keys oidc.KeyRing
	for _, k := range o.SessionKeys {
		keys = append(keys, []byte(k))
	}
	// The RP (its discovery, keys and claims cache) is kept while its settings are unchanged.
	cfgJSON, _ := json.Marshal(o)
	sum := sha256.New()
	sum.Write(cfgJSON)
	for _, k := range keys {
		sum.Write(k)
	}
	sum.Write([]byte(o.ClientSecret))
	rp, err := keep(env, "oidc/"+hex.EncodeToString(sum.Sum(nil)), func() (*oidc.RP, error) {
		return oidc.New(oidc.Config{Issuer: o.Issuer, AuthorizationEndpoint: o.AuthorizationEndpoint, TokenEndpoint: o.TokenEndpoint,
			EndSessionEndpoint: o.EndSessionEndpoint, ClientID: o.ClientID, ClientSecret: string(o.ClientSecret), Scopes: o.Scopes,
			RedirectURL: o.RedirectURL, LogoutPath: o.LogoutPath, PostLogoutRedirectURL: o.PostLogoutRedirectURL,
			CookieNamePrefix: o.CookieNamePrefix, CookieDomain: o.CookieDomain, CookieSameSite: o.CookieSameSite, CookieSecure: o.CookieSecure,
			AbsoluteTimeout: time.Duration(o.AbsoluteTimeout), RefreshTokens: o.RefreshTokens, UnauthenticatedAction: oidc.Action(o.UnauthenticatedAction),
			HTTPClient: env.httpClient(o.Backend, o.BackendPort, o.ID), AllowHTTP: o.Backend != "", Keys: keys})
	})
	if err != nil {
		s.unavailable = err.Error()
		return s, nil
	}
	watch(env, o.ID, "OIDC provider "+o.Issuer, rp.Health)
	s.rp = rp
	return s, nil
}

func (s *oidcAuth) Serve(x *Exchange) bool {
	h := x.Req.Header
	for _, k := range s.strip {
		delete(h, k)
	}
	if s.unavailable != "" {
		x.Auth = appendDecision(x.Auth, "oidc:unavailable")
		inc(s.outcomes[oidc.OutcomeUnavailable])
		x.Error("authentication is unavailable", http.StatusInternalServerError)
		return true
	}
	if s.o.PassThroughBearer && x.Identity.Provider != "" {
		return false // the jwt block verified the request's bearer token
	}
	res := s.rp.Handle(x.W, x.Req, x.Scheme)
	inc(s.outcomes[res.Outcome])
	x.Auth = appendDecision(x.Auth, "oidc:"+string(res.Outcome))
	if res.Handled {
		return true
	}
	sess := res.Session
	x.Identity.Authenticated = true
	if x.Identity.Claims == nil {
		x.Identity.Provider, x.Identity.Claims = "oidc", sess.Claims
	}
	for _, ch := range s.headers {
		if v, ok := authjwt.LookupClaim(sess.Claims, ch.path); ok {
			if text, ok := authjwt.HeaderValue(v); ok {
				h[ch.header] = []string{text}
			}
		}
	}
	if s.o.ForwardAccessToken && sess.AccessToken != "" {
		h["Authorization"] = []string{"Bearer " + sess.AccessToken}
	}
	if s.idHdr != "" && sess.IDToken != "" {
		h[s.idHdr] = []string{sess.IDToken}
	}
	return false
}
