package v1alpha1

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Limits of an AuthPolicy, checked at admission.
const (
	MaxCORSOrigins        = 64
	MaxCORSMethods        = 16
	MaxCORSHeaders        = 64 // allowHeaders and exposeHeaders each
	MaxCORSMaxAge         = 24 * time.Hour
	MaxJWTProviders       = 8
	MaxAudiences          = 8
	MaxClaimToHeaders     = 16
	MaxTokenSources       = 8 // each list of jwt extractFrom
	MinJWKSCacheDuration  = 30 * time.Second
	MaxClockSkew          = 5 * time.Minute
	MaxOIDCScopes         = 16
	MaxAuthorizationRules = 64
	MaxAuthorizationUsers = 64
	MaxAuthzPaths         = 16
	MaxScopes             = 16 // authorization jwt.scopes
	MaxExtAuthHeaders     = 64 // headersToAuthz, headersToUpstream and headersToClient each
	MaxContextExtensions  = 16
	MaxExtAuthBodyBytes   = 1048576
)

var (
	authzPathTypes  = []string{string(PathMatchExact), string(PathMatchPathPrefix)}
	authzActions    = []string{string(AuthorizationAllow), string(AuthorizationDeny)}
	unauthActions   = []string{string(UnauthenticatedAuto), string(UnauthenticatedRedirect), string(UnauthenticatedDeny)}
	hmacAlgorithms  = []JWTAlgorithm{JWTAlgorithmHS256, JWTAlgorithmHS384, JWTAlgorithmHS512}
	jwtAlgorithms   = algorithmNames(append(slices.Clone(DefaultJWTAlgorithms), hmacAlgorithms...))
	originScheme    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)
	originHostLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

func algorithmNames(algs []JWTAlgorithm) []string {
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return out
}

// ValidateAuthPolicy checks an AuthPolicy's spec (defaults applied) and returns every problem,
// each naming its field and how to fix it. Checks that need other objects (targets, Secrets,
// Backends, the listener's protocol for oidc.cookies.secure: false, a jwt matcher with no jwt or
// oidc in effect) are reported in status by the translator instead.
func ValidateAuthPolicy(ap *AuthPolicy) field.ErrorList {
	v := &validator{}
	s := &ap.Spec
	spec := field.NewPath("spec")
	v.policy(spec, s.TargetRefs, s.Strategy, s)
	if b := s.CORS; b != nil && v.enabled(spec.Child("cors"), b.Disabled, b) {
		v.cors(spec.Child("cors"), b)
	}
	if b := s.BasicAuth; b != nil && v.enabled(spec.Child("basicAuth"), b.Disabled, b) {
		v.basicAuth(spec.Child("basicAuth"), b)
	}
	// Whether this policy verifies JWTs, and with which providers, for the other blocks' checks.
	hasJWT, providers := false, []string(nil)
	if b := s.JWT; b != nil && v.enabled(spec.Child("jwt"), b.Disabled, b) {
		v.jwt(spec.Child("jwt"), b)
		hasJWT = true
		for _, p := range b.Providers {
			providers = append(providers, p.Name)
		}
	}
	if b := s.OIDC; b != nil && v.enabled(spec.Child("oidc"), b.Disabled, b) {
		v.oidc(spec.Child("oidc"), b, hasJWT)
	}
	if b := s.Authorization; b != nil && v.enabled(spec.Child("authorization"), b.Disabled, b) {
		v.authorization(spec.Child("authorization"), b, providers)
	}
	if b := s.ExtAuth; b != nil && v.enabled(spec.Child("extAuth"), b.Disabled, b) {
		v.extAuth(spec.Child("extAuth"), b)
	}
	return v.errs
}

// ---- cors ----

