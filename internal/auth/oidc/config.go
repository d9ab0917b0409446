package oidc

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
)

// Defaults of a Config.
const (
	DefaultRedirectPath    = "/oauth2/callback"
	DefaultLogoutPath      = "/logout"
	DefaultAbsoluteTimeout = 24 * time.Hour
	DefaultTimeout         = 5 * time.Second
	// DefaultCookiePrefix starts the default CookieNamePrefix.
	DefaultCookiePrefix = "_apoxy_oidc_"
)

// RefreshMargin is how long before the tokens expire the RP refreshes them, so a request
// never reaches the upstream with an access token about to lapse.
const RefreshMargin = 60 * time.Second

// DefaultTokenLifetime is the lifetime assumed for tokens refreshed without expires_in and
// without a new ID token (nothing says when they expire): short, so they are refreshed soon.
const DefaultTokenLifetime = 5 * time.Minute

// Action is what the RP does with a request that has no valid session.
type Action string

// The UnauthenticatedAction values.
const (
	// ActionAuto redirects a browser navigation (GET or HEAD accepting text/html) to the
	// provider and answers 401 to everything else (XHR, fetch, API clients, POST), which could
	// not follow a login page anyway.
	ActionAuto Action = "Auto"
	// ActionRedirect always redirects to the provider.
	ActionRedirect Action = "Redirect"
	// ActionDeny always answers 401.
	ActionDeny Action = "Deny"
)

