package v1alpha1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// decodeAuth reads an AuthPolicy spec strictly (as the API server decodes with
// fieldValidation=Strict) and applies the defaults, as the API server does before validating.
func decodeAuth(t *testing.T, spec string) *AuthPolicy {
	t.Helper()
	ap := &AuthPolicy{}
	if err := yaml.UnmarshalStrict([]byte(spec), &ap.Spec); err != nil {
		t.Fatalf("decode: %v", err)
	}
	SetDefaultsAuthPolicy(ap)
	return ap
}

// Building blocks of the cases: one valid provider, backend and OIDC block to edit.
const (
	remote   = "jwks: {remote: {uri: https://idp.example.com/jwks.json}}"
	provider = "{name: idp, issuer: https://idp.example.com/, " + remote + "}"
	opa      = "{group: core.apoxy.dev, kind: Backend, name: opa, port: 9191}"
	oidcBase = "provider: {issuer: https://accounts.example.com}, clientID: app, clientSecretRef: {name: app-oidc}"
)

// TestValidateAuthPolicy has one case per validation rule (design §2.1, §2.4 and §5), each
// asserting the exact field paths named.
func TestValidateAuthPolicy(t *testing.T) {
	n := func(count int, item func(i int) string) string {
		var items []string
		for i := range count {
			items = append(items, item(i))
		}
		return strings.Join(items, ", ")
	}
	same := func(s string) func(int) string { return func(int) string { return s } }
	numbered := func(prefix string) func(int) string {
		return func(i int) string { return prefix + strconv.Itoa(i) }
	}
	cors := func(b string) string { return route + "cors: {" + b + "}\n" }
	origins := func(o ...string) string { return cors("allowOrigins: [" + strings.Join(o, ", ") + "]") }
	basic := func(b string) string { return route + "basicAuth: {" + b + "}\n" }
	jwt := func(providers ...string) string {
		return route + "jwt: {providers: [" + strings.Join(providers, ", ") + "]}\n"
	}
	prov := func(fields string) string {
		return jwt("{name: idp, issuer: https://idp.example.com/, " + fields + "}")
	}
	withRemote := func(fields string) string {
		return prov("jwks: {remote: {uri: https://idp.example.com/jwks.json, " + fields + "}}")
	}
	oidc := func(b string) string { return route + "oidc: {" + oidcBase + ", " + b + "}\n" }
	authz := func(rules string) string {
		return route + "authorization: {defaultAction: Deny, rules: [" + rules + "]}\n"
	}
	match := func(m string) string { return authz("{name: r, action: Allow, match: {" + m + "}}") }
	ext := func(b string) string { return route + "extAuth: {" + b + "}\n" }
	grpc := func(b string) string { return ext("grpc: {backendRef: " + opa + "}, " + b) }
	tests := []struct {
		name string
		spec string
		want []string
	}{
		// Valid policies.
		{"cors only", cors("allowOrigins: ['*']"), nil},
		{"every block", route + `cors: {allowOrigins: [https://app.example.com], allowMethods: ['*'], allowHeaders: ['*'], exposeHeaders: [x-request-id], maxAge: 24h, allowCredentials: true}
basicAuth: {usersRef: {name: users, namespace: shared, key: htpasswd}, realm: Admin, forwardUsernameHeader: x-auth-user, forwardCredentials: true}
jwt: {optional: true, forwardToken: false, providers: [` + provider + `, {name: local, issuer: local, jwks: {local: {secretRef: {name: jwks}}}, algorithms: [HS256, RS256], clockSkew: 5m, audiences: [a, b],
  extractFrom: {headers: [{name: x-token}], cookies: [tok], queryParams: [access_token]}, claimToHeaders: [{claim: 'a\.b.c', header: x-abc}]}]}
oidc: {` + oidcBase + `, scopes: [email], redirectURL: 'https://app.example.com/cb?x=1', logout: {path: /bye, postLogoutRedirectURL: 'https://app.example.com/'},
  cookies: {namePrefix: _app_, domain: .example.com, sameSite: None}, session: {absoluteTimeout: 1h, refreshTokens: false}, forwardAccessToken: true,
  forwardIDToken: {header: x-id-token}, claimToHeaders: [{claim: email, header: x-email}], passThroughBearer: true, unauthenticatedAction: Deny}
authorization: {defaultAction: Allow, rules: [{name: deny-bots, action: Deny, match: {headers: [{name: user-agent, values: [bot]}]}},
  {name: admins, action: Allow, match: {authenticated: true, methods: [GET, POST], paths: [{value: /admin}, {type: Exact, value: /x}], clientCIDRs: ['192.0.2.0/24', '::1/128'],
    users: [alice], jwt: {provider: idp, claims: [{name: roles, values: [admin]}], scopes: ['admin:write']}}},
  {name: anonymous, action: Deny, match: {authenticated: false}}]}
extAuth: {http: {backendRef: ` + opa + `, pathPrefix: /authz}, headersToAuthz: [authorization], headersToUpstream: [x-tenant], headersToClient: [www-authenticate],
  includeBody: {maxBytes: 1048576, allowPartial: true}, timeout: 500ms, failureMode: FailOpen, statusOnError: 503}`, nil},
		{"every block disabled", route + "cors: {disabled: true}\nbasicAuth: {disabled: true}\njwt: {disabled: true}\noidc: {disabled: true}\nauthorization: {disabled: true}\nextAuth: {disabled: true}", nil},
		{"override on gateways", "targetRefs: [{kind: Gateway, name: a}, {kind: Gateway, name: b, sectionName: https}]\nstrategy: Override\njwt: {providers: [" + provider + "]}", nil},
		{"origin forms", origins("'https://*.example.com'", "'http://localhost:3000'", "'https://[::1]:8443'", "'capacitor://localhost'", "'https://192.0.2.1'"), nil},
		{"http key set on loopback", prov("jwks: {remote: {uri: 'http://127.0.0.1:8080/jwks'}}"), nil},
		{"http key set through a Backend", prov("jwks: {remote: {uri: 'http://keycloak/certs', backendRef: {group: core.apoxy.dev, kind: Backend, name: kc, port: 80}}}"), nil},
		{"SameSite None with the default secure", oidc("cookies: {sameSite: None}"), nil},
		{"forwardIDToken without header", oidc("forwardIDToken: {header: ''}"), nil},
		{"grpc with context extensions and metadata", grpc("includeRouteMetadata: true"), nil},

		// Shared with TrafficPolicy: targetRefs, strategy, blocks.
		{"no targetRefs", "cors: {allowOrigins: ['*']}", []string{"spec.targetRefs"}},
		{"17 targetRefs", "targetRefs: [" + n(17, func(i int) string { return "{kind: HTTPRoute, name: r" + strconv.Itoa(i) + "}" }) + "]\ncors: {allowOrigins: ['*']}", []string{"spec.targetRefs"}},
		{"duplicate targetRef", "targetRefs: [{kind: HTTPRoute, name: a}, {group: gateway.networking.k8s.io, kind: HTTPRoute, name: a}]\ncors: {allowOrigins: ['*']}", []string{"spec.targetRefs[1]"}},
		{"Service target", "targetRefs: [{group: '', kind: Service, name: a}]\ncors: {allowOrigins: ['*']}", []string{"spec.targetRefs[0].kind"}},
		{"override with a route target", "targetRefs: [{kind: Gateway, name: g}, {kind: HTTPRoute, name: r}]\nstrategy: Override\ncors: {allowOrigins: ['*']}", []string{"spec.strategy"}},
		{"policy sets no feature", route, []string{"spec"}},
		{"disabled jwt with settings", route + "jwt: {disabled: true, optional: true, providers: [" + provider + "]}", []string{"spec.jwt.optional", "spec.jwt.providers"}},
		{"disabled cors with maxAge", route + "cors: {disabled: true, maxAge: 1m}", []string{"spec.cors.maxAge"}},
		{"disabled extAuth with a service", route + "extAuth: {disabled: true, grpc: {backendRef: " + opa + "}}", []string{"spec.extAuth.grpc"}},

		// cors.
		{"no origins", cors("allowMethods: [GET]"), []string{"spec.cors.allowOrigins"}},
		{"65 origins", origins(n(65, func(i int) string { return "https://a" + strconv.Itoa(i) + ".example.com" })), []string{"spec.cors.allowOrigins"}},
		{"star among others", origins("https://a.example.com", "'*'"), []string{"spec.cors.allowOrigins[1]"}},
		{"origin with a path", origins("https://a.example.com/"), []string{"spec.cors.allowOrigins[0]"}},
		{"origin without scheme", origins("app.example.com"), []string{"spec.cors.allowOrigins[0]"}},
		{"wildcard not leftmost", origins("'https://a.*.example.com'"), []string{"spec.cors.allowOrigins[0]"}},
		{"wildcard alone after scheme", origins("'https://*'"), []string{"spec.cors.allowOrigins[0]"}},
		{"port 0", origins("'https://a.example.com:0'"), []string{"spec.cors.allowOrigins[0]"}},
		{"port 99999", origins("'https://a.example.com:99999'"), []string{"spec.cors.allowOrigins[0]"}},
		{"empty port", origins("'https://a.example.com:'"), []string{"spec.cors.allowOrigins[0]"}},
		{"bad IPv6 origin", origins("'https://[fe80::1%eth0]'"), []string{"spec.cors.allowOrigins[0]"}},
		{"label with underscore", origins("https://a_b.example.com"), []string{"spec.cors.allowOrigins[0]"}},
		{"duplicate origin", origins("https://a.example.com", "https://A.example.com"), []string{"spec.cors.allowOrigins[1]"}},
		{"17 methods", cors("allowOrigins: ['*'], allowMethods: [" + n(17, numbered("M")) + "]"), []string{"spec.cors.allowMethods"}},
		{"method star among others", cors("allowOrigins: ['*'], allowMethods: [GET, '*']"), []string{"spec.cors.allowMethods[1]"}},
		{"method not a token", cors("allowOrigins: ['*'], allowMethods: ['GE T']"), []string{"spec.cors.allowMethods[0]"}},
		{"duplicate method", cors("allowOrigins: ['*'], allowMethods: [GET, GET]"), []string{"spec.cors.allowMethods[1]"}},
		{"65 allowHeaders", cors("allowOrigins: ['*'], allowHeaders: [" + n(65, numbered("x-h")) + "]"), []string{"spec.cors.allowHeaders"}},
		{"bad allowHeader", cors("allowOrigins: ['*'], allowHeaders: ['x y']"), []string{"spec.cors.allowHeaders[0]"}},
		{"duplicate allowHeader", cors("allowOrigins: ['*'], allowHeaders: [X-A, x-a]"), []string{"spec.cors.allowHeaders[1]"}},
		{"exposeHeaders star among others", cors("allowOrigins: ['*'], exposeHeaders: ['*', x-a]"), []string{"spec.cors.exposeHeaders[0]"}},
		{"65 exposeHeaders", cors("allowOrigins: ['*'], exposeHeaders: [" + n(65, numbered("x-h")) + "]"), []string{"spec.cors.exposeHeaders"}},
		{"maxAge 25h", cors("allowOrigins: ['*'], maxAge: 25h"), []string{"spec.cors.maxAge"}},
		{"maxAge in days", cors("allowOrigins: ['*'], maxAge: 1d"), []string{"spec.cors.maxAge"}},

		// basicAuth.
		{"no usersRef", basic("realm: x"), []string{"spec.basicAuth.usersRef"}},
		{"usersRef without name", basic("usersRef: {key: users}"), []string{"spec.basicAuth.usersRef.name"}},
		{"usersRef bad name", basic("usersRef: {name: Admin_Users}"), []string{"spec.basicAuth.usersRef.name"}},
		{"usersRef bad namespace", basic("usersRef: {name: u, namespace: a.b}"), []string{"spec.basicAuth.usersRef.namespace"}},
		{"usersRef bad key", basic("usersRef: {name: u, key: 'a/b'}"), []string{"spec.basicAuth.usersRef.key"}},
		{"realm with a quote", basic(`usersRef: {name: u}, realm: 'a"b'`), []string{"spec.basicAuth.realm"}},
		{"username header Host", basic("usersRef: {name: u}, forwardUsernameHeader: Host"), []string{"spec.basicAuth.forwardUsernameHeader"}},
		{"username header pseudo", basic("usersRef: {name: u}, forwardUsernameHeader: ':authority'"), []string{"spec.basicAuth.forwardUsernameHeader"}},

		// jwt.
		{"no providers", route + "jwt: {optional: true}", []string{"spec.jwt.providers"}},
		{"9 providers", jwt(n(9, func(i int) string {
			return "{name: p" + strconv.Itoa(i) + ", issuer: i" + strconv.Itoa(i) + ", " + remote + "}"
		})), []string{"spec.jwt.providers"}},
		{"provider name not a DNS label", jwt("{name: Auth0, issuer: i, " + remote + "}"), []string{"spec.jwt.providers[0].name"}},
		{"provider without name", jwt("{issuer: i, " + remote + "}"), []string{"spec.jwt.providers[0].name"}},
		{"duplicate provider names", jwt("{name: a, issuer: i, "+remote+"}", "{name: a, issuer: j, "+remote+"}"), []string{"spec.jwt.providers[1].name"}},
		{"provider without issuer", jwt("{name: a, " + remote + "}"), []string{"spec.jwt.providers[0].issuer"}},
		{"duplicate issuers", jwt("{name: a, issuer: i, "+remote+"}", "{name: b, issuer: i, "+remote+"}"), []string{"spec.jwt.providers[1].issuer"}},
		{"9 audiences", prov(remote + ", audiences: [" + n(9, numbered("a")) + "]"), []string{"spec.jwt.providers[0].audiences"}},
		{"empty audience", prov(remote + ", audiences: ['']"), []string{"spec.jwt.providers[0].audiences[0]"}},
		{"no jwks", prov("audiences: [a]"), []string{"spec.jwt.providers[0].jwks"}},
		{"empty jwks", prov("jwks: {}"), []string{"spec.jwt.providers[0].jwks"}},
		{"remote and local", prov("jwks: {remote: {uri: 'https://a/k'}, local: {secretRef: {name: k}}}"), []string{"spec.jwt.providers[0].jwks.local"}},
		{"http key set", prov("jwks: {remote: {uri: 'http://idp.example.com/jwks'}}"), []string{"spec.jwt.providers[0].jwks.remote.uri"}},
		{"ftp key set", prov("jwks: {remote: {uri: 'ftp://idp.example.com/jwks'}}"), []string{"spec.jwt.providers[0].jwks.remote.uri"}},
		{"relative key set", prov("jwks: {remote: {uri: /jwks}}"), []string{"spec.jwt.providers[0].jwks.remote.uri"}},
		{"key set without uri", prov("jwks: {remote: {timeout: 1s}}"), []string{"spec.jwt.providers[0].jwks.remote.uri"}},
		{"cacheDuration 10s", withRemote("cacheDuration: 10s"), []string{"spec.jwt.providers[0].jwks.remote.cacheDuration"}},
		{"fetch timeout 0s", withRemote("timeout: 0s"), []string{"spec.jwt.providers[0].jwks.remote.timeout"}},
		{"key set through a Service", withRemote("backendRef: {group: '', kind: Service, name: kc, port: 80}"),
			[]string{"spec.jwt.providers[0].jwks.remote.backendRef.group", "spec.jwt.providers[0].jwks.remote.backendRef.kind"}},
		{"backendRef without group and kind", withRemote("backendRef: {name: kc, port: 80}"),
			[]string{"spec.jwt.providers[0].jwks.remote.backendRef.group", "spec.jwt.providers[0].jwks.remote.backendRef.kind"}},
		{"backendRef without port", withRemote("backendRef: {group: core.apoxy.dev, kind: Backend, name: kc}"), []string{"spec.jwt.providers[0].jwks.remote.backendRef.port"}},
		{"backendRef without name", withRemote("backendRef: {group: core.apoxy.dev, kind: Backend, port: 1}"), []string{"spec.jwt.providers[0].jwks.remote.backendRef.name"}},
		{"local without secretRef", prov("jwks: {local: {}}"), []string{"spec.jwt.providers[0].jwks.local.secretRef"}},
		{"empty extractFrom", prov(remote + ", extractFrom: {}"), []string{"spec.jwt.providers[0].extractFrom"}},
		{"extractFrom bad header", prov(remote + ", extractFrom: {headers: [{name: 'a b'}]}"), []string{"spec.jwt.providers[0].extractFrom.headers[0].name"}},
		{"extractFrom bad cookie", prov(remote + ", extractFrom: {cookies: ['a;b']}"), []string{"spec.jwt.providers[0].extractFrom.cookies[0]"}},
		{"extractFrom empty query param", prov(remote + ", extractFrom: {queryParams: ['']}"), []string{"spec.jwt.providers[0].extractFrom.queryParams[0]"}},
		{"9 token cookies", prov(remote + ", extractFrom: {cookies: [" + n(9, numbered("c")) + "]}"), []string{"spec.jwt.providers[0].extractFrom.cookies"}},
		{"17 claimToHeaders", prov(remote + ", claimToHeaders: [" + n(17, func(i int) string { return "{claim: c, header: x-" + strconv.Itoa(i) + "}" }) + "]"),
			[]string{"spec.jwt.providers[0].claimToHeaders"}},
		{"claim with an empty segment", prov(remote + ", claimToHeaders: [{claim: 'a..b', header: x-a}]"), []string{"spec.jwt.providers[0].claimToHeaders[0].claim"}},
		{"claim ending in a dot", prov(remote + ", claimToHeaders: [{claim: 'a.', header: x-a}]"), []string{"spec.jwt.providers[0].claimToHeaders[0].claim"}},
		{"claim with a bad escape", prov(remote + `, claimToHeaders: [{claim: 'a\b', header: x-a}]`), []string{"spec.jwt.providers[0].claimToHeaders[0].claim"}},
		{"claim ending in a backslash", prov(remote + `, claimToHeaders: [{claim: 'a\', header: x-a}]`), []string{"spec.jwt.providers[0].claimToHeaders[0].claim"}},
		{"claim without name", prov(remote + ", claimToHeaders: [{header: x-a}]"), []string{"spec.jwt.providers[0].claimToHeaders[0].claim"}},
		{"claim to Host", prov(remote + ", claimToHeaders: [{claim: sub, header: HOST}]"), []string{"spec.jwt.providers[0].claimToHeaders[0].header"}},
		{"claim to a pseudo-header", prov(remote + ", claimToHeaders: [{claim: sub, header: ':path'}]"), []string{"spec.jwt.providers[0].claimToHeaders[0].header"}},
		{"claim to Connection", prov(remote + ", claimToHeaders: [{claim: sub, header: Connection}]"), []string{"spec.jwt.providers[0].claimToHeaders[0].header"}},
		{"claim to Transfer-Encoding", prov(remote + ", claimToHeaders: [{claim: sub, header: transfer-encoding}]"), []string{"spec.jwt.providers[0].claimToHeaders[0].header"}},
		{"claim to no header", prov(remote + ", claimToHeaders: [{claim: sub}]"), []string{"spec.jwt.providers[0].claimToHeaders[0].header"}},
		{"two claims to one header", prov(remote + ", claimToHeaders: [{claim: sub, header: x-user}, {claim: email, header: X-User}]"), []string{"spec.jwt.providers[0].claimToHeaders[1].header"}},
		{"clockSkew 6m", prov(remote + ", clockSkew: 6m"), []string{"spec.jwt.providers[0].clockSkew"}},
		{"algorithm none", prov(remote + ", algorithms: [none]"), []string{"spec.jwt.providers[0].algorithms[0]"}},
		{"HS256 with a remote key set", prov(remote + ", algorithms: [RS256, HS256]"), []string{"spec.jwt.providers[0].algorithms[1]"}},
		{"unknown algorithm", prov(remote + ", algorithms: [RS1]"), []string{"spec.jwt.providers[0].algorithms[0]"}},
		{"duplicate algorithm", prov(remote + ", algorithms: [ES256, ES256]"), []string{"spec.jwt.providers[0].algorithms[1]"}},

		// oidc.
		{"no provider", route + "oidc: {clientID: a, clientSecretRef: {name: s}}", []string{"spec.oidc.provider"}},
		{"no issuer", route + "oidc: {provider: {tokenEndpoint: 'https://a/t'}, clientID: a, clientSecretRef: {name: s}}", []string{"spec.oidc.provider.issuer"}},
		{"http issuer", route + "oidc: {provider: {issuer: 'http://accounts.example.com'}, clientID: a, clientSecretRef: {name: s}}", []string{"spec.oidc.provider.issuer"}},
		{"http issuer through a Backend", route + "oidc: {provider: {issuer: 'http://idp', backendRef: {group: core.apoxy.dev, kind: Backend, name: idp, port: 80}}, clientID: a, clientSecretRef: {name: s}}",
			[]string{"spec.oidc.provider.issuer"}},
		{"http issuer on loopback", route + "oidc: {provider: {issuer: 'http://localhost:5556/dex'}, clientID: a, clientSecretRef: {name: s}}", nil},
		{"http token endpoint", route + "oidc: {provider: {issuer: 'https://a', tokenEndpoint: 'http://a/token'}, clientID: a, clientSecretRef: {name: s}}", []string{"spec.oidc.provider.tokenEndpoint"}},
		{"provider backendRef bad kind", route + "oidc: {provider: {issuer: 'https://a', backendRef: {group: core.apoxy.dev, kind: Svc, name: idp, port: 80}}, clientID: a, clientSecretRef: {name: s}}",
			[]string{"spec.oidc.provider.backendRef.kind"}},
		{"no clientID", route + "oidc: {provider: {issuer: 'https://a'}, clientSecretRef: {name: s}}", []string{"spec.oidc.clientID"}},
		{"clientID with a newline", route + "oidc: {provider: {issuer: 'https://a'}, clientID: \"a\\nb\", clientSecretRef: {name: s}}", []string{"spec.oidc.clientID"}},
		{"no clientSecretRef", route + "oidc: {provider: {issuer: 'https://a'}, clientID: a}", []string{"spec.oidc.clientSecretRef"}},
		{"relative redirectURL", oidc("redirectURL: oauth2/callback"), []string{"spec.oidc.redirectURL"}},
		{"http redirectURL", oidc("redirectURL: 'http://app.example.com/cb'"), []string{"spec.oidc.redirectURL"}},
		{"protocol-relative redirectURL", oidc("redirectURL: '//evil.example.com/cb'"), []string{"spec.oidc.redirectURL"}},
		{"redirectURL with a fragment", oidc("redirectURL: '/cb#x'"), []string{"spec.oidc.redirectURL"}},
		{"redirectURL with a backslash", oidc(`redirectURL: '/\evil.example.com'`), []string{"spec.oidc.redirectURL"}},
		{"logout on the callback path", oidc("redirectURL: 'https://app.example.com/cb', logout: {path: /cb}"), []string{"spec.oidc.logout.path"}},
		{"logout path a URL", oidc("logout: {path: 'https://app.example.com/logout'}"), []string{"spec.oidc.logout.path"}},
		{"logout path with a query", oidc("logout: {path: '/logout?x=1'}"), []string{"spec.oidc.logout.path"}},
		{"javascript after logout", oidc("logout: {postLogoutRedirectURL: 'javascript:alert(1)'}"), []string{"spec.oidc.logout.postLogoutRedirectURL"}},
		{"SameSite None without Secure (5.83)", oidc("cookies: {sameSite: None, secure: false}"), []string{"spec.oidc.cookies.sameSite"}},
		{"unknown SameSite", oidc("cookies: {sameSite: Loose}"), []string{"spec.oidc.cookies.sameSite"}},
		{"namePrefix not a token", oidc("cookies: {namePrefix: 'a;b'}"), []string{"spec.oidc.cookies.namePrefix"}},
		{"bad cookie domain", oidc("cookies: {domain: 'Example..com'}"), []string{"spec.oidc.cookies.domain"}},
		{"absoluteTimeout 0s", oidc("session: {absoluteTimeout: 0s}"), []string{"spec.oidc.session.absoluteTimeout"}},
		{"ID token to Host", oidc("forwardIDToken: {header: host}"), []string{"spec.oidc.forwardIDToken.header"}},
		{"ID token to a pseudo-header", oidc("forwardIDToken: {header: ':authority'}"), []string{"spec.oidc.forwardIDToken.header"}},
		{"oidc claim with an empty segment", oidc("claimToHeaders: [{claim: '.email', header: x-email}]"), []string{"spec.oidc.claimToHeaders[0].claim"}},
		{"oidc claim to Upgrade", oidc("claimToHeaders: [{claim: email, header: upgrade}]"), []string{"spec.oidc.claimToHeaders[0].header"}},
		{"scope with a space", oidc("scopes: [openid, 'a b']"), []string{"spec.oidc.scopes[1]"}},
		{"duplicate scope", oidc("scopes: [email, email]"), []string{"spec.oidc.scopes[2]"}},
		{"17 scopes", oidc("scopes: [openid, " + n(16, numbered("s")) + "]"), []string{"spec.oidc.scopes"}},
		{"passThroughBearer without jwt", oidc("passThroughBearer: true"), []string{"spec.oidc.passThroughBearer"}},
		{"unknown unauthenticatedAction", oidc("unauthenticatedAction: Login"), []string{"spec.oidc.unauthenticatedAction"}},

		// authorization.
		{"no defaultAction (5.101)", route + "authorization: {rules: [{name: r, action: Allow, match: {authenticated: true}}]}", []string{"spec.authorization.defaultAction"}},
		{"unknown defaultAction", route + "authorization: {defaultAction: Maybe, rules: [{name: r, action: Allow, match: {authenticated: true}}]}", []string{"spec.authorization.defaultAction"}},
		{"no rules", route + "authorization: {defaultAction: Deny}", []string{"spec.authorization.rules"}},
		{"65 rules", authz(n(65, func(i int) string { return "{name: r" + strconv.Itoa(i) + ", action: Allow, match: {methods: [GET]}}" })), []string{"spec.authorization.rules"}},
		{"duplicate rule names", authz("{name: r, action: Allow, match: {methods: [GET]}}, {name: r, action: Deny, match: {methods: [PUT]}}"), []string{"spec.authorization.rules[1].name"}},
		{"rule name not a DNS label", authz("{name: R_1, action: Allow, match: {methods: [GET]}}"), []string{"spec.authorization.rules[0].name"}},
		{"rule without action", authz("{name: r, match: {methods: [GET]}}"), []string{"spec.authorization.rules[0].action"}},
		{"unknown action", authz("{name: r, action: Permit, match: {methods: [GET]}}"), []string{"spec.authorization.rules[0].action"}},
		{"rule without match", authz("{name: r, action: Allow}"), []string{"spec.authorization.rules[0].match"}},
		{"rule with an empty match", match(""), []string{"spec.authorization.rules[0].match"}},
		{"unknown method", match("methods: [get]"), []string{"spec.authorization.rules[0].match.methods[0]"}},
		{"regex path", match("paths: [{type: RegularExpression, value: '/a.*'}]"), []string{"spec.authorization.rules[0].match.paths[0].type"}},
		{"relative path", match("paths: [{value: admin}]"), []string{"spec.authorization.rules[0].match.paths[0].value"}},
		{"17 paths", match("paths: [" + n(17, same("{value: /a}")) + "]"), []string{"spec.authorization.rules[0].match.paths"}},
		{"bad CIDR", match("clientCIDRs: [192.0.2.0/33]"), []string{"spec.authorization.rules[0].match.clientCIDRs[0]"}},
		{"33 CIDRs", match("clientCIDRs: [" + n(33, same("10.0.0.0/8")) + "]"), []string{"spec.authorization.rules[0].match.clientCIDRs"}},
		{"header without values", match("headers: [{name: x-env, values: []}]"), []string{"spec.authorization.rules[0].match.headers[0].values"}},
		{"header bad name", match("headers: [{name: 'x env', values: [a]}]"), []string{"spec.authorization.rules[0].match.headers[0].name"}},
		{"17 headers", match("headers: [" + n(17, same("{name: x, values: [a]}")) + "]"), []string{"spec.authorization.rules[0].match.headers"}},
		{"user with a colon", match("users: ['a:b']"), []string{"spec.authorization.rules[0].match.users[0]"}},
		{"duplicate user", match("users: [a, a]"), []string{"spec.authorization.rules[0].match.users[1]"}},
		{"empty jwt matcher", match("jwt: {}"), []string{"spec.authorization.rules[0].match.jwt"}},
		{"bad claim path", match("jwt: {claims: [{name: 'a..b', values: [x]}]}"), []string{"spec.authorization.rules[0].match.jwt.claims[0].name"}},
		{"claim without values", match("jwt: {claims: [{name: roles, values: []}]}"), []string{"spec.authorization.rules[0].match.jwt.claims[0].values"}},
		{"bad scope", match(`jwt: {scopes: ['a"b']}`), []string{"spec.authorization.rules[0].match.jwt.scopes[0]"}},
		{"unknown provider", route + "jwt: {providers: [" + provider + "]}\nauthorization: {defaultAction: Deny, rules: [{name: r, action: Allow, match: {jwt: {provider: other}}}]}",
			[]string{"spec.authorization.rules[0].match.jwt.provider"}},
		{"provider of an inherited jwt block", match("jwt: {provider: auth0}"), nil},

		// extAuth.
		{"neither grpc nor http", ext("timeout: 1s"), []string{"spec.extAuth"}},
		{"grpc and http", ext("grpc: {backendRef: " + opa + "}, http: {backendRef: " + opa + "}"), []string{"spec.extAuth.http"}},
		{"grpc without backendRef", ext("grpc: {}"), []string{"spec.extAuth.grpc.backendRef"}},
		{"authz service a Service", ext("grpc: {backendRef: {name: opa, kind: Service, port: 9191}}"), []string{"spec.extAuth.grpc.backendRef.group", "spec.extAuth.grpc.backendRef.kind"}},
		{"authz service in another group", ext("http: {backendRef: {group: gateway.apoxy.dev, kind: Backend, name: opa, port: 1}}"), []string{"spec.extAuth.http.backendRef.group"}},
		{"authz service without port", ext("http: {backendRef: {group: core.apoxy.dev, kind: Backend, name: opa}}"), []string{"spec.extAuth.http.backendRef.port"}},
		{"authz service port 70000", ext("http: {backendRef: {group: core.apoxy.dev, kind: Backend, name: opa, port: 70000}}"), []string{"spec.extAuth.http.backendRef.port"}},
		{"authz service bad namespace", ext("http: {backendRef: {group: core.apoxy.dev, kind: Backend, name: opa, namespace: A, port: 1}}"), []string{"spec.extAuth.http.backendRef.namespace"}},
		{"relative pathPrefix", ext("http: {backendRef: " + opa + ", pathPrefix: authz}"), []string{"spec.extAuth.http.pathPrefix"}},
		{"route metadata over http", ext("http: {backendRef: " + opa + "}, includeRouteMetadata: true"), []string{"spec.extAuth.includeRouteMetadata"}},
		{"empty context extension key", ext("grpc: {backendRef: " + opa + ", contextExtensions: {'': x}}"), []string{`spec.extAuth.grpc.contextExtensions[]`}},
		{"maxBytes 0", grpc("includeBody: {maxBytes: 0}"), []string{"spec.extAuth.includeBody.maxBytes"}},
		{"maxBytes over 1 MiB", grpc("includeBody: {maxBytes: 1048577}"), []string{"spec.extAuth.includeBody.maxBytes"}},
		{"check timeout 0s", grpc("timeout: 0s"), []string{"spec.extAuth.timeout"}},
		{"statusOnError 200", grpc("statusOnError: 200"), []string{"spec.extAuth.statusOnError"}},
		{"unknown failureMode", grpc("failureMode: Open"), []string{"spec.extAuth.failureMode"}},
		{"upstream header Host", grpc("headersToUpstream: [Host]"), []string{"spec.extAuth.headersToUpstream[0]"}},
		{"upstream header Keep-Alive", grpc("headersToUpstream: [x-a, keep-alive]"), []string{"spec.extAuth.headersToUpstream[1]"}},
		{"authz header pseudo", grpc("headersToAuthz: [':path']"), []string{"spec.extAuth.headersToAuthz[0]"}},
		{"authz header bad name", grpc("headersToAuthz: ['a b']"), []string{"spec.extAuth.headersToAuthz[0]"}},
		{"duplicate authz header", grpc("headersToAuthz: [X-A, x-a]"), []string{"spec.extAuth.headersToAuthz[1]"}},
		{"client header hop-by-hop", grpc("headersToClient: [TE]"), []string{"spec.extAuth.headersToClient[0]"}},
		{"65 upstream headers", grpc("headersToUpstream: [" + n(65, numbered("x-h")) + "]"), []string{"spec.extAuth.headersToUpstream"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, ValidateAuthPolicy(decodeAuth(t, tc.spec)), tc.want)
		})
	}
}

