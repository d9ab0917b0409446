package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// AuthPolicy authenticates and authorizes the requests of the Gateways, listeners, routes and
// route rules it targets: CORS, basic auth, JWT, OIDC login, authorization rules and external
// authorization. Each of those is a block; for a request, each block is taken whole from the
// most specific policy that sets it (route rule, route, listener, Gateway), as for
// TrafficPolicy. Within one policy, the authentication blocks are ANDed and run in the order
// cors, basicAuth, jwt, oidc, authorization, extAuth.
type AuthPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec AuthPolicySpec `json:"spec,omitempty"`
	// Status is the upstream Gateway API policy status: one entry per ancestor (the Gateway, with
	// the listener's sectionName for listener targets), written by the translator.
	Status gwapiv1.PolicyStatus `json:"status,omitempty"`
}

// AuthPolicySpec is the desired state of an AuthPolicy. At least one block must be set. A block
// that is set gets its defaults filled in (and stored); an absent block stays absent, so it is
// inherited from a less specific policy.
type AuthPolicySpec struct {
	// TargetRefs are the objects the policy attaches to, in the policy's namespace: Gateway
	// (sectionName: a listener name), HTTPRoute or GRPCRoute (sectionName: a rule name). The
	// group defaults to gateway.apoxy.dev; gateway.networking.k8s.io is accepted and stored as
	// gateway.apoxy.dev. 1..16 entries, unique by (kind, name, sectionName).
	// +listType=atomic
	TargetRefs []gwapiv1.LocalPolicyTargetReferenceWithSectionName `json:"targetRefs"`
	// Strategy is Default (the default) or Override (only when every target is a Gateway): an
	// Override policy's blocks cannot be replaced or disabled by more specific policies.
	// +optional
	Strategy PolicyStrategy `json:"strategy,omitempty"`

	// CORS answers preflights at the gateway and adds CORS headers to responses.
	// +optional
	CORS *CORS `json:"cors,omitempty"`
	// BasicAuth checks user names and passwords against an htpasswd Secret.
	// +optional
	BasicAuth *BasicAuth `json:"basicAuth,omitempty"`
	// JWT verifies bearer tokens from one or more issuers.
	// +optional
	JWT *JWT `json:"jwt,omitempty"`
	// OIDC logs browser users in with an OpenID Connect provider (authorization code flow).
	// +optional
	OIDC *OIDC `json:"oidc,omitempty"`
	// Authorization allows or denies requests by ordered rules; the first that matches decides.
	// +optional
	Authorization *Authorization `json:"authorization,omitempty"`
	// ExtAuth asks an external service (gRPC or HTTP) whether to allow each request.
	// +optional
	ExtAuth *ExtAuth `json:"extAuth,omitempty"`
}

// ---- cors ----