func (v *validator) cors(p *field.Path, b *CORS) {
	op := p.Child("allowOrigins")
	v.listSize(op, len(b.AllowOrigins), MaxCORSOrigins, `list 1 to 64 origins such as https://app.example.com ("*" alone allows every origin)`)
	seen := map[string]bool{}
	for i, o := range b.AllowOrigins {
		ip := op.Index(i)
		switch {
		case o == "*" && len(b.AllowOrigins) > 1:
			v.add(field.Invalid(ip, o, `"*" allows every origin, so it must be the only entry: remove it, or the other origins`))
		case o != "*":
			if msg := originError(o); msg != "" {
				v.add(field.Invalid(ip, o, msg))
			}
		}
		if key := strings.ToLower(o); seen[key] {
			v.add(field.Duplicate(ip, o))
		} else {
			seen[key] = true
		}
	}
	v.tokensOrWildcard(p.Child("allowMethods"), b.AllowMethods, MaxCORSMethods, false, "an HTTP method such as GET")
	v.tokensOrWildcard(p.Child("allowHeaders"), b.AllowHeaders, MaxCORSHeaders, true, "an HTTP header name such as content-type")
	v.tokensOrWildcard(p.Child("exposeHeaders"), b.ExposeHeaders, MaxCORSHeaders, true, "an HTTP header name such as x-request-id")
	if d, ok := v.duration(p.Child("maxAge"), b.MaxAge); ok && d > MaxCORSMaxAge {
		v.add(field.Invalid(p.Child("maxAge"), *b.MaxAge, "must be at most 24h (browsers cap it lower anyway)"))
	}
}

// originError says what is wrong with a CORS origin other than "*", or returns "". An origin
// is scheme://host[:port], without path, query or user info; the host's leftmost label may be
// "*" (it matches one or more labels).
func originError(o string) string {
	const form = `must be scheme://host[:port] such as https://app.example.com, with an optional leftmost "*" label (https://*.example.com)`
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || !originScheme.MatchString(scheme) || rest == "" {
		return form
	}
	if strings.ContainsAny(rest, "/?#@") {
		return "must not have a path, query or user info: remove everything after the host and port, a trailing / included"
	}
	host, port, hasPort := rest, "", false
	if strings.HasPrefix(rest, "[") { // an IPv6 literal
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return form
		}
		if a, err := netip.ParseAddr(rest[1:end]); err != nil || !a.Is6() || a.Zone() != "" {
			return "must have a valid IPv6 address between [ and ]"
		}
		host = ""
		if after := rest[end+1:]; after != "" {
			if after[0] != ':' {
				return form
			}
			port, hasPort = after[1:], true
		}
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host, port, hasPort = rest[:i], rest[i+1:], true
	}
	if hasPort {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strings.Trim(port, "0123456789") != "" {
			return "must have a port between 1 and 65535 after the ':'"
		}
	}
	if strings.HasPrefix(rest, "[") {
		return ""
	}
	if host == "" || len(host) > 253 {
		return form
	}
	labels := strings.Split(host, ".")
	for i, l := range labels {
		switch {
		case l == "*" && i > 0:
			return `may have "*" only as the leftmost label of the host (https://*.example.com)`
		case l == "*" && len(labels) < 2:
			return `must name a domain after "*." (https://*.example.com); "*" alone, without a scheme, allows every origin`
		case l != "*" && !originHostLabel.MatchString(l):
			return "must have a host of DNS labels (letters, digits and '-', 1 to 63 characters each) or an IP address"
		}
	}
	return ""
}

// tokensOrWildcard checks a CORS list of HTTP tokens (methods or header names): at most max,
// none twice, each a token, or the single entry "*". fold compares entries case-insensitively
// (header names); methods compare exactly.
func (v *validator) tokensOrWildcard(p *field.Path, list []string, max int, fold bool, what string) {
	v.tooMany(p, len(list), max)
	seen := map[string]bool{}
	for i, s := range list {
		ip := p.Index(i)
		switch {
		case s == "*" && len(list) > 1:
			v.add(field.Invalid(ip, s, `"*" allows everything, so it must be the only entry: remove it, or the other entries`))
		case s != "*" && !validHeaderName(s):
			v.add(field.Invalid(ip, s, "must be "+what+`, or the single entry "*"`))
		}
		key := s
		if fold {
			key = strings.ToLower(s)
		}
		if seen[key] {
			v.add(field.Duplicate(ip, s))
		}
		seen[key] = true
	}
}

// ---- basicAuth ----