// TestAuthPolicyMessages: the messages of the rules the design calls out say what to do.
func TestAuthPolicyMessages(t *testing.T) {
	for spec, want := range map[string]string{
		route: "policy sets no feature: set at least one of cors, basicAuth, jwt, oidc, authorization or extAuth",
		route + "authorization: {rules: [{name: r, action: Allow, match: {authenticated: true}}]}":                     "set defaultAction: Allow or Deny",
		route + "oidc: {" + oidcBase + ", cookies: {sameSite: None, secure: false}}":                                   "set secure: true, or use Lax",
		route + "jwt: {providers: [{name: a, issuer: i, jwks: {remote: {uri: 'http://idp/k'}}}]}":                      "must use https",
		route + "jwt: {providers: [{name: a, issuer: i, " + remote + ", algorithms: [none]}]}":                         `"none" (unsigned tokens) is never accepted`,
		route + "jwt: {providers: [{name: a, issuer: i, " + remote + ", algorithms: [HS512]}]}":                        "use jwks.local",
		route + "cors: {allowOrigins: ['https://a.example.com', '*']}":                                                 `"*" allows every origin, so it must be the only entry`,
		route + "jwt: {disabled: true, forwardToken: false}":                                                           "remove forwardToken, or remove disabled",
		route + "jwt: {providers: [{name: a, issuer: i, " + remote + ", claimToHeaders: [{claim: x, header: host}]}]}": "Host cannot be set",
	} {
		errs := ValidateAuthPolicy(decodeAuth(t, spec))
		if !strings.Contains(errs.ToAggregate().Error(), want) {
			t.Errorf("%s:\nerrors %v\ndo not say %q", spec, errs, want)
		}
	}
}

