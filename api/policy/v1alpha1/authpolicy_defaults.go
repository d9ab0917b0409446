package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"
)

// AuthPolicy defaults users can rely on. As for TrafficPolicy, they are filled only inside
// blocks the policy sets, never inside a disabled block, and they are stored.
const (
	DefaultCORSMaxAge = 5 * time.Second

	DefaultBasicAuthRealm = "Restricted"
	DefaultHtpasswdKey    = ".htpasswd"

	DefaultJWTClockSkew     = 60 * time.Second
	DefaultJWKSCacheTime    = 5 * time.Minute
	DefaultJWKSFetchTimeout = 5 * time.Second
	DefaultJWKSKey          = "jwks"
	DefaultJWTHeader        = "Authorization"
	DefaultJWTHeaderPrefix  = "Bearer "

	DefaultOIDCScope             = "openid"
	DefaultClientSecretKey       = "client-secret"
	DefaultOIDCRedirectPath      = "/oauth2/callback"
	DefaultOIDCLogoutPath        = "/logout"
	DefaultPostLogoutRedirectURL = "/"
	DefaultOIDCSessionTimeout    = 24 * time.Hour
	// OIDCCookiePrefix starts the derived session cookie names (OIDCCookieNamePrefix).
	OIDCCookiePrefix = "_apoxy_oidc_"

	DefaultExtAuthTimeout       = 2 * time.Second
	DefaultExtAuthStatusOnError = 403
)

// SetDefaultsAuthPolicy fills the defaults of the blocks an AuthPolicy sets and normalises its
// targetRefs' group, as SetDefaultsTrafficPolicy does. It is idempotent and never changes a
// value the user set, so server-side apply round-trips without diffs.
//
// Left unset on purpose (computed where they are used, so they follow the fields they derive
// from): jwt algorithms (DefaultJWTAlgorithms) and the OIDC cookie name prefix
// (OIDCCookieNamePrefix of issuer and clientID).
func SetDefaultsAuthPolicy(ap *AuthPolicy) {
	s := &ap.Spec
	defaultPolicy(s.TargetRefs, &s.Strategy)
	if b := s.CORS; b != nil && !b.Disabled {
		setDuration(&b.MaxAge, DefaultCORSMaxAge)
	}
	if b := s.BasicAuth; b != nil && !b.Disabled {
		if b.Realm == "" {
			b.Realm = DefaultBasicAuthRealm
		}
		defaultKey(b.UsersRef, DefaultHtpasswdKey)
	}
	if b := s.JWT; b != nil && !b.Disabled {
		setBool(&b.ForwardToken, true)
		for i := range b.Providers {
			defaultJWTProvider(&b.Providers[i])
		}
	}
	if b := s.OIDC; b != nil && !b.Disabled {
		defaultOIDC(b)
	}
	if b := s.Authorization; b != nil && !b.Disabled {
		for i := range b.Rules {
			if m := b.Rules[i].Match; m != nil {
				for j := range m.Paths {
					defaultPathType(&m.Paths[j])
				}
			}
		}
	}
	if b := s.ExtAuth; b != nil && !b.Disabled {
		setDuration(&b.Timeout, DefaultExtAuthTimeout)
		if b.FailureMode == "" {
			b.FailureMode = FailClosed
		}
		setInt32(&b.StatusOnError, DefaultExtAuthStatusOnError)
		if b.IncludeBody != nil {
			setBool(&b.IncludeBody.AllowPartial, false)
		}
	}
}

func defaultJWTProvider(p *JWTProvider) {
	setDuration(&p.ClockSkew, DefaultJWTClockSkew)
	if k := p.JWKS; k != nil {
		if r := k.Remote; r != nil {
			setDuration(&r.CacheDuration, DefaultJWKSCacheTime)
			setDuration(&r.Timeout, DefaultJWKSFetchTimeout)
		}
		if l := k.Local; l != nil {
			defaultKey(l.SecretRef, DefaultJWKSKey)
		}
	}
	// Only an absent extractFrom is defaulted: a set one lists every place on purpose.
	if p.ExtractFrom == nil {
		p.ExtractFrom = &JWTExtractFrom{Headers: []JWTHeaderSource{{Name: DefaultJWTHeader, Prefix: DefaultJWTHeaderPrefix}}}
	}
}

func defaultOIDC(b *OIDC) {
	if !slices.Contains(b.Scopes, DefaultOIDCScope) {
		b.Scopes = append([]string{DefaultOIDCScope}, b.Scopes...)
	}
	defaultKey(b.ClientSecretRef, DefaultClientSecretKey)
	if b.RedirectURL == "" {
		b.RedirectURL = DefaultOIDCRedirectPath
	}
	if b.Logout == nil {
		b.Logout = &OIDCLogout{}
	}
	if b.Logout.Path == "" {
		b.Logout.Path = DefaultOIDCLogoutPath
	}
	if b.Logout.PostLogoutRedirectURL == "" {
		b.Logout.PostLogoutRedirectURL = DefaultPostLogoutRedirectURL
	}
	if b.Cookies == nil {
		b.Cookies = &OIDCCookies{}
	}
	if b.Cookies.SameSite == "" {
		b.Cookies.SameSite = SameSiteLax
	}
	setBool(&b.Cookies.Secure, true)
	if b.Session == nil {
		b.Session = &OIDCSession{}
	}
	setDuration(&b.Session.AbsoluteTimeout, DefaultOIDCSessionTimeout)
	setBool(&b.Session.RefreshTokens, true)
	if b.UnauthenticatedAction == "" {
		b.UnauthenticatedAction = UnauthenticatedAuto
	}
}

// defaultKey sets the key of a Secret reference the user made, when it has none.
func defaultKey(ref *SecretRef, key string) {
	if ref != nil && ref.Key == "" {
		ref.Key = key
	}
}

// OIDCCookieNamePrefix returns the prefix of an OIDC block's session cookies: its
// cookies.namePrefix when set, else "_apoxy_oidc_" and the first 8 hex digits of SHA-256 over
// issuer and clientID. Deriving it from (issuer, clientID), not from the policy, lets one login
// serve every route and policy of the same client (Envoy Gateway keyed it by policy, and users
// hit redirect loops). It is not stored as a default, so it follows issuer and clientID edits.
func OIDCCookieNamePrefix(o *OIDC) string {
	if o.Cookies != nil && o.Cookies.NamePrefix != "" {
		return o.Cookies.NamePrefix
	}
	issuer := ""
	if o.Provider != nil {
		issuer = o.Provider.Issuer
	}
	sum := sha256.Sum256([]byte(issuer + "\x00" + o.ClientID))
	return OIDCCookiePrefix + hex.EncodeToString(sum[:4])
}