func (v *validator) basicAuth(p *field.Path, b *BasicAuth) {
	v.secretRef(p.Child("usersRef"), b.UsersRef, "name the Secret holding the htpasswd file, e.g. usersRef: {name: admin-users}")
	if len(b.Realm) > 256 || strings.ContainsFunc(b.Realm, func(r rune) bool { return r < 0x20 || r > 0x7e || r == '"' || r == '\\' }) {
		v.add(field.Invalid(p.Child("realm"), b.Realm, `must be at most 256 printable ASCII characters without " or \ (it is sent as WWW-Authenticate: Basic realm="...")`))
	}
	if b.ForwardUsernameHeader != "" {
		v.ownedHeader(p.Child("forwardUsernameHeader"), b.ForwardUsernameHeader)
	}
}

// ---- jwt ----

func (v *validator) jwt(p *field.Path, b *JWT) {
	pp := p.Child("providers")
	v.listSize(pp, len(b.Providers), MaxJWTProviders, "list 1 to 8 providers, each {name, issuer, jwks} (to turn inherited JWT checks off, set disabled: true instead)")
	names, issuers := map[string]bool{}, map[string]bool{}
	for i := range b.Providers {
		v.jwtProvider(pp.Index(i), &b.Providers[i], names, issuers)
	}
}

func (v *validator) jwtProvider(p *field.Path, pr *JWTProvider, names, issuers map[string]bool) {
	v.uniqueName(p.Child("name"), pr.Name, names, "name the provider (a DNS label such as auth0); authorization rules refer to it")
	switch ip := p.Child("issuer"); {
	case pr.Issuer == "":
		v.add(field.Required(ip, `set the issuer exactly as the tokens' "iss" claim has it, e.g. https://example.eu.auth0.com/`))
	case issuers[pr.Issuer]:
		v.add(field.Invalid(ip, pr.Issuer, "another provider has this issuer: the token's \"iss\" selects the provider, so list each issuer once (one provider may hold several audiences)"))
	default:
		issuers[pr.Issuer] = true
	}
	v.tooMany(p.Child("audiences"), len(pr.Audiences), MaxAudiences)
	for i, a := range pr.Audiences {
		if a == "" {
			v.add(field.Required(p.Child("audiences").Index(i), "set an audience the tokens' \"aud\" claim must hold, or remove the entry"))
		}
	}
	v.jwks(p.Child("jwks"), pr.JWKS)
	if e := pr.ExtractFrom; e != nil {
		v.tokenSources(p.Child("extractFrom"), e)
	}
	v.claimToHeaders(p.Child("claimToHeaders"), pr.ClaimToHeaders)
	if d, ok := v.duration(p.Child("clockSkew"), pr.ClockSkew); ok && d > MaxClockSkew {
		v.add(field.Invalid(p.Child("clockSkew"), *pr.ClockSkew, "must be at most 5m (a longer leeway keeps expired tokens valid)"))
	}
	hmacNeedsLocal := pr.JWKS != nil && pr.JWKS.Local == nil
	seen := map[JWTAlgorithm]bool{}
	for i, a := range pr.Algorithms {
		ap := p.Child("algorithms").Index(i)
		switch {
		case strings.EqualFold(string(a), "none"):
			v.add(field.Invalid(ap, a, `"none" (unsigned tokens) is never accepted: remove it`))
		case !slices.Contains(jwtAlgorithms, string(a)):
			v.add(field.NotSupported(ap, a, jwtAlgorithms))
		case hmacNeedsLocal && slices.Contains(hmacAlgorithms, a):
			v.add(field.Invalid(ap, a, string(a)+" verifies with a shared secret, which a remote key set would publish: use jwks.local, or an asymmetric algorithm such as RS256"))
		}
		if seen[a] {
			v.add(field.Duplicate(ap, a))
		}
		seen[a] = true
	}
}

func (v *validator) jwks(p *field.Path, k *JWKS) {
	switch {
	case k == nil || k.Remote == nil && k.Local == nil:
		v.add(field.Required(p, "set remote: {uri: https://...} (the issuer's key set URL) or local: {secretRef: {name: SECRET}}"))
		return
	case k.Remote != nil && k.Local != nil:
		v.add(field.Forbidden(p.Child("local"), "set remote or local, not both"))
	}
	if r := k.Remote; r != nil {
		rp := p.Child("remote")
		v.backendRef(rp.Child("backendRef"), r.BackendRef, false)
		v.fetchURL(rp.Child("uri"), r.URI, r.BackendRef != nil)
		if d, ok := v.duration(rp.Child("cacheDuration"), r.CacheDuration); ok && d < MinJWKSCacheDuration {
			v.add(field.Invalid(rp.Child("cacheDuration"), *r.CacheDuration, "must be at least 30s (a shorter cache refetches the key set for nearly every token)"))
		}
		v.positive(rp.Child("timeout"), r.Timeout)
	}
	if l := k.Local; l != nil {
		v.secretRef(p.Child("local", "secretRef"), l.SecretRef, "name the Secret holding the key set, e.g. secretRef: {name: jwks}")
	}
}