// TestAuthPolicyRejectedByTheType: what the Go types cannot hold is refused when decoding
// (400 from the API server with strict field validation), before validation runs.
func TestAuthPolicyRejectedByTheType(t *testing.T) {
	for name, spec := range map[string]string{
		"TrafficPolicy block":         route + "rateLimit: {}",
		"unknown jwt field":           route + "jwt: {providers: [{name: a, issuer: i, jwksUri: 'https://a'}]}",
		"maxBytes as text":            route + "extAuth: {grpc: {backendRef: " + opa + "}, includeBody: {maxBytes: 16k}}",
		"target in another namespace": "targetRefs: [{kind: HTTPRoute, name: a, namespace: other}]\ncors: {allowOrigins: ['*']}",
		"secure as text":              route + "oidc: {cookies: {secure: yes-please}}",
	} {
		t.Run(name, func(t *testing.T) {
			var s AuthPolicySpec
			if err := yaml.UnmarshalStrict([]byte(spec), &s); err == nil {
				t.Errorf("decoded %q", spec)
			}
		})
	}
}

// TestAuthPolicyDefaults: defaults fill only blocks that are set (and not disabled), are
// persisted as values, never change what the user set, and survive storage unchanged.
func TestAuthPolicyDefaults(t *testing.T) {
	t.Run("absent blocks stay absent", func(t *testing.T) {
		ap := decodeAuth(t, "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: g}]\ncors: {allowOrigins: ['*']}")
		s := ap.Spec
		if s.BasicAuth != nil || s.JWT != nil || s.OIDC != nil || s.Authorization != nil || s.ExtAuth != nil {
			t.Errorf("absent blocks were filled: %s", js(s))
		}
		if s.Strategy != StrategyDefault || s.TargetRefs[0].Group != "gateway.apoxy.dev" {
			t.Errorf("strategy %q, group %q", s.Strategy, s.TargetRefs[0].Group)
		}
	})
	t.Run("disabled blocks stay bare", func(t *testing.T) {
		ap := decodeAuth(t, route+"cors: {disabled: true}\nbasicAuth: {disabled: true}\njwt: {disabled: true}\noidc: {disabled: true}\nauthorization: {disabled: true}\nextAuth: {disabled: true}")
		s := ap.Spec
		for name, b := range map[string]any{"cors": s.CORS, "basicAuth": s.BasicAuth, "jwt": s.JWT, "oidc": s.OIDC, "authorization": s.Authorization, "extAuth": s.ExtAuth} {
			v := reflect.ValueOf(b).Elem()
			bare := reflect.New(v.Type()).Elem()
			bare.FieldByName("Disabled").SetBool(true)
			if !reflect.DeepEqual(v.Interface(), bare.Interface()) {
				t.Errorf("disabled %s got defaults: %s", name, js(b))
			}
		}
		if errs := ValidateAuthPolicy(ap); len(errs) > 0 {
			t.Error(errs)
		}
	})
	for name, tc := range map[string]struct{ spec, want string }{
		"cors": {route + "cors: {allowOrigins: ['*']}", `{"allowOrigins":["*"],"maxAge":"5s"}`},
		"basicAuth": {route + "basicAuth: {usersRef: {name: admin-users}}",
			`{"usersRef":{"name":"admin-users","key":".htpasswd"},"realm":"Restricted"}`},
		"basicAuth keeps the user's values": {route + "basicAuth: {usersRef: {name: u, key: users}, realm: Admin}",
			`{"usersRef":{"name":"u","key":"users"},"realm":"Admin"}`},
		"jwt remote": {route + "jwt: {providers: [" + provider + "]}",
			`{"forwardToken":true,"providers":[{"name":"idp","issuer":"https://idp.example.com/","jwks":{"remote":{"uri":"https://idp.example.com/jwks.json","cacheDuration":"5m","timeout":"5s"}},` +
				`"extractFrom":{"headers":[{"name":"Authorization","prefix":"Bearer "}]},"clockSkew":"1m"}]}`},
		"jwt local, extractFrom kept": {route + "jwt: {forwardToken: false, providers: [{name: l, issuer: i, jwks: {local: {secretRef: {name: k}}}, extractFrom: {cookies: [tok]}, clockSkew: 0s}]}",
			`{"forwardToken":false,"providers":[{"name":"l","issuer":"i","jwks":{"local":{"secretRef":{"name":"k","key":"jwks"}}},"extractFrom":{"cookies":["tok"]},"clockSkew":"0s"}]}`},
		"oidc": {route + "oidc: {" + oidcBase + ", scopes: [email]}",
			`{"provider":{"issuer":"https://accounts.example.com"},"clientID":"app","clientSecretRef":{"name":"app-oidc","key":"client-secret"},"scopes":["openid","email"],` +
				`"redirectURL":"/oauth2/callback","logout":{"path":"/logout","postLogoutRedirectURL":"/"},"cookies":{"sameSite":"Lax","secure":true},` +
				`"session":{"absoluteTimeout":"24h","refreshTokens":true},"unauthenticatedAction":"Auto"}`},
		"oidc keeps openid where it is and the user's values": {route + "oidc: {" + oidcBase + ", scopes: [email, openid], redirectURL: /cb, logout: {path: /out}, cookies: {secure: false, sameSite: Strict}, session: {refreshTokens: false}, unauthenticatedAction: Deny}",
			`{"provider":{"issuer":"https://accounts.example.com"},"clientID":"app","clientSecretRef":{"name":"app-oidc","key":"client-secret"},"scopes":["email","openid"],` +
				`"redirectURL":"/cb","logout":{"path":"/out","postLogoutRedirectURL":"/"},"cookies":{"sameSite":"Strict","secure":false},` +
				`"session":{"absoluteTimeout":"24h","refreshTokens":false},"unauthenticatedAction":"Deny"}`},
		"oidc without scopes": {route + "oidc: {" + oidcBase + "}", ""},
		"authorization": {route + "authorization: {defaultAction: Deny, rules: [{name: a, action: Allow, match: {paths: [{value: /admin}, {type: Exact, value: /x}]}}]}",
			`{"defaultAction":"Deny","rules":[{"name":"a","action":"Allow","match":{"paths":[{"type":"PathPrefix","value":"/admin"},{"type":"Exact","value":"/x"}]}}]}`},
		"extAuth": {route + "extAuth: {grpc: {backendRef: " + opa + "}}",
			`{"grpc":{"backendRef":{"group":"core.apoxy.dev","kind":"Backend","name":"opa","port":9191}},"timeout":"2s","failureMode":"FailClosed","statusOnError":403}`},
		"extAuth with a body": {route + "extAuth: {http: {backendRef: " + opa + "}, includeBody: {maxBytes: 16384}, timeout: 500ms, failureMode: FailOpen, statusOnError: 503}",
			`{"http":{"backendRef":{"group":"core.apoxy.dev","kind":"Backend","name":"opa","port":9191}},"includeBody":{"maxBytes":16384,"allowPartial":false},"timeout":"500ms","failureMode":"FailOpen","statusOnError":503}`},
	} {
		t.Run(name, func(t *testing.T) {
			ap := decodeAuth(t, tc.spec)
			s := ap.Spec
			var block any
			for _, b := range []any{s.CORS, s.BasicAuth, s.JWT, s.OIDC, s.Authorization, s.ExtAuth} {
				if !reflect.ValueOf(b).IsNil() {
					block = b
				}
			}
			if got := js(block); tc.want != "" && got != tc.want {
				t.Errorf("defaulted to\n%s\nwant\n%s", got, tc.want)
			}
			if errs := ValidateAuthPolicy(ap); len(errs) > 0 {
				t.Errorf("defaults do not validate: %v", errs)
			}
			checkStoredUnchanged(t, ap, SetDefaultsAuthPolicy)
		})
	}
	t.Run("oidc without scopes gets openid", func(t *testing.T) {
		if s := decodeAuth(t, route+"oidc: {"+oidcBase+"}").Spec.OIDC.Scopes; !reflect.DeepEqual(s, []string{"openid"}) {
			t.Errorf("scopes = %q", s)
		}
	})
}

