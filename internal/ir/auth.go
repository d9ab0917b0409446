package ir

// Auth is a route's effective AuthPolicy (design §2.4): each block comes whole from the policy
// level that wins it; nil blocks are not in effect. The data plane runs them in the order of
// the fields: basic, JWT and OIDC authenticate (ANDed), then the authorization rules decide,
// then the external authorization service is asked. CORS is the route's CORS field, which
// runs before all of them.
type Auth struct {
	Basic         *BasicAuth     `json:"basic,omitempty"`
	JWT           *JWTAuth       `json:"jwt,omitempty"`
	OIDC          *OIDCAuth      `json:"oidc,omitempty"`
	Authorization *Authorization `json:"authorization,omitempty"`
	ExtAuth       *ExtAuth       `json:"extAuth,omitempty"`
}

// AuthBlock is what every auth block carries: the policy it came from (for the access log and
// metrics) and, when its referents are unusable, why (the block then fails closed: 500, or
// 503 for external authorization).
type AuthBlock struct {
	Policy string `json:"policy"`
	// ID names the policy across projects (its scoped key): the data plane reports the health
	// of the block's runtime dependencies (JWKS, the external authorization service) under it.
	ID          string `json:"id,omitempty"`
	Unavailable string `json:"unavailable,omitempty"`
}

// BasicAuth checks HTTP Basic credentials against an htpasswd file.
type BasicAuth struct {
	AuthBlock `json:",inline"`
	Realm     string `json:"realm"`
	// Users is the htpasswd file (the last version that parsed).
	Users SecretString `json:"users"`
	// ForwardUsernameHeader, when set, carries the user name upstream (stripped from the client's
	// request first). ForwardCredentials keeps the Authorization header.
	ForwardUsernameHeader string `json:"forwardUsernameHeader,omitempty"`
	ForwardCredentials    bool   `json:"forwardCredentials,omitempty"`
}

// JWTAuth verifies bearer tokens from one or more issuers.
type JWTAuth struct {
	AuthBlock `json:",inline"`
	// Optional lets a request without a token pass unauthenticated (a present but invalid token
	// is still refused).
	Optional bool `json:"optional,omitempty"`
	// ForwardToken keeps the token where it was found; false removes it from there.
	ForwardToken bool          `json:"forwardToken,omitempty"`
	Providers    []JWTProvider `json:"providers"`
}

// JWTProvider is one issuer's tokens.
type JWTProvider struct {
	Name       string   `json:"name"`
	Issuer     string   `json:"issuer"`
	Audiences  []string `json:"audiences,omitempty"`
	Algorithms []string `json:"algorithms,omitempty"`
	ClockSkew  Duration `json:"clockSkew,omitempty"`
	// Exactly one of RemoteJWKS and LocalJWKS.
	RemoteJWKS *RemoteJWKS  `json:"remoteJWKS,omitempty"`
	LocalJWKS  SecretString `json:"localJWKS,omitempty"`
	// Extract lists where the token may be (default: Authorization: Bearer).
	Extract        TokenSources  `json:"extract"`
	ClaimToHeaders []ClaimHeader `json:"claimToHeaders,omitempty"`
}

// RemoteJWKS is a key set fetched over HTTPS, directly or through a Backend.
type RemoteJWKS struct {
	URI string `json:"uri"`
	// Backend is the IR backend that reaches the URI's host, on BackendPort ("" dials the
	// URI's host).
	Backend       string   `json:"backend,omitempty"`
	BackendPort   int32    `json:"backendPort,omitempty"`
	CacheDuration Duration `json:"cacheDuration"`
	Timeout       Duration `json:"timeout"`
}

// TokenSources are the places a token is looked for, in order.
type TokenSources struct {
	Headers []HeaderPrefix `json:"headers,omitempty"`
	Cookies []string       `json:"cookies,omitempty"`
	Query   []string       `json:"query,omitempty"`
}

// HeaderPrefix is a header carrying a token after a prefix ("Bearer ").
type HeaderPrefix struct {
	Name   string `json:"name"`
	Prefix string `json:"prefix,omitempty"`
}

// ClaimHeader copies a verified claim (a dot path, "\." for a literal dot) to a request header.
type ClaimHeader struct {
	Claim  string `json:"claim"`
	Header string `json:"header"`
}