// Config is one AuthPolicy oidc block, as the gateway hands it over (ir.OIDCAuth, with the
// client secret and the session keys resolved). Zero values take the documented defaults.
type Config struct {
	// Issuer is the provider's issuer URL (https). It must equal the ID tokens' "iss" and
	// the discovery document's "issuer" exactly.
	Issuer string
	// AuthorizationEndpoint, TokenEndpoint, EndSessionEndpoint and JWKSURI override what
	// discovery (Issuer + "/.well-known/openid-configuration") says. Discovery is skipped
	// only when the authorization, token and JWKS endpoints are all set: the ID token's
	// signature is always verified, so the keys' location must come from somewhere.
	AuthorizationEndpoint string
	TokenEndpoint         string
	EndSessionEndpoint    string
	JWKSURI               string
	// ClientID and ClientSecret are the RP's client credentials. An empty secret makes a
	// public client (PKCE only, client_id in the form).
	ClientID     string
	ClientSecret string
	// Scopes to request; "openid" is added when missing. A provider that returns refresh
	// tokens only for "offline_access" needs it listed here.
	Scopes []string
	// RedirectURL is the callback: a path (resolved against the request's scheme and host,
	// so the callback is on whichever host the login started) or an absolute https URL.
	// Default DefaultRedirectPath.
	RedirectURL string
	// LogoutPath clears the session and ends it at the provider; default DefaultLogoutPath.
	LogoutPath string
	// PostLogoutRedirectURL is where the browser lands after logout: a path on the request's
	// host or an absolute URL. Default "/".
	PostLogoutRedirectURL string
	// CookieNamePrefix names the cookies. Default: DefaultCookiePrefix followed by 8 hex
	// digits of SHA-256(issuer, clientID), so every policy and route of one (issuer, client)
	// shares one login.
	CookieNamePrefix string
	// CookieDomain, when set, shares the cookies with the domain's subdomains; default
	// host-only.
	CookieDomain string
	// CookieSameSite is "Lax" (default), "Strict" or "None" (which needs CookieSecure).
	CookieSameSite string
	// CookieSecure marks the cookies Secure.
	CookieSecure bool
	// AbsoluteTimeout bounds a session from the login, refreshes or not; default 24h.
	AbsoluteTimeout time.Duration
	// RefreshTokens uses the provider's refresh token (when it returns one) before the tokens
	// expire; without it the user logs in again when they do.
	RefreshTokens bool
	// UnauthenticatedAction: "" means ActionAuto.
	UnauthenticatedAction Action
	// HTTPClient talks to the provider (discovery, JWKS, token endpoint); the caller injects
	// one that dials through the policy's Backend. nil means a plain client.
	HTTPClient *http.Client
	// AllowHTTP accepts http provider URLs (for a provider reached through a Backend that
	// adds TLS, or tests); otherwise only https, and http on loopback.
	AllowHTTP bool
	// Timeout bounds each call to the provider; default DefaultTimeout.
	Timeout time.Duration
	// Algorithms the ID token may be signed with; empty means jwt.DefaultAlgorithms().
	Algorithms []string
	// ClockSkew is the leeway for the ID token's exp, nbf and iat; 0 means the jwt package's
	// default.
	ClockSkew time.Duration
	// Keys seal the cookies (see KeyRing). Required.
	Keys KeyRing
	// Errors writes the error responses the RP makes (400, 401, 5xx); nil means http.Error.
	// The gateway passes its own, gRPC-aware, writer.
	Errors func(w http.ResponseWriter, msg string, code int)
	// Log receives why logins, callbacks and refreshes failed (never tokens); the zero
	// Logger discards.
	Log logr.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultCookieNamePrefix is the prefix an (issuer, client) pair's cookies get when the
// Config names none.
func DefaultCookieNamePrefix(issuer, clientID string) string {
	sum := sha256.Sum256([]byte(issuer + "\x00" + clientID))
	return DefaultCookiePrefix + hex.EncodeToString(sum[:4])
}

// checked is a Config with its defaults applied and its URLs parsed.
type checked struct {
	Config
	callbackPath string
	callbackURL  *url.URL // nil when RedirectURL is a path
	sameSite     http.SameSite
	scopes       string // space-separated
}

func checkConfig(c Config) (*checked, error) {
	ck := &checked{Config: c}
	if err := checkEndpoint(c.Issuer, c.AllowHTTP); err != nil {
		return nil, fmt.Errorf("oidc: issuer: %w", err)
	}
	for _, e := range []struct{ name, v string }{
		{"authorizationEndpoint", c.AuthorizationEndpoint},
		{"tokenEndpoint", c.TokenEndpoint},
		{"endSessionEndpoint", c.EndSessionEndpoint},
		{"jwksURI", c.JWKSURI},
	} {
		if e.v != "" {
			if err := checkEndpoint(e.v, c.AllowHTTP); err != nil {
				return nil, fmt.Errorf("oidc: %s: %w", e.name, err)
			}
		}
	}
	if c.ClientID == "" {
		return nil, errors.New("oidc: no client ID")
	}

	scopes := []string{"openid"}
	for _, s := range c.Scopes {
		if s == "" || !scopeToken(s) {
			return nil, fmt.Errorf("oidc: scope %.64q is not a scope token", s)
		}
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	ck.scopes = strings.Join(scopes, " ")

	if ck.RedirectURL == "" {
		ck.RedirectURL = DefaultRedirectPath
	}
	if strings.HasPrefix(ck.RedirectURL, "/") {
		if !cleanPath(ck.RedirectURL) {
			return nil, fmt.Errorf("oidc: redirectURL %.200q is not a clean absolute path", ck.RedirectURL)
		}
		ck.callbackPath = ck.RedirectURL
	} else {
		u, err := url.Parse(ck.RedirectURL)
		if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" ||
			!(u.Scheme == "https" || u.Scheme == "http" && (c.AllowHTTP || isLoopback(u.Hostname()))) {
			return nil, fmt.Errorf("oidc: redirectURL %.200q is neither a path nor an https URL", ck.RedirectURL)
		}
		if u.Path == "" {
			u.Path = "/"
		}
		if !cleanPath(u.Path) || u.RawPath != "" {
			return nil, fmt.Errorf("oidc: redirectURL %.200q has an unclean path", ck.RedirectURL)
		}
		ck.callbackURL, ck.callbackPath = u, u.Path
	}
	if ck.LogoutPath == "" {
		ck.LogoutPath = DefaultLogoutPath
	}
	if !cleanPath(ck.LogoutPath) {
		return nil, fmt.Errorf("oidc: logout path %.200q is not a clean absolute path", ck.LogoutPath)
	}
	if ck.callbackPath == "/" || ck.LogoutPath == "/" {
		return nil, errors.New("oidc: the callback and logout paths cannot be \"/\"")
	}
	if ck.LogoutPath == ck.callbackPath {
		return nil, errors.New("oidc: the logout path is the callback path")
	}
	if ck.PostLogoutRedirectURL == "" {
		ck.PostLogoutRedirectURL = "/"
	}
	if p := ck.PostLogoutRedirectURL; strings.HasPrefix(p, "/") {
		if safeReturnPath(p) != p {
			return nil, fmt.Errorf("oidc: postLogoutRedirectURL %.200q is not a safe path", p)
		}
	} else if u, err := url.Parse(p); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("oidc: postLogoutRedirectURL %.200q is neither a path nor an http(s) URL", p)
	}

	if ck.CookieNamePrefix == "" {
		ck.CookieNamePrefix = DefaultCookieNamePrefix(c.Issuer, c.ClientID)
	}
	if len(ck.CookieNamePrefix) > 64 || !cookieNameToken(ck.CookieNamePrefix) {
		return nil, fmt.Errorf("oidc: cookie name prefix %.80q is not a cookie name of at most 64 characters", ck.CookieNamePrefix)
	}
	ck.CookieDomain = strings.TrimPrefix(ck.CookieDomain, ".")
	// Browsers keep a "__Host-" cookie only when it is Secure, host-only and for Path=/;
	// a "__Secure-" one only when Secure.
	if strings.HasPrefix(ck.CookieNamePrefix, "__Host-") && (!ck.CookieSecure || ck.CookieDomain != "") {
		return nil, errors.New("oidc: a __Host- cookie prefix needs secure, host-only cookies")
	}
	if strings.HasPrefix(ck.CookieNamePrefix, "__Secure-") && !ck.CookieSecure {
		return nil, errors.New("oidc: a __Secure- cookie prefix needs secure cookies")
	}
	if d := ck.CookieDomain; d != "" && !domainName(d) {
		return nil, fmt.Errorf("oidc: cookie domain %.80q is not a domain name", d)
	}
	switch strings.ToLower(ck.CookieSameSite) {
	case "", "lax":
		ck.sameSite = http.SameSiteLaxMode
	case "strict":
		ck.sameSite = http.SameSiteStrictMode
	case "none":
		if !ck.CookieSecure {
			return nil, errors.New("oidc: SameSite=None needs secure cookies")
		}
		ck.sameSite = http.SameSiteNoneMode
	default:
		return nil, fmt.Errorf("oidc: cookie SameSite %.20q is not Lax, Strict or None", ck.CookieSameSite)
	}

	switch {
	case ck.AbsoluteTimeout == 0:
		ck.AbsoluteTimeout = DefaultAbsoluteTimeout
	case ck.AbsoluteTimeout < time.Minute:
		return nil, fmt.Errorf("oidc: absoluteTimeout %s is under a minute", ck.AbsoluteTimeout)
	}
	switch ck.UnauthenticatedAction {
	case "":
		ck.UnauthenticatedAction = ActionAuto
	case ActionAuto, ActionRedirect, ActionDeny:
	default:
		return nil, fmt.Errorf("oidc: unauthenticatedAction %.20q is not Auto, Redirect or Deny", ck.UnauthenticatedAction)
	}
	switch {
	case ck.Timeout == 0:
		ck.Timeout = DefaultTimeout
	case ck.Timeout < 0:
		return nil, errors.New("oidc: negative timeout")
	}
	if ck.HTTPClient == nil {
		ck.HTTPClient = &http.Client{Timeout: ck.Timeout}
	}
	if ck.Now == nil {
		ck.Now = time.Now
	}
	if ck.Errors == nil {
		ck.Errors = http.Error
	}
	return ck, nil
}

// scopeToken reports whether s is an RFC 6749 §3.3 scope-token.
func scopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

// cookieNameToken reports whether s is an RFC 6265 cookie-name (an RFC 7230 token).
func cookieNameToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// domainName reports whether s is a plausible DNS name for a cookie's Domain.
func domainName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// cleanPath reports whether p is an absolute path without dot segments, empty segments,
// query, fragment or characters a request path would escape.
func cleanPath(p string) bool {
	if !strings.HasPrefix(p, "/") || safeReturnPath(p) != p || strings.ContainsAny(p, "?%") {
		return false
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return p == "/" || !strings.Contains(p, "//")
}