// TestAuthPolicyExamples: the design's AuthPolicy examples (§4.3-§4.7, docs/examples/policy)
// decode strictly, default and validate with no error; the defaults land in the blocks they set.
func TestAuthPolicyExamples(t *testing.T) {
	files, err := filepath.Glob("../../../docs/examples/policy/4.[3-7]-*.yaml")
	if err != nil || len(files) != 5 {
		t.Fatalf("examples: %v %v (want §4.3-§4.7)", files, err)
	}
	policies := map[string]*AuthPolicy{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			var tm struct{ Kind string }
			if err := yaml.Unmarshal(doc, &tm); err != nil || tm.Kind != "AuthPolicy" {
				continue
			}
			ap := &AuthPolicy{}
			if err := yaml.UnmarshalStrict(doc, ap); err != nil {
				t.Fatalf("%s: %v", filepath.Base(f), err)
			}
			SetDefaultsAuthPolicy(ap)
			if errs := ValidateAuthPolicy(ap); len(errs) > 0 {
				t.Errorf("%s %s: %v", filepath.Base(f), ap.Name, errs)
			}
			policies[ap.Name] = ap
		}
	}
	if len(policies) != 5 {
		t.Fatalf("AuthPolicies %d, want 5", len(policies))
	}
	if p := policies["api-jwt"].Spec.JWT; *p.ForwardToken || *p.Providers[0].JWKS.Remote.CacheDuration != "10m" ||
		p.Providers[1].ExtractFrom.Cookies[0] != "kc_access" || len(p.Providers[1].ExtractFrom.Headers) != 1 ||
		p.Providers[0].ExtractFrom.Headers[0].Prefix != "Bearer " {
		t.Errorf("api-jwt: %s", js(p))
	}
	if o := policies["grafana-login"].Spec.OIDC; o.ClientSecretRef.Key != "client-secret" || *o.Cookies.Secure != true || o.Cookies.Domain != "ops.example.com" || *o.Session.AbsoluteTimeout != "24h" {
		t.Errorf("grafana-login: %s", js(o))
	}
	if b := policies["admin-basic"].Spec.BasicAuth; b.UsersRef.Key != ".htpasswd" || b.Realm != "Admin" {
		t.Errorf("admin-basic: %s", js(b))
	}
	if e := policies["payments-authz"].Spec.ExtAuth; *e.Timeout != "500ms" || *e.StatusOnError != 503 || *e.IncludeBody.AllowPartial {
		t.Errorf("payments-authz: %s", js(e))
	}
	if c := policies["api-cors"].Spec; *c.CORS.MaxAge != "10m" || c.JWT != nil {
		t.Errorf("api-cors: %s", js(c))
	}
}