// OIDCAuth logs browsers in with OpenID Connect (authorization code flow with PKCE).
type OIDCAuth struct {
	AuthBlock             `json:",inline"`
	Issuer                string         `json:"issuer"`
	AuthorizationEndpoint string         `json:"authorizationEndpoint,omitempty"`
	TokenEndpoint         string         `json:"tokenEndpoint,omitempty"`
	EndSessionEndpoint    string         `json:"endSessionEndpoint,omitempty"`
	Backend               string         `json:"backend,omitempty"`
	BackendPort           int32          `json:"backendPort,omitempty"`
	ClientID              string         `json:"clientID"`
	ClientSecret          SecretString   `json:"clientSecret"`
	Scopes                []string       `json:"scopes"`
	RedirectURL           string         `json:"redirectURL"`
	LogoutPath            string         `json:"logoutPath"`
	PostLogoutRedirectURL string         `json:"postLogoutRedirectURL"`
	CookieNamePrefix      string         `json:"cookieNamePrefix"`
	CookieDomain          string         `json:"cookieDomain,omitempty"`
	CookieSameSite        string         `json:"cookieSameSite"`
	CookieSecure          bool           `json:"cookieSecure"`
	AbsoluteTimeout       Duration       `json:"absoluteTimeout"`
	RefreshTokens         bool           `json:"refreshTokens"`
	ForwardAccessToken    bool           `json:"forwardAccessToken,omitempty"`
	ForwardIDTokenHeader  string         `json:"forwardIDTokenHeader,omitempty"`
	ClaimToHeaders        []ClaimHeader  `json:"claimToHeaders,omitempty"`
	PassThroughBearer     bool           `json:"passThroughBearer,omitempty"`
	UnauthenticatedAction string         `json:"unauthenticatedAction"`
	SessionKeys           []SecretString `json:"sessionKeys,omitempty"`
}

// Authorization decides by rules, first match wins.
type Authorization struct {
	AuthBlock `json:",inline"`
	// DefaultAllow is the decision when no rule matches.
	DefaultAllow bool        `json:"defaultAllow"`
	Rules        []AuthzRule `json:"rules"`
}

// AuthzRule allows or denies the requests its match selects.
type AuthzRule struct {
	Name  string     `json:"name"`
	Allow bool       `json:"allow"`
	Match AuthzMatch `json:"match"`
}

// AuthzMatch: every set field must hold (AND); within a list, any value (OR).
type AuthzMatch struct {
	// Authenticated, when set, requires that some authentication method of the policy
	// succeeded (true) or that none did (false).
	Authenticated *bool       `json:"authenticated,omitempty"`
	Methods       []string    `json:"methods,omitempty"`
	Paths         []PathMatch `json:"paths,omitempty"`
	ClientCIDRs   []string    `json:"clientCIDRs,omitempty"`
	// Headers: each listed header has one of its values (client-controlled: not an identity).
	Headers []HeaderValues `json:"headers,omitempty"`
	Users   []string       `json:"users,omitempty"`
	// JWTProvider, when set, requires the token to come from that provider.
	JWTProvider string       `json:"jwtProvider,omitempty"`
	Claims      []ClaimMatch `json:"claims,omitempty"`
	Scopes      []string     `json:"scopes,omitempty"`
}

// ExtAuth asks an external service whether a request may pass.
type ExtAuth struct {
	AuthBlock `json:",inline"`
	// GRPC: Envoy's envoy.service.auth.v3.Authorization/Check; otherwise HTTP.
	GRPC bool `json:"grpc,omitempty"`
	// Backend is the IR backend of the service, on BackendPort.
	Backend           string            `json:"backend"`
	BackendPort       int32             `json:"backendPort"`
	ContextExtensions map[string]string `json:"contextExtensions,omitempty"`
	PathPrefix        string            `json:"pathPrefix,omitempty"`
	HeadersToAuthz    []string          `json:"headersToAuthz,omitempty"`
	HeadersToUpstream []string          `json:"headersToUpstream,omitempty"`
	HeadersToClient   []string          `json:"headersToClient,omitempty"`
	BodyMaxBytes      int               `json:"bodyMaxBytes,omitempty"`
	BodyAllowPartial  bool              `json:"bodyAllowPartial,omitempty"`
	RouteMetadata     bool              `json:"routeMetadata,omitempty"`
	Timeout           Duration          `json:"timeout"`
	FailOpen          bool              `json:"failOpen,omitempty"`
	StatusOnError     int               `json:"statusOnError"`
}

// HeaderValues matches a header that has one of the values.
type HeaderValues struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}