func (v *validator) tokenSources(p *field.Path, e *JWTExtractFrom) {
	if len(e.Headers) == 0 && len(e.Cookies) == 0 && len(e.QueryParams) == 0 {
		v.add(field.Required(p, `set headers, cookies or queryParams, or remove extractFrom for the default (header Authorization, prefix "Bearer ")`))
	}
	v.tooMany(p.Child("headers"), len(e.Headers), MaxTokenSources)
	for i, h := range e.Headers {
		v.headerName(p.Child("headers").Index(i).Child("name"), h.Name)
	}
	v.tooMany(p.Child("cookies"), len(e.Cookies), MaxTokenSources)
	for i, c := range e.Cookies {
		if !validHeaderName(c) {
			v.add(field.Invalid(p.Child("cookies").Index(i), c, "must be a cookie name (letters, digits and !#$%&'*+-.^_`|~)"))
		}
	}
	v.tooMany(p.Child("queryParams"), len(e.QueryParams), MaxTokenSources)
	for i, q := range e.QueryParams {
		if q == "" {
			v.add(field.Required(p.Child("queryParams").Index(i), "name the query parameter, e.g. access_token"))
		}
	}
}

// claimToHeaders checks claim-to-header copies: at most 16, each a claim path and a header the
// gateway may set, no header twice.
func (v *validator) claimToHeaders(p *field.Path, list []ClaimToHeader) {
	v.tooMany(p, len(list), MaxClaimToHeaders)
	seen := map[string]bool{}
	for i, c := range list {
		ip := p.Index(i)
		v.claimPath(ip.Child("claim"), c.Claim)
		v.ownedHeader(ip.Child("header"), c.Header)
		if key := strings.ToLower(c.Header); c.Header != "" && seen[key] {
			v.add(field.Invalid(ip.Child("header"), c.Header, "another claim already sets this header: use one header per claim"))
		} else {
			seen[key] = true
		}
	}
}

// fetchURL checks a URL the gateway itself calls (a key set, an OpenID provider): absolute,
// https; plain http only for a loopback host or, when viaBackend, through a Backend (whose
// own protocol then says whether TLS is used).
func (v *validator) fetchURL(p *field.Path, raw string, viaBackend bool) {
	if raw == "" {
		v.add(field.Required(p, "set an https URL, e.g. https://example.eu.auth0.com/.well-known/jwks.json"))
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || u.Hostname() == "":
		v.add(field.Invalid(p, raw, "must be an absolute https URL with a host and no user info or fragment, e.g. https://idp.example.com/keys"))
	case u.Scheme == "https":
	case u.Scheme == "http" && (loopbackHost(u.Hostname()) || viaBackend):
	case u.Scheme == "http" && !viaBackend:
		v.add(field.Invalid(p, raw, "must use https (http is allowed only for a loopback host such as localhost or 127.0.0.1)"))
	default:
		v.add(field.Invalid(p, raw, "must be an https URL"))
	}
}