func TestParseClaimPath(t *testing.T) {
	for in, want := range map[string][]string{
		"sub":                        {"sub"},
		"realm_access.roles":         {"realm_access", "roles"},
		`https://example\.com/org`:   {"https://example.com/org"},
		`a\\.b`:                      {`a\`, "b"},
		`a\.b.c\.d`:                  {"a.b", "c.d"},
		"https://example.com/claims": {"https://example", "com/claims"},
	} {
		if got, err := ParseClaimPath(in); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseClaimPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "a.", ".a", "a..b", `a\`, `a\b`, `\`} {
		if got, err := ParseClaimPath(in); err == nil {
			t.Errorf("ParseClaimPath(%q) = %q, want an error", in, got)
		}
	}
}

func TestOIDCCookieNamePrefix(t *testing.T) {
	a := &OIDC{Provider: &OIDCProvider{Issuer: "https://accounts.google.com"}, ClientID: "dashboard"}
	b := &OIDC{Provider: &OIDCProvider{Issuer: "https://accounts.google.com"}, ClientID: "other"}
	pa := OIDCCookieNamePrefix(a)
	if !strings.HasPrefix(pa, "_apoxy_oidc_") || len(pa) != len("_apoxy_oidc_")+8 || pa != OIDCCookieNamePrefix(a.DeepCopy()) {
		t.Errorf("prefix %q is not stable or not of the documented form", pa)
	}
	if OIDCCookieNamePrefix(b) == pa {
		t.Error("two clients share a cookie prefix")
	}
	a.Cookies = &OIDCCookies{NamePrefix: "_mine_"}
	if got := OIDCCookieNamePrefix(a); got != "_mine_" {
		t.Errorf("namePrefix ignored: %q", got)
	}
}

func TestAuthPolicyIsAPolicy(t *testing.T) {
	ap := &AuthPolicy{}
	ap.Spec.TargetRefs = decodeAuth(t, route+"cors: {allowOrigins: ['*']}").Spec.TargetRefs
	var p Policy = ap
	if p.GetStrategy() != StrategyDefault || len(p.GetTargetRefs()) != 1 || p.GetStatus() != &ap.Status {
		t.Errorf("Policy view of an AuthPolicy: %v %v", p.GetStrategy(), p.GetTargetRefs())
	}
	ap.Spec.Strategy = StrategyOverride
	if p.GetStrategy() != StrategyOverride {
		t.Error("strategy not returned")
	}
}

// FuzzValidateAuthPolicy: any YAML or JSON that decodes into an AuthPolicy can be defaulted and
// validated without panicking; defaulting is idempotent and survives a JSON round trip (what
// storage does).
func FuzzValidateAuthPolicy(f *testing.F) {
	f.Add(`{"spec":{"targetRefs":[{"kind":"HTTPRoute","name":"api"}],"cors":{"allowOrigins":["https://app.example.com","https://*.preview.example.com"],"allowMethods":["GET","POST"],"maxAge":"10m","allowCredentials":true}}}`)
	f.Add("spec: {targetRefs: [{kind: HTTPRoute, name: api}], jwt: {forwardToken: false, providers: [{name: auth0, issuer: 'https://example.eu.auth0.com/', audiences: [api], jwks: {remote: {uri: 'https://example.eu.auth0.com/.well-known/jwks.json', cacheDuration: 10m, backendRef: {group: core.apoxy.dev, kind: Backend, name: kc, port: 443}}}, claimToHeaders: [{claim: 'https://example\\.com/org', header: x-org-id}], extractFrom: {headers: [{name: Authorization, prefix: 'Bearer '}], cookies: [kc]}}]}}")
	f.Add("spec: {targetRefs: [{kind: HTTPRoute, name: g}], oidc: {provider: {issuer: 'https://accounts.google.com'}, clientID: x, clientSecretRef: {name: s}, scopes: [openid, email], redirectURL: /oauth2/callback, logout: {path: /logout, postLogoutRedirectURL: /}, cookies: {domain: ops.example.com, sameSite: None, secure: false}, claimToHeaders: [{claim: email, header: x-webauth-user}]}, authorization: {defaultAction: Deny, rules: [{name: staff, action: Allow, match: {authenticated: true, jwt: {claims: [{name: hd, values: [example.com]}]}}}]}}")
	f.Add("spec: {targetRefs: [{kind: HTTPRoute, name: site, sectionName: admin}], basicAuth: {usersRef: {name: admin-users}, realm: Admin, forwardUsernameHeader: x-auth-user}}")
	f.Add("spec: {targetRefs: [{kind: HTTPRoute, name: p}], extAuth: {grpc: {backendRef: {group: core.apoxy.dev, kind: Backend, name: opa, port: 9191}, contextExtensions: {package: payments.authz}}, headersToAuthz: [authorization], headersToUpstream: [x-tenant-id], includeBody: {maxBytes: 16384}, timeout: 500ms, failureMode: FailClosed, statusOnError: 503}}")
	f.Add(`{"spec":{"targetRefs":[{"kind":"Gateway","name":"g"}],"strategy":"Override","jwt":{"disabled":true,"providers":[{}]},"cors":{"allowOrigins":["https://[::1]:0","*"]},"authorization":{"rules":[{"match":{"paths":[{}],"jwt":{}}}]},"extAuth":{"grpc":{"backendRef":{"name":"x"}},"http":{}}}}`)
	f.Fuzz(func(t *testing.T, in string) {
		fuzzPolicy(t, in, SetDefaultsAuthPolicy, ValidateAuthPolicy, func(ap *AuthPolicy) {
			if ap.Spec.OIDC != nil {
				_ = OIDCCookieNamePrefix(ap.Spec.OIDC)
			}
		})
	})
}