// CORS is the cors block. It behaves as Gateway API's HTTPRoute CORS filter: preflights are
// answered by the gateway (204 with the headers, or 403 without CORS headers for a disallowed
// origin, method or header), never forwarded and never authenticated; Vary: Origin is always
// added; with credentials, "*" is never sent back (the origin is echoed instead).
type CORS struct {
	// Disabled turns off the CORS handling this policy would inherit (no other field may be set).
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// AllowOrigins are the allowed origins, 1..64, each scheme://host[:port]. The host's leftmost
	// label may be "*", matching one or more labels ("https://*.example.com" matches
	// "https://a.b.example.com", not "https://example.com"). "*" alone allows every origin and
	// must then be the only entry.
	// +optional
	// +listType=atomic
	AllowOrigins []string `json:"allowOrigins,omitempty"`
	// AllowMethods are the methods a preflight may ask for, at most 16, or ["*"] for any.
	// +optional
	// +listType=atomic
	AllowMethods []string `json:"allowMethods,omitempty"`
	// AllowHeaders are the request headers a preflight may ask for, at most 64, or ["*"].
	// +optional
	// +listType=atomic
	AllowHeaders []string `json:"allowHeaders,omitempty"`
	// ExposeHeaders are the response headers scripts may read, at most 64, or ["*"].
	// +optional
	// +listType=atomic
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`
	// MaxAge is how long browsers may cache a preflight answer, at most 24h; default 5s (the
	// upstream CORS filter's default).
	// +optional
	MaxAge *gwapiv1.Duration `json:"maxAge,omitempty"`
	// AllowCredentials lets browsers send cookies and credentials (default false).
	// +optional
	AllowCredentials bool `json:"allowCredentials,omitempty"`
}

// ---- basicAuth ----

// BasicAuth is the basicAuth block: HTTP Basic authentication (RFC 7617) against an htpasswd
// file in a Secret. bcrypt ($2a$/$2b$/$2y$, cost 4..14), SHA-crypt ($5$/$6$) and APR1 are
// accepted; {SHA} and {SSHA} too, with a warning in status. A Secret that does not parse is
// refused whole and reported in status (never at admission).
type BasicAuth struct {
	// Disabled turns off the basic auth this policy would inherit (no other field may be set).
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// UsersRef is the Secret holding the htpasswd file; required. Key default ".htpasswd".
	// +optional
	UsersRef *SecretRef `json:"usersRef,omitempty"`
	// Realm is the realm of the WWW-Authenticate challenge; default "Restricted".
	// +optional
	Realm string `json:"realm,omitempty"`
	// ForwardUsernameHeader, when set, carries the authenticated user name upstream; it is
	// always removed from the client's request first.
	// +optional
	ForwardUsernameHeader string `json:"forwardUsernameHeader,omitempty"`
	// ForwardCredentials keeps the Authorization header on the upstream request (default
	// false: it is removed).
	// +optional
	ForwardCredentials bool `json:"forwardCredentials,omitempty"`
}

// ---- jwt ----

// JWT is the jwt block: bearer tokens verified against the keys of one of several providers,
// chosen by the token's "iss" claim. Verified claims are kept for authorization, extAuth and
// TrafficPolicy jwtClaim keys; unverified tokens are never used.
type JWT struct {
	// Disabled turns off the JWT verification this policy would inherit (no other field may be
	// set).
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// Optional lets a request WITHOUT a token pass unauthenticated (authorization rules then
	// decide); a token that is present but invalid is still refused with 401. Default false.
	// +optional
	Optional bool `json:"optional,omitempty"`
	// ForwardToken keeps the token where it was found on the upstream request; false removes
	// it from there. Default true.
	// +optional
	ForwardToken *bool `json:"forwardToken,omitempty"`
	// Providers are the accepted issuers, 1..8, with unique names and issuers.
	// +optional
	// +listType=atomic
	Providers []JWTProvider `json:"providers,omitempty"`
}

// JWTAlgorithm is a JWS signature algorithm ("alg").
type JWTAlgorithm string

// The signature algorithms a provider may accept. "none" is never accepted.
const (
	JWTAlgorithmRS256 JWTAlgorithm = "RS256"
	JWTAlgorithmRS384 JWTAlgorithm = "RS384"
	JWTAlgorithmRS512 JWTAlgorithm = "RS512"
	JWTAlgorithmPS256 JWTAlgorithm = "PS256"
	JWTAlgorithmPS384 JWTAlgorithm = "PS384"
	JWTAlgorithmPS512 JWTAlgorithm = "PS512"
	JWTAlgorithmES256 JWTAlgorithm = "ES256"
	JWTAlgorithmES384 JWTAlgorithm = "ES384"
	JWTAlgorithmES512 JWTAlgorithm = "ES512"
	JWTAlgorithmEdDSA JWTAlgorithm = "EdDSA"
	// The HMAC algorithms need a shared secret, so they are accepted only with a local JWKS
	// (a remote key set is public: accepting HS* with it would let anyone sign tokens).
	JWTAlgorithmHS256 JWTAlgorithm = "HS256"
	JWTAlgorithmHS384 JWTAlgorithm = "HS384"
	JWTAlgorithmHS512 JWTAlgorithm = "HS512"
)

// DefaultJWTAlgorithms are what a provider without algorithms accepts: every asymmetric
// algorithm (RS*, PS*, ES*, EdDSA). The list is not stored in the policy, so the set can grow.
var DefaultJWTAlgorithms = []JWTAlgorithm{
	JWTAlgorithmRS256, JWTAlgorithmRS384, JWTAlgorithmRS512,
	JWTAlgorithmPS256, JWTAlgorithmPS384, JWTAlgorithmPS512,
	JWTAlgorithmES256, JWTAlgorithmES384, JWTAlgorithmES512,
	JWTAlgorithmEdDSA,
}

// JWTProvider is one accepted issuer and its keys.
type JWTProvider struct {
	// Name is a DNS label, unique within the policy; authorization rules name it.
	Name string `json:"name"`
	// Issuer must equal the token's "iss" claim exactly; required and unique across providers
	// (it selects the provider).
	Issuer string `json:"issuer"`
	// Audiences, at most 8: the token's "aud" must hold at least one; empty: not checked.
	// +optional
	// +listType=atomic
	Audiences []string `json:"audiences,omitempty"`
	// JWKS is where the verification keys come from; required, exactly one of remote and local.
	// +optional
	JWKS *JWKS `json:"jwks,omitempty"`
	// ExtractFrom lists where the token is looked for; the first place holding a value is
	// used. Default (only when extractFrom is absent): header Authorization, prefix "Bearer ".
	// +optional
	ExtractFrom *JWTExtractFrom `json:"extractFrom,omitempty"`
	// ClaimToHeaders copy claims of a verified token onto upstream request headers, at most 16.
	// Every header named here is removed from the client's request first, token or not.
	// +optional
	// +listType=atomic
	ClaimToHeaders []ClaimToHeader `json:"claimToHeaders,omitempty"`
	// ClockSkew is the leeway for exp, nbf and iat, at most 5m; default 60s.
	// +optional
	ClockSkew *gwapiv1.Duration `json:"clockSkew,omitempty"`
	// Algorithms accepted; empty: DefaultJWTAlgorithms (RS*, PS*, ES*, EdDSA). "none" is never
	// accepted; HS256/HS384/HS512 only with a local JWKS.
	// +optional
	// +listType=atomic
	Algorithms []JWTAlgorithm `json:"algorithms,omitempty"`
}

// JWKS says where a provider's JSON Web Key Set comes from; exactly one field is set.
type JWKS struct {
	// Remote fetches the key set over HTTPS and caches it.
	// +optional
	Remote *RemoteJWKS `json:"remote,omitempty"`
	// Local reads the key set from a Secret.
	// +optional
	Local *LocalJWKS `json:"local,omitempty"`
}

// RemoteJWKS is a key set fetched from a URL. On a token with an unknown "kid" the set is
// refetched, at most once per 30s.
type RemoteJWKS struct {
	// URI of the key set; https (http only for a loopback host, or through backendRef).
	URI string `json:"uri"`
	// BackendRef, when set, is the Backend the key set is fetched through (a private IdP).
	// group core.apoxy.dev, kind Backend, port required.
	// +optional
	BackendRef *gwapiv1.BackendObjectReference `json:"backendRef,omitempty"`
	// CacheDuration is how long a fetched set is used, at least 30s; default 5m.
	// +optional
	CacheDuration *gwapiv1.Duration `json:"cacheDuration,omitempty"`
	// Timeout bounds one fetch, > 0; default 5s.
	// +optional
	Timeout *gwapiv1.Duration `json:"timeout,omitempty"`
}

// LocalJWKS is a key set kept in a Secret.
type LocalJWKS struct {
	// SecretRef is the Secret holding the key set (JSON); required. Key default "jwks".
	// +optional
	SecretRef *SecretRef `json:"secretRef,omitempty"`
}

// JWTExtractFrom lists the places a token is looked for, in order: headers, cookies, query
// parameters. At least one place; at most 8 of each.
type JWTExtractFrom struct {
	// Headers holding the token, each with an optional value prefix.
	// +optional
	// +listType=atomic
	Headers []JWTHeaderSource `json:"headers,omitempty"`
	// Cookies holding the token, by name.
	// +optional
	// +listType=atomic
	Cookies []string `json:"cookies,omitempty"`
	// QueryParams holding the token, by name.
	// +optional
	// +listType=atomic
	QueryParams []string `json:"queryParams,omitempty"`
}

// JWTHeaderSource is a request header that carries a token.
type JWTHeaderSource struct {
	// Name of the header.
	Name string `json:"name"`
	// Prefix before the token in the header's value ("Bearer "); removed before verification.
	// +optional
	Prefix string `json:"prefix,omitempty"`
}

// ClaimToHeader copies one claim of a verified token onto an upstream request header. Strings,
// numbers and booleans are sent as text and string arrays joined by ","; objects are skipped.
type ClaimToHeader struct {
	// Claim is a claim path: names separated by "." for nested claims ("realm_access.roles"),
	// with "\." for a dot inside one name ("https://example\.com/org").
	Claim string `json:"claim"`
	// Header is the request header to set. Host, pseudo-headers and hop-by-hop headers are
	// refused.
	Header string `json:"header"`
}

// ---- oidc ----

// OIDCUnauthenticatedAction says what a request without a session gets.
type OIDCUnauthenticatedAction string

// Unauthenticated actions.
const (
	// UnauthenticatedAuto redirects to the provider GET and HEAD requests whose Accept has
	// text/html (browser navigations) and answers 401 to everything else (XHR, APIs, POST).
	// The default.
	UnauthenticatedAuto OIDCUnauthenticatedAction = "Auto"
	// UnauthenticatedRedirect always redirects to the provider.
	UnauthenticatedRedirect OIDCUnauthenticatedAction = "Redirect"
	// UnauthenticatedDeny always answers 401.
	UnauthenticatedDeny OIDCUnauthenticatedAction = "Deny"
)

// OIDC is the oidc block: the OpenID Connect authorization code flow (with PKCE S256), the
// session kept in encrypted cookies. The callback and logout paths are served by the gateway on
// every hostname the policy applies to, before route matching.
type OIDC struct {
	// Disabled turns off the OIDC login this policy would inherit (no other field may be set).
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// Provider is the OpenID provider; required.
	// +optional
	Provider *OIDCProvider `json:"provider,omitempty"`
	// ClientID is the client registered with the provider; required.
	// +optional
	ClientID string `json:"clientID,omitempty"`
	// ClientSecretRef is the Secret holding the client secret; required. Key default
	// "client-secret".
	// +optional
	ClientSecretRef *SecretRef `json:"clientSecretRef,omitempty"`
	// Scopes requested, at most 16; "openid" is added (first) when missing.
	// +optional
	// +listType=atomic
	Scopes []string `json:"scopes,omitempty"`
	// RedirectURL is the callback: a path ("/"-rooted, resolved against the request's scheme and
	// host) or an absolute https URL. Default "/oauth2/callback".
	// +optional
	RedirectURL string `json:"redirectURL,omitempty"`
	// Logout is the path that ends the session.
	// +optional
	Logout *OIDCLogout `json:"logout,omitempty"`
	// Cookies are the session cookies' attributes.
	// +optional
	Cookies *OIDCCookies `json:"cookies,omitempty"`
	// Session bounds the login's lifetime.
	// +optional
	Session *OIDCSession `json:"session,omitempty"`
	// ForwardAccessToken sends "Authorization: Bearer <access token>" upstream (default false).
	// +optional
	ForwardAccessToken bool `json:"forwardAccessToken,omitempty"`
	// ForwardIDToken, with a header, sends the ID token upstream in that header.
	// +optional
	ForwardIDToken *OIDCForwardIDToken `json:"forwardIDToken,omitempty"`
	// ClaimToHeaders copy claims of the ID token onto upstream request headers, at most 16;
	// each header is removed from the client's request first.
	// +optional
	// +listType=atomic
	ClaimToHeaders []ClaimToHeader `json:"claimToHeaders,omitempty"`
	// PassThroughBearer skips the login for a request whose bearer token this policy's jwt
	// block accepts (an invalid bearer gets 401, not a redirect). Default false.
	// +optional
	PassThroughBearer bool `json:"passThroughBearer,omitempty"`
	// UnauthenticatedAction is Auto (the default), Redirect or Deny.
	// +optional
	UnauthenticatedAction OIDCUnauthenticatedAction `json:"unauthenticatedAction,omitempty"`
}

// OIDCProvider is an OpenID provider. Its endpoints come from discovery (issuer +
// /.well-known/openid-configuration) unless both authorizationEndpoint and tokenEndpoint are
// set.
type OIDCProvider struct {
	// Issuer is the provider's issuer URL; required, https (http only for a loopback host).
	Issuer string `json:"issuer"`
	// AuthorizationEndpoint overrides discovery's; an https URL.
	// +optional
	AuthorizationEndpoint string `json:"authorizationEndpoint,omitempty"`
	// TokenEndpoint overrides discovery's; an https URL.
	// +optional
	TokenEndpoint string `json:"tokenEndpoint,omitempty"`
	// EndSessionEndpoint overrides discovery's (RP-initiated logout); an https URL.
	// +optional
	EndSessionEndpoint string `json:"endSessionEndpoint,omitempty"`
	// BackendRef, when set, is the Backend the provider is reached through. group
	// core.apoxy.dev, kind Backend, port required.
	// +optional
	BackendRef *gwapiv1.BackendObjectReference `json:"backendRef,omitempty"`
}

// OIDCLogout is the logout endpoint: it clears the session cookies, then sends the user to the
// provider's end-session endpoint when it has one.
type OIDCLogout struct {
	// Path served by the gateway; "/"-rooted, not the redirect path. Default "/logout".
	// +optional
	Path string `json:"path,omitempty"`
	// PostLogoutRedirectURL is where the user lands after logout: a path or an absolute https
	// URL. Default "/".
	// +optional
	PostLogoutRedirectURL string `json:"postLogoutRedirectURL,omitempty"`
}

// OIDCCookies are the session cookies' attributes. Their names are derived from (issuer,
// clientID) unless namePrefix is set, so one login serves every route and policy of a client.
type OIDCCookies struct {
	// NamePrefix of the session cookies (a cookie-name token); default (not stored)
	// "_apoxy_oidc_" followed by 8 hex digits of a hash of issuer and clientID, see
	// OIDCCookieNamePrefix.
	// +optional
	NamePrefix string `json:"namePrefix,omitempty"`
	// Domain attribute; default host-only. "example.com" shares the session with subdomains.
	// +optional
	Domain string `json:"domain,omitempty"`
	// SameSite is Lax (the default), Strict or None; None requires secure.
	// +optional
	SameSite CookieSameSite `json:"sameSite,omitempty"`
	// Secure sets the Secure attribute; default true. false is for plain-HTTP listeners only
	// (reported Invalid in status on an HTTPS listener).
	// +optional
	Secure *bool `json:"secure,omitempty"`
}

// OIDCSession bounds a login.
type OIDCSession struct {
	// AbsoluteTimeout after which the user logs in again, even with refresh; > 0, default 24h.
	// +optional
	AbsoluteTimeout *gwapiv1.Duration `json:"absoluteTimeout,omitempty"`
	// RefreshTokens uses the refresh token, when the provider returns one, before the access
	// token expires. Default true.
	// +optional
	RefreshTokens *bool `json:"refreshTokens,omitempty"`
}

// OIDCForwardIDToken sends the ID token upstream.
type OIDCForwardIDToken struct {
	// Header carrying the ID token; empty: not forwarded. Host, pseudo-headers and hop-by-hop
	// headers are refused.
	// +optional
	Header string `json:"header,omitempty"`
}

// ---- authorization ----

// AuthorizationAction is what a matching rule, or no rule, decides.
type AuthorizationAction string

// Authorization actions.
const (
	AuthorizationAllow AuthorizationAction = "Allow"
	AuthorizationDeny  AuthorizationAction = "Deny"
)

// Authorization is the authorization block: rules in order, the first that matches decides,
// and defaultAction decides when none does. A denied request gets 403; a rule that fails only
// because the request is unauthenticated gives 401 with the WWW-Authenticate challenge.
type Authorization struct {
	// Disabled turns off the authorization this policy would inherit (no other field may be
	// set).
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// DefaultAction is Allow or Deny; required when the block is set (no implicit deny).
	// +optional
	DefaultAction AuthorizationAction `json:"defaultAction,omitempty"`
	// Rules, 1..64 with unique names, in order.
	// +optional
	// +listType=atomic
	Rules []AuthorizationRule `json:"rules,omitempty"`
}

// AuthorizationRule allows or denies the requests it matches.
type AuthorizationRule struct {
	// Name is a DNS label, unique within the policy (for status and logs).
	Name string `json:"name"`
	// Action is Allow or Deny; required.
	// +optional
	Action AuthorizationAction `json:"action,omitempty"`
	// Match selects requests; required and not empty (use defaultAction for every request).
	// +optional
	Match *AuthorizationMatch `json:"match,omitempty"`
}

// AuthorizationMatch selects requests: every field that is set must hold (AND); the values
// within one list are alternatives (OR), except jwt.scopes, which must all be granted.
type AuthorizationMatch struct {
	// Authenticated true matches requests that one of this policy's authentication blocks
	// authenticated; false matches those none did.
	// +optional
	Authenticated *bool `json:"authenticated,omitempty"`
	// Methods are HTTP methods (GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH).
	// +optional
	// +listType=atomic
	Methods []gwapiv1.HTTPMethod `json:"methods,omitempty"`
	// Paths match the normalised request path, type PathPrefix (the default) or Exact; at most
	// 16.
	// +optional
	// +listType=atomic
	Paths []PathMatch `json:"paths,omitempty"`
	// ClientCIDRs match the client address; at most 32.
	// +optional
	// +listType=atomic
	ClientCIDRs []string `json:"clientCIDRs,omitempty"`
	// Headers match request headers by value; at most 16. They are client-controlled: not an
	// identity.
	// +optional
	// +listType=atomic
	Headers []HeaderValuesMatch `json:"headers,omitempty"`
	// Users are basicAuth user names; at most 64.
	// +optional
	// +listType=atomic
	Users []string `json:"users,omitempty"`
	// JWT matches the claims of the token this policy verified (a jwt provider's token or the
	// OIDC ID token).
	// +optional
	JWT *JWTPrincipal `json:"jwt,omitempty"`
}

// HeaderValuesMatch matches a request header whose value is one of values.
type HeaderValuesMatch struct {
	// Name of the header (case-insensitive).
	Name string `json:"name"`
	// Values, 1..16; the header matches when its value equals one of them.
	// +listType=atomic
	Values []string `json:"values"`
}

// JWTPrincipal matches the verified token's issuer and claims.
type JWTPrincipal struct {
	// Provider, when set, is the jwt provider that must have verified the token.
	// +optional
	Provider string `json:"provider,omitempty"`
	// Claims each match a claim (a claim path) holding, or being a list holding, one of the
	// values; at most 16.
	// +optional
	// +listType=atomic
	Claims []ClaimMatch `json:"claims,omitempty"`
	// Scopes must all be granted ("scope" or "scp" claim); at most 16.
	// +optional
	// +listType=atomic
	Scopes []string `json:"scopes,omitempty"`
}

// ---- extAuth ----

// ExtAuth is the extAuth block: every request (after the other blocks) is checked by an
// external service, which sees the verified identity headers. Headers in headersToUpstream are
// removed from the client's request before the check, and the service may never change Host,
// pseudo-headers or hop-by-hop headers.
type ExtAuth struct {
	// Disabled turns off the external authorization this policy would inherit (no other field
	// may be set).
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// GRPC calls an Envoy ext_authz v3 gRPC service. Exactly one of grpc and http.
	// +optional
	GRPC *ExtAuthGRPC `json:"grpc,omitempty"`
	// HTTP calls an HTTP service: status 200 allows, any other response is relayed to the
	// client.
	// +optional
	HTTP *ExtAuthHTTP `json:"http,omitempty"`
	// HeadersToAuthz is the allowlist of request headers sent to the service; empty (the
	// default) sends all of them, for both protocols. At most 64.
	// +optional
	// +listType=atomic
	HeadersToAuthz []string `json:"headersToAuthz,omitempty"`
	// HeadersToUpstream are copied from an allowing answer onto the upstream request
	// (overwriting); gRPC header mutations are limited to them when set. At most 64.
	// +optional
	// +listType=atomic
	HeadersToUpstream []string `json:"headersToUpstream,omitempty"`
	// HeadersToClient are copied from a denying answer to the client; empty sends all. At most
	// 64.
	// +optional
	// +listType=atomic
	HeadersToClient []string `json:"headersToClient,omitempty"`
	// IncludeBody buffers request bodies and sends them to the service; absent: no body.
	// +optional
	IncludeBody *ExtAuthBody `json:"includeBody,omitempty"`
	// IncludeRouteMetadata sends the route, namespace and policy in the gRPC check's
	// metadata_context (grpc only). Default false.
	// +optional
	IncludeRouteMetadata bool `json:"includeRouteMetadata,omitempty"`
	// Timeout bounds one check, > 0; default 2s.
	// +optional
	Timeout *gwapiv1.Duration `json:"timeout,omitempty"`
	// FailureMode is FailClosed (the default: a failed or timed-out check answers
	// statusOnError) or FailOpen (the request passes, marked in the access log).
	// +optional
	FailureMode RateLimitFailureMode `json:"failureMode,omitempty"`
	// StatusOnError is the status sent when FailClosed and the check failed, 400..599; default
	// 403.
	// +optional
	StatusOnError *int32 `json:"statusOnError,omitempty"`
}

// ExtAuthGRPC is an Envoy ext_authz v3 gRPC service (its Backend speaks h2c, or h2 over TLS).
type ExtAuthGRPC struct {
	// BackendRef is the service's Backend: group core.apoxy.dev, kind Backend, port required.
	// +optional
	BackendRef *gwapiv1.BackendObjectReference `json:"backendRef,omitempty"`
	// ContextExtensions are sent in CheckRequest.attributes.context_extensions; at most 16.
	// +optional
	ContextExtensions map[string]string `json:"contextExtensions,omitempty"`
}

// ExtAuthHTTP is an HTTP authorization service.
type ExtAuthHTTP struct {
	// BackendRef is the service's Backend: group core.apoxy.dev, kind Backend, port required.
	// +optional
	BackendRef *gwapiv1.BackendObjectReference `json:"backendRef,omitempty"`
	// PathPrefix is prepended to the original path to form the check's path; "" or "/"-rooted.
	// +optional
	PathPrefix string `json:"pathPrefix,omitempty"`
}

// ExtAuthBody says how much of a request body the service gets.
type ExtAuthBody struct {
	// MaxBytes buffered and sent, 1..1048576; required.
	MaxBytes int32 `json:"maxBytes"`
	// AllowPartial sends the first maxBytes of a larger body, flagged as partial; false (the
	// default) answers 413 to a larger body.
	// +optional
	AllowPartial *bool `json:"allowPartial,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// AuthPolicyList is a list of AuthPolicies.
type AuthPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuthPolicy `json:"items"`
}