// loopbackHost reports whether a URL's host is this machine: localhost (or a name under it) or
// a loopback address.
func loopbackHost(h string) bool {
	h = strings.ToLower(h)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

// ---- oidc ----

func (v *validator) oidc(p *field.Path, b *OIDC, hasJWT bool) {
	if pr := b.Provider; pr == nil {
		v.add(field.Required(p.Child("provider"), "set provider: {issuer: https://...}, the OpenID provider's issuer URL"))
	} else {
		pp := p.Child("provider")
		v.issuerURL(pp.Child("issuer"), pr.Issuer, true)
		v.issuerURL(pp.Child("authorizationEndpoint"), pr.AuthorizationEndpoint, false)
		v.issuerURL(pp.Child("tokenEndpoint"), pr.TokenEndpoint, false)
		v.issuerURL(pp.Child("endSessionEndpoint"), pr.EndSessionEndpoint, false)
		v.backendRef(pp.Child("backendRef"), pr.BackendRef, false)
	}
	switch {
	case b.ClientID == "":
		v.add(field.Required(p.Child("clientID"), "set the client ID registered with the provider"))
	case strings.ContainsFunc(b.ClientID, func(r rune) bool { return r < 0x20 || r > 0x7e }):
		v.add(field.Invalid(p.Child("clientID"), b.ClientID, "must be printable ASCII (RFC 6749 client_id)"))
	}
	v.secretRef(p.Child("clientSecretRef"), b.ClientSecretRef, "name the Secret holding the client secret, e.g. clientSecretRef: {name: dashboard-oidc} (key client-secret)")
	v.scopes(p.Child("scopes"), b.Scopes, MaxOIDCScopes)
	redirectPath := ""
	if b.RedirectURL != "" {
		redirectPath = v.redirectTarget(p.Child("redirectURL"), b.RedirectURL)
	}
	if l := b.Logout; l != nil {
		lp := p.Child("logout")
		switch {
		case l.Path == "":
		case !servedPath(l.Path):
			v.add(field.Invalid(lp.Child("path"), l.Path, "must be a path the gateway serves, such as /logout (one leading /, no query, fragment, spaces or backslashes)"))
		case l.Path == redirectPath:
			v.add(field.Invalid(lp.Child("path"), l.Path, "is also the redirectURL's path: logout and the login callback need different paths"))
		}
		if l.PostLogoutRedirectURL != "" {
			v.redirectTarget(lp.Child("postLogoutRedirectURL"), l.PostLogoutRedirectURL)
		}
	}
	if c := b.Cookies; c != nil {
		cp := p.Child("cookies")
		if c.NamePrefix != "" && (!validHeaderName(c.NamePrefix) || len(c.NamePrefix) > 64) {
			v.add(field.Invalid(cp.Child("namePrefix"), c.NamePrefix, "must be a cookie-name token of at most 64 characters (letters, digits and !#$%&'*+-.^_`|~), e.g. _myapp_"))
		}
		if c.Domain != "" {
			for _, msg := range validation.IsDNS1123Subdomain(strings.TrimPrefix(c.Domain, ".")) {
				v.add(field.Invalid(cp.Child("domain"), c.Domain, msg))
			}
		}
		v.enum(cp.Child("sameSite"), string(c.SameSite), sameSites)
		if c.SameSite == SameSiteNone && c.Secure != nil && !*c.Secure {
			v.add(field.Invalid(cp.Child("sameSite"), c.SameSite, "browsers refuse SameSite=None without Secure: set secure: true, or use Lax"))
		}
	}
	if s := b.Session; s != nil {
		v.positive(p.Child("session", "absoluteTimeout"), s.AbsoluteTimeout)
	}
	if f := b.ForwardIDToken; f != nil && f.Header != "" {
		v.ownedHeader(p.Child("forwardIDToken", "header"), f.Header)
	}
	v.claimToHeaders(p.Child("claimToHeaders"), b.ClaimToHeaders)
	if b.PassThroughBearer && !hasJWT {
		v.add(field.Invalid(p.Child("passThroughBearer"), true, "needs a jwt block in this policy to verify the bearer token: add jwt, or remove passThroughBearer"))
	}
	v.enum(p.Child("unauthenticatedAction"), string(b.UnauthenticatedAction), unauthActions)
}

// issuerURL checks an OpenID provider URL: https (http only for a loopback host); required
// says whether an empty value is an error.
func (v *validator) issuerURL(p *field.Path, raw string, required bool) {
	if raw == "" && !required {
		return
	}
	if raw == "" {
		v.add(field.Required(p, "set the provider's issuer URL, e.g. https://accounts.google.com"))
		return
	}
	v.fetchURL(p, raw, false)
}

// redirectTarget checks a URL the gateway sends browsers to: a "/"-rooted path on the request's
// own host, or an absolute https URL. It returns the URL's path ("" when invalid).
func (v *validator) redirectTarget(p *field.Path, raw string) string {
	const form = "must be a path starting with / (such as /oauth2/callback) or an absolute https URL"
	u, err := url.Parse(raw)
	switch {
	case err != nil || strings.ContainsFunc(raw, unsafeInPath) || strings.Contains(raw, "#"):
		v.add(field.Invalid(p, raw, form+", without spaces, control characters, backslashes or a fragment"))
	case strings.HasPrefix(raw, "//"):
		v.add(field.Invalid(p, raw, `must not start with "//" (that leaves the site): use a single "/", or a full https URL`))
	case strings.HasPrefix(raw, "/"):
		return u.Path
	case u.Scheme != "https" || u.Host == "" || u.User != nil:
		v.add(field.Invalid(p, raw, form))
	default:
		return u.Path
	}
	return ""
}

// unsafeInPath reports the characters a path or URL the gateway serves or redirects to must
// not hold: spaces, controls and backslashes (browsers read "\" as "/").
func unsafeInPath(r rune) bool { return r <= 0x20 || r == 0x7f || r == '\\' }

// servedPath reports whether s is a path the gateway can serve itself: one leading "/", no
// query or fragment, nothing unsafeInPath.
func servedPath(s string) bool {
	return strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") && !strings.ContainsAny(s, "?#") && !strings.ContainsFunc(s, unsafeInPath)
}

// scopeToken matches an OAuth 2.0 scope token (RFC 6749 §3.3): printable ASCII except space,
// '"' and '\'.
var scopeToken = regexp.MustCompile(`^[\x21\x23-\x5b\x5d-\x7e]+$`)

// scopes checks a list of OAuth 2.0 scopes: at most max, each a scope token, none twice.
func (v *validator) scopes(p *field.Path, scopes []string, max int) {
	v.tooMany(p, len(scopes), max)
	seen := map[string]bool{}
	for i, s := range scopes {
		if !scopeToken.MatchString(s) {
			v.add(field.Invalid(p.Index(i), s, `must be a scope such as email or admin:write (printable ASCII without spaces, " or \)`))
		}
		if seen[s] {
			v.add(field.Duplicate(p.Index(i), s))
		}
		seen[s] = true
	}
}

// ---- authorization ----

// authorization checks the authorization block; providers are the policy's own jwt providers
// (nil without a jwt block: a jwt matcher's provider may then come from an inherited one).
func (v *validator) authorization(p *field.Path, b *Authorization, providers []string) {
	if b.DefaultAction == "" {
		v.add(field.Required(p.Child("defaultAction"), "set defaultAction: Allow or Deny (what a request no rule matches gets; there is no implicit deny)"))
	} else {
		v.enum(p.Child("defaultAction"), string(b.DefaultAction), authzActions)
	}
	rp := p.Child("rules")
	v.listSize(rp, len(b.Rules), MaxAuthorizationRules, "list 1 to 64 rules, each {name, action, match} (to turn inherited rules off, set disabled: true instead)")
	names := map[string]bool{}
	for i := range b.Rules {
		r, ip := &b.Rules[i], rp.Index(i)
		v.uniqueName(ip.Child("name"), r.Name, names, "name the rule (a DNS label such as admins)")
		if r.Action == "" {
			v.add(field.Required(ip.Child("action"), "set action: Allow or Deny"))
		} else {
			v.enum(ip.Child("action"), string(r.Action), authzActions)
		}
		v.authzMatch(ip.Child("match"), r.Match, providers)
	}
}

func (v *validator) authzMatch(p *field.Path, m *AuthorizationMatch, providers []string) {
	if m == nil || m.Authenticated == nil && len(m.Methods) == 0 && len(m.Paths) == 0 && len(m.ClientCIDRs) == 0 &&
		len(m.Headers) == 0 && len(m.Users) == 0 && m.JWT == nil {
		v.add(field.Required(p, "set what the rule matches (authenticated, methods, paths, clientCIDRs, headers, users or jwt); for every request use defaultAction"))
		return
	}
	v.methods(p.Child("methods"), m.Methods)
	v.tooMany(p.Child("paths"), len(m.Paths), MaxAuthzPaths)
	for i := range m.Paths {
		v.path(p.Child("paths").Index(i), &m.Paths[i], authzPathTypes)
	}
	v.cidrs(p.Child("clientCIDRs"), m.ClientCIDRs)
	v.tooMany(p.Child("headers"), len(m.Headers), MaxMatchValues)
	for i, h := range m.Headers {
		hp := p.Child("headers").Index(i)
		v.headerName(hp.Child("name"), h.Name)
		v.listSize(hp.Child("values"), len(h.Values), MaxMatchValues, "list the header values that match")
	}
	v.tooMany(p.Child("users"), len(m.Users), MaxAuthorizationUsers)
	seen := map[string]bool{}
	for i, u := range m.Users {
		up := p.Child("users").Index(i)
		switch {
		case u == "":
			v.add(field.Required(up, "set a basicAuth user name, or remove the entry"))
		case strings.ContainsFunc(u, func(r rune) bool { return r == ':' || r < 0x20 || r == 0x7f }):
			v.add(field.Invalid(up, u, `must be a user name without ":" or control characters (RFC 7617)`))
		case seen[u]:
			v.add(field.Duplicate(up, u))
		}
		seen[u] = true
	}
	if j := m.JWT; j != nil {
		jp := p.Child("jwt")
		if j.Provider == "" && len(j.Claims) == 0 && len(j.Scopes) == 0 {
			v.add(field.Required(jp, "set provider, claims or scopes (to match any authenticated request use authenticated: true)"))
		}
		if j.Provider != "" {
			for _, msg := range validation.IsDNS1123Label(j.Provider) {
				v.add(field.Invalid(jp.Child("provider"), j.Provider, msg))
			}
			if len(providers) > 0 && !slices.Contains(providers, j.Provider) {
				v.add(field.Invalid(jp.Child("provider"), j.Provider, fmt.Sprintf("names no provider of this policy's jwt block: use one of %s", strings.Join(providers, ", "))))
			}
		}
		v.claimMatches(jp.Child("claims"), j.Claims)
		v.scopes(jp.Child("scopes"), j.Scopes, MaxScopes)
	}
}

// ---- extAuth ----

func (v *validator) extAuth(p *field.Path, b *ExtAuth) {
	switch {
	case b.GRPC == nil && b.HTTP == nil:
		v.add(field.Required(p, "set grpc: {backendRef: {group: core.apoxy.dev, kind: Backend, name: NAME, port: PORT}} or http: {backendRef: ...}"))
	case b.GRPC != nil && b.HTTP != nil:
		v.add(field.Forbidden(p.Child("http"), "set grpc or http, not both"))
	}
	if g := b.GRPC; g != nil {
		gp := p.Child("grpc")
		v.backendRef(gp.Child("backendRef"), g.BackendRef, true)
		cp := gp.Child("contextExtensions")
		v.tooMany(cp, len(g.ContextExtensions), MaxContextExtensions)
		if _, ok := g.ContextExtensions[""]; ok {
			v.add(field.Invalid(cp.Key(""), "", "keys must not be empty"))
		}
	}
	if h := b.HTTP; h != nil {
		hp := p.Child("http")
		v.backendRef(hp.Child("backendRef"), h.BackendRef, true)
		if pp := h.PathPrefix; pp != "" && !servedPath(pp) {
			v.add(field.Invalid(hp.Child("pathPrefix"), pp, "must be empty or a path such as /authz (one leading /, no query, fragment, spaces or backslashes)"))
		}
		if b.IncludeRouteMetadata {
			v.add(field.Forbidden(p.Child("includeRouteMetadata"), "route metadata is sent in gRPC checks only: remove includeRouteMetadata, or use grpc"))
		}
	}
	v.ownedHeaders(p.Child("headersToAuthz"), b.HeadersToAuthz, MaxExtAuthHeaders)
	v.ownedHeaders(p.Child("headersToUpstream"), b.HeadersToUpstream, MaxExtAuthHeaders)
	v.ownedHeaders(p.Child("headersToClient"), b.HeadersToClient, MaxExtAuthHeaders)
	if body := b.IncludeBody; body != nil {
		v.between(p.Child("includeBody", "maxBytes"), &body.MaxBytes, 1, MaxExtAuthBodyBytes)
	}
	v.positive(p.Child("timeout"), b.Timeout)
	v.enum(p.Child("failureMode"), string(b.FailureMode), failureModes)
	v.between(p.Child("statusOnError"), b.StatusOnError, 400, 599)
}
