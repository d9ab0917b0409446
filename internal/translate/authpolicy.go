package translate

import (
	"cmp"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	policyv1a1 "apoxy.dev/apoxy/api/policy/v1alpha1"
	"apoxy.dev/apoxy/internal/auth/htpasswd"
	authjwt "apoxy.dev/apoxy/internal/auth/jwt"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

// AuthPolicy (docs/policy.md, design §2.4): attached, merged and reported by the code every
// policy kind shares (policyattach.go, policyeval.go). Each policy's blocks are compiled to IR
// once per translation (its Secrets and Backends resolved, its ResolvedRefs condition
// decided); a route rule takes each block from the level that wins it. The route rule's own
// CORS filter beats a policy's cors block (Rule D).

// ConditionAuthPolicyAffected is the condition type on Gateways, listeners and route parents
// that an accepted AuthPolicy targets directly (GEP-713 `<Kind>Affected`).
const ConditionAuthPolicyAffected = "policy.apoxy.dev/AuthPolicyAffected"

// apLevels are the AuthPolicies that apply to one route rule under one listener.
type apLevels = policyLevels[*policyv1a1.AuthPolicy]

// apCompiled is one AuthPolicy's blocks in IR, and what resolving its references found.
type apCompiled struct {
	cors  *ir.CORS
	basic *ir.BasicAuth
	jwt   *ir.JWTAuth
	oidc  *ir.OIDCAuth
	authz *ir.Authorization
	ext   *ir.ExtAuth
	// refs are the reference failures (ResolvedRefs=False: the first one's reason, every
	// message); warnings keep ResolvedRefs True with their reason (InsecureHash).
	refs     []refProblem
	warnings []refProblem
}

type refProblem struct{ reason, msg string }

func (c *apCompiled) fail(reason, format string, args ...any) string {
	msg := fmt.Sprintf(format, args...)
	c.refs = append(c.refs, refProblem{reason, msg})
	return msg
}

// apBlocks are AuthPolicy's feature blocks, in the order `apoxy explain` prints them.
var apBlocks = []policyBlock[*policyv1a1.AuthPolicy]{
	{name: "cors", get: func(p *policyv1a1.AuthPolicy) (bool, bool) {
		b := p.Spec.CORS
		return b != nil, b != nil && b.Disabled
	}, ruleOwn: func(info ruleInfo) (string, bool) { return "its CORS filter", info.cors }},
	{name: "basicAuth", get: func(p *policyv1a1.AuthPolicy) (bool, bool) {
		b := p.Spec.BasicAuth
		return b != nil, b != nil && b.Disabled
	}},
	{name: "jwt", get: func(p *policyv1a1.AuthPolicy) (bool, bool) {
		b := p.Spec.JWT
		return b != nil, b != nil && b.Disabled
	}},
	{name: "oidc", get: func(p *policyv1a1.AuthPolicy) (bool, bool) {
		b := p.Spec.OIDC
		return b != nil, b != nil && b.Disabled
	}},
	{name: "authorization", get: func(p *policyv1a1.AuthPolicy) (bool, bool) {
		b := p.Spec.Authorization
		return b != nil, b != nil && b.Disabled
	}},
	{name: "extAuth", get: func(p *policyv1a1.AuthPolicy) (bool, bool) {
		b := p.Spec.ExtAuth
		return b != nil, b != nil && b.Disabled
	}},
}

// indexAuthPolicies assigns each exact target to its oldest AuthPolicy and compiles every
// policy's blocks.
func (t *translator) indexAuthPolicies() {
	t.ap = indexPolicies(t, "AuthPolicy", t.set.AuthPolicies, t.apInvalid)
	t.apc = map[*policyv1a1.AuthPolicy]*apCompiled{}
	for _, p := range t.set.AuthPolicies {
		t.apc[p] = t.compileAuthPolicy(p)
	}
}

// apInvalid says what makes an AuthPolicy unusable for a target though it is well-formed:
// insecure OIDC cookies on an HTTPS listener, or authorization rules matching JWT claims with
// no jwt or oidc block in effect there (design §3.2).
func (t *translator) apInvalid(p *policyv1a1.AuthPolicy, tg policyTarget) string {
	if o := p.Spec.OIDC; o != nil && !o.Disabled && o.Cookies != nil && o.Cookies.Secure != nil && !*o.Cookies.Secure {
		for _, l := range t.targetListeners(tg) {
			if l.Protocol == gwapiv1.HTTPSProtocolType {
				return fmt.Sprintf("oidc.cookies.secure is false but listener %s is HTTPS: session cookies would be sent without the Secure attribute; remove secure: false", l.Name)
			}
		}
	}
	if a := p.Spec.Authorization; a != nil && !a.Disabled && slices.ContainsFunc(a.Rules, func(r policyv1a1.AuthorizationRule) bool {
		return r.Match != nil && r.Match.JWT != nil
	}) && !t.apIdentityInEffect(p, tg) {
		return "authorization rules match JWT claims, but neither this policy nor one on a less specific target sets jwt or oidc: add a jwt or oidc block"
	}
	return ""
}

// targetListeners are the Gateway listeners a target's traffic may arrive on.
func (t *translator) targetListeners(tg policyTarget) []gwapiv1.Listener {
	var out []gwapiv1.Listener
	add := func(ns, name, section string) {
		g := t.gateways[status.KeyOf(ns, name)]
		if g == nil {
			return
		}
		for _, l := range g.gw.Spec.Listeners {
			if section == "" || string(l.Name) == section {
				out = append(out, l)
			}
		}
	}
	if tg.kind == "Gateway" {
		add(tg.namespace, tg.name, tg.section)
		return out
	}
	for _, pr := range t.routeParents(tg.kind, tg.namespace, tg.name) {
		if deref(pr.Kind, "Gateway") == "Gateway" {
			add(string(deref(pr.Namespace, gwapiv1.Namespace(tg.namespace))), string(pr.Name), ptrString(pr.SectionName))
		}
	}
	return out
}

// apIdentityInEffect reports whether p, or an AuthPolicy on a less specific target of tg,
// sets a jwt or oidc block that verifies tokens.
func (t *translator) apIdentityInEffect(p *policyv1a1.AuthPolicy, tg policyTarget) bool {
	verifies := func(p *policyv1a1.AuthPolicy) bool {
		return p.Spec.JWT != nil && !p.Spec.JWT.Disabled || p.Spec.OIDC != nil && !p.Spec.OIDC.Disabled
	}
	if verifies(p) {
		return true
	}
	var above []policyTarget
	switch tg.kind {
	case "Gateway":
		if tg.section != "" {
			above = append(above, policyTarget{"Gateway", tg.namespace, tg.name, ""})
		}
	default:
		if tg.section != "" {
			above = append(above, policyTarget{tg.kind, tg.namespace, tg.name, ""})
		}
		for _, pr := range t.routeParents(tg.kind, tg.namespace, tg.name) {
			ns := string(deref(pr.Namespace, gwapiv1.Namespace(tg.namespace)))
			above = append(above, policyTarget{"Gateway", ns, string(pr.Name), ""}, policyTarget{"Gateway", ns, string(pr.Name), ptrString(pr.SectionName)})
		}
	}
	for _, q := range t.set.AuthPolicies {
		if q == p || !verifies(q) {
			continue
		}
		for _, ref := range q.Spec.TargetRefs {
			if slices.Contains(above, policyTarget{string(ref.Kind), q.Namespace, string(ref.Name), ptrString(ref.SectionName)}) {
				return true
			}
		}
	}
	return false
}

// applyAuthPolicy sets a route's effective AuthPolicy from its levels and records where each
// block came from.
func (t *translator) applyAuthPolicy(r *ir.Route, ev *policyEval[*policyv1a1.AuthPolicy]) {
	lv := ev.lv
	pick := func(get func(*policyv1a1.AuthPolicy) bool) *apCompiled {
		w := pickLevel(lv, get)
		if w < 0 {
			return nil
		}
		return t.apc[lv[w]]
	}
	var a ir.Auth
	if c := pick(func(p *policyv1a1.AuthPolicy) bool { return p.Spec.CORS != nil }); c != nil && !ev.info.cors {
		r.CORS = c.cors
	}
	if c := pick(func(p *policyv1a1.AuthPolicy) bool { return p.Spec.BasicAuth != nil }); c != nil {
		a.Basic = c.basic
	}
	if c := pick(func(p *policyv1a1.AuthPolicy) bool { return p.Spec.JWT != nil }); c != nil {
		a.JWT = c.jwt
	}
	if c := pick(func(p *policyv1a1.AuthPolicy) bool { return p.Spec.OIDC != nil }); c != nil {
		a.OIDC = c.oidc
	}
	if c := pick(func(p *policyv1a1.AuthPolicy) bool { return p.Spec.Authorization != nil }); c != nil {
		a.Authorization = c.authz
	}
	if c := pick(func(p *policyv1a1.AuthPolicy) bool { return p.Spec.ExtAuth != nil }); c != nil {
		a.ExtAuth = c.ext
	}
	if a != (ir.Auth{}) {
		r.Auth = &a
	}
	ev.recordBlocks(apBlocks, nil)
}

// compileAuthPolicy compiles every block a policy sets (nil for disabled ones).
func (t *translator) compileAuthPolicy(p *policyv1a1.AuthPolicy) *apCompiled {
	c := &apCompiled{}
	s := &p.Spec
	if b := s.CORS; b != nil && !b.Disabled {
		c.cors = &ir.CORS{AllowOrigins: b.AllowOrigins, AllowMethods: b.AllowMethods, AllowHeaders: b.AllowHeaders, ExposeHeaders: b.ExposeHeaders,
			MaxAge: ir.Duration(durOr(b.MaxAge, 5*time.Second)), AllowCredentials: b.AllowCredentials}
	}
	if b := s.BasicAuth; b != nil && !b.Disabled {
		c.basic = t.apBasicAuth(p, b, c)
	}
	if b := s.JWT; b != nil && !b.Disabled {
		c.jwt = t.apJWT(p, b, c)
	}
	if b := s.OIDC; b != nil && !b.Disabled {
		c.oidc = t.apOIDC(p, b, c)
	}
	if b := s.Authorization; b != nil && !b.Disabled {
		c.authz = t.apAuthorization(p, b)
	}
	if b := s.ExtAuth; b != nil && !b.Disabled {
		c.ext = t.apExtAuth(p, b, c)
	}
	return c
}

// authBlock is what every compiled block of p carries.
func (t *translator) authBlock(p *policyv1a1.AuthPolicy) ir.AuthBlock {
	return ir.AuthBlock{Policy: policyKey(p), ID: t.scoped(policyKey(p))}
}

func durOr(d *gwapiv1.Duration, def time.Duration) time.Duration {
	if v, ok := policyv1a1.ParseDuration(deref(d, "")); ok {
		return v
	}
	return def
}

// apSecret reads a key of a Secret an AuthPolicy names (in its namespace unless the reference
// says otherwise, which needs a ReferenceGrant). A failure is recorded in c and returned as
// the block's reason to fail closed.
func (t *translator) apSecret(p *policyv1a1.AuthPolicy, field string, ref *policyv1a1.SecretRef, defKey string, c *apCompiled) ([]byte, string, string) {
	if ref == nil {
		return nil, "", c.fail("InvalidSecret", "%s: no Secret named", field)
	}
	ns := cmp.Or(ref.Namespace, p.Namespace)
	key := cmp.Or(ref.Key, defKey)
	id := ns + "/" + ref.Name + "#" + key
	if !t.refGrantAllows(policyv1a1.GroupName, "AuthPolicy", p.Namespace, "", "Secret", ns, ref.Name) {
		return nil, id, c.fail("RefNotPermitted", "%s: Secret %s/%s is in another namespace and no ReferenceGrant allows it", field, ns, ref.Name)
	}
	sec, ok := t.secrets[status.KeyOf(ns, ref.Name)]
	if !ok {
		return nil, id, c.fail("SecretNotFound", "%s: Secret %s/%s not found", field, ns, ref.Name)
	}
	data, ok := sec.Data[key]
	if !ok && sec.StringData[key] != "" {
		data, ok = []byte(sec.StringData[key]), true
	}
	if !ok {
		return nil, id, c.fail("InvalidSecret", "%s: Secret %s/%s has no key %q", field, ns, ref.Name, key)
	}
	return data, id, ""
}

// apParsedSecret reads a Secret key and checks it with parse. A version that does not parse
// is refused (InvalidSecret, with parse's message, which names a line, never content) and
// the last version that did stays in force when there is one (Options.Memory).
func (t *translator) apParsedSecret(p *policyv1a1.AuthPolicy, field string, ref *policyv1a1.SecretRef, defKey string, c *apCompiled, parse func([]byte) error) ([]byte, string) {
	data, id, why := t.apSecret(p, field, ref, defKey, c)
	if why != "" {
		return nil, why
	}
	if err := parse(data); err != nil {
		msg := c.fail("InvalidSecret", "%s: Secret %s: %v", field, strings.Split(id, "#")[0], err)
		if good, ok := t.opts.Memory.lastGood(id); ok {
			c.refs[len(c.refs)-1].msg += " (the last version that parsed stays in force)"
			return good, ""
		}
		return nil, msg
	}
	t.opts.Memory.remember(id, data)
	return data, ""
}

func (t *translator) apBasicAuth(p *policyv1a1.AuthPolicy, b *policyv1a1.BasicAuth, c *apCompiled) *ir.BasicAuth {
	out := &ir.BasicAuth{AuthBlock: t.authBlock(p), Realm: cmp.Or(b.Realm, "Restricted"),
		ForwardUsernameHeader: b.ForwardUsernameHeader, ForwardCredentials: b.ForwardCredentials}
	var insecure []string
	data, why := t.apParsedSecret(p, "basicAuth.usersRef", b.UsersRef, ".htpasswd", c, func(d []byte) error {
		f, err := htpasswd.Parse(d)
		if err == nil {
			insecure = f.Insecure()
		}
		return err
	})
	if why != "" {
		out.Unavailable = why
		return out
	}
	if len(insecure) > 0 {
		c.warnings = append(c.warnings, refProblem{"InsecureHash", fmt.Sprintf("basicAuth.usersRef: %d user(s) have {SHA}/{SSHA} hashes, which are fast to brute-force: re-create them with htpasswd -B", len(insecure))})
	}
	out.Users = ir.SecretString(data)
	return out
}

func (t *translator) apJWT(p *policyv1a1.AuthPolicy, b *policyv1a1.JWT, c *apCompiled) *ir.JWTAuth {
	out := &ir.JWTAuth{AuthBlock: t.authBlock(p), Optional: b.Optional, ForwardToken: deref(b.ForwardToken, true)}
	for i, pr := range b.Providers {
		field := fmt.Sprintf("jwt.providers[%d]", i)
		ip := ir.JWTProvider{Name: pr.Name, Issuer: pr.Issuer, Audiences: pr.Audiences, ClockSkew: ir.Duration(durOr(pr.ClockSkew, time.Minute))}
		for _, a := range pr.Algorithms {
			ip.Algorithms = append(ip.Algorithms, string(a))
		}
		switch {
		case pr.JWKS != nil && pr.JWKS.Remote != nil:
			r := pr.JWKS.Remote
			ip.RemoteJWKS = &ir.RemoteJWKS{URI: r.URI, CacheDuration: ir.Duration(durOr(r.CacheDuration, 5*time.Minute)), Timeout: ir.Duration(durOr(r.Timeout, 5*time.Second))}
			if r.BackendRef == nil {
				ip.RemoteJWKS.Backend, ip.RemoteJWKS.BackendPort = t.urlBackend(p, r.URI)
			} else {
				name, why := t.apBackend(p, field+".jwks.remote.backendRef", r.BackendRef, c)
				if why != "" {
					out.Unavailable = why
				}
				ip.RemoteJWKS.Backend, ip.RemoteJWKS.BackendPort = name, int32(deref(r.BackendRef.Port, 443))
			}
		case pr.JWKS != nil && pr.JWKS.Local != nil:
			data, why := t.apParsedSecret(p, field+".jwks.local.secretRef", pr.JWKS.Local.SecretRef, "jwks", c, func(d []byte) error {
				_, err := authjwt.ParseJWKS(d)
				return err
			})
			if why != "" {
				out.Unavailable = why
			}
			ip.LocalJWKS = ir.SecretString(data)
		}
		if e := pr.ExtractFrom; e != nil {
			for _, h := range e.Headers {
				ip.Extract.Headers = append(ip.Extract.Headers, ir.HeaderPrefix{Name: h.Name, Prefix: h.Prefix})
			}
			ip.Extract.Cookies, ip.Extract.Query = e.Cookies, e.QueryParams
		} else {
			ip.Extract.Headers = []ir.HeaderPrefix{{Name: "Authorization", Prefix: "Bearer "}}
		}
		for _, ch := range pr.ClaimToHeaders {
			ip.ClaimToHeaders = append(ip.ClaimToHeaders, ir.ClaimHeader{Claim: ch.Claim, Header: ch.Header})
		}
		out.Providers = append(out.Providers, ip)
	}
	return out
}

func (t *translator) apOIDC(p *policyv1a1.AuthPolicy, b *policyv1a1.OIDC, c *apCompiled) *ir.OIDCAuth {
	out := &ir.OIDCAuth{AuthBlock: t.authBlock(p), ClientID: b.ClientID, Scopes: b.Scopes,
		RedirectURL: cmp.Or(b.RedirectURL, "/oauth2/callback"), LogoutPath: "/logout", PostLogoutRedirectURL: "/",
		CookieSameSite: "Lax", CookieSecure: true, AbsoluteTimeout: ir.Duration(24 * time.Hour), RefreshTokens: true,
		ForwardAccessToken: b.ForwardAccessToken, PassThroughBearer: b.PassThroughBearer,
		UnauthenticatedAction: string(cmp.Or(b.UnauthenticatedAction, policyv1a1.UnauthenticatedAuto))}
	if pr := b.Provider; pr != nil {
		out.Issuer, out.AuthorizationEndpoint, out.TokenEndpoint, out.EndSessionEndpoint = pr.Issuer, pr.AuthorizationEndpoint, pr.TokenEndpoint, pr.EndSessionEndpoint
		if pr.BackendRef != nil { // otherwise each endpoint's host is dialed under the destination policy
			name, why := t.apBackend(p, "oidc.provider.backendRef", pr.BackendRef, c)
			if why != "" {
				out.Unavailable = why
			}
			out.Backend, out.BackendPort = name, int32(deref(pr.BackendRef.Port, 443))
		}
	}
	if !slices.Contains(out.Scopes, "openid") {
		out.Scopes = append([]string{"openid"}, out.Scopes...)
	}
	if l := b.Logout; l != nil {
		out.LogoutPath, out.PostLogoutRedirectURL = cmp.Or(l.Path, out.LogoutPath), cmp.Or(l.PostLogoutRedirectURL, out.PostLogoutRedirectURL)
	}
	if ck := b.Cookies; ck != nil {
		out.CookieNamePrefix, out.CookieDomain = ck.NamePrefix, ck.Domain
		out.CookieSameSite = cmp.Or(string(ck.SameSite), out.CookieSameSite)
		out.CookieSecure = deref(ck.Secure, true)
	}
	if ss := b.Session; ss != nil {
		out.AbsoluteTimeout = ir.Duration(durOr(ss.AbsoluteTimeout, 24*time.Hour))
		out.RefreshTokens = deref(ss.RefreshTokens, true)
	}
	if f := b.ForwardIDToken; f != nil {
		out.ForwardIDTokenHeader = f.Header
	}
	for _, ch := range b.ClaimToHeaders {
		out.ClaimToHeaders = append(out.ClaimToHeaders, ir.ClaimHeader{Claim: ch.Claim, Header: ch.Header})
	}
	secret, why := t.apParsedSecret(p, "oidc.clientSecretRef", b.ClientSecretRef, "client-secret", c, func([]byte) error { return nil })
	if why != "" {
		out.Unavailable = why
	}
	out.ClientSecret = ir.SecretString(secret)
	if out.CookieNamePrefix == "" {
		out.CookieNamePrefix = policyv1a1.OIDCCookieNamePrefix(b)
	}
	if out.SessionKeys = sessionKeys(t.opts.SessionSecret, t.opts.Scope, t.opts.Now, time.Duration(out.AbsoluteTimeout)); out.SessionKeys == nil && out.Unavailable == "" {
		out.Unavailable = "the server has no session secret to seal OIDC sessions with"
	}
	return out
}

func (t *translator) apAuthorization(p *policyv1a1.AuthPolicy, b *policyv1a1.Authorization) *ir.Authorization {
	out := &ir.Authorization{AuthBlock: t.authBlock(p), DefaultAllow: b.DefaultAction == policyv1a1.AuthorizationAllow}
	for _, r := range b.Rules {
		rule := ir.AuthzRule{Name: r.Name, Allow: r.Action == policyv1a1.AuthorizationAllow}
		if m := r.Match; m != nil {
			rule.Match.Authenticated = m.Authenticated
			for _, meth := range m.Methods {
				rule.Match.Methods = append(rule.Match.Methods, string(meth))
			}
			for _, pm := range m.Paths {
				rule.Match.Paths = append(rule.Match.Paths, irPathMatch(pm))
			}
			rule.Match.ClientCIDRs, rule.Match.Users = m.ClientCIDRs, m.Users
			for _, h := range m.Headers {
				rule.Match.Headers = append(rule.Match.Headers, irHeaderValues(h))
			}
			if j := m.JWT; j != nil {
				rule.Match.JWTProvider, rule.Match.Scopes = j.Provider, j.Scopes
				for _, cm := range j.Claims {
					rule.Match.Claims = append(rule.Match.Claims, irClaimMatch(cm))
				}
			}
		}
		out.Rules = append(out.Rules, rule)
	}
	return out
}

func (t *translator) apExtAuth(p *policyv1a1.AuthPolicy, b *policyv1a1.ExtAuth, c *apCompiled) *ir.ExtAuth {
	out := &ir.ExtAuth{AuthBlock: t.authBlock(p), HeadersToAuthz: b.HeadersToAuthz, HeadersToUpstream: b.HeadersToUpstream,
		HeadersToClient: b.HeadersToClient, RouteMetadata: b.IncludeRouteMetadata, Timeout: ir.Duration(durOr(b.Timeout, 2*time.Second)),
		FailOpen: b.FailureMode == policyv1a1.FailOpen, StatusOnError: int(deref(b.StatusOnError, 403))}
	if ib := b.IncludeBody; ib != nil {
		out.BodyMaxBytes, out.BodyAllowPartial = int(ib.MaxBytes), deref(ib.AllowPartial, false)
	}
	var ref *gwapiv1.BackendObjectReference
	field := "extAuth.http.backendRef"
	switch {
	case b.GRPC != nil:
		out.GRPC, out.ContextExtensions, ref, field = true, b.GRPC.ContextExtensions, b.GRPC.BackendRef, "extAuth.grpc.backendRef"
	case b.HTTP != nil:
		out.PathPrefix, ref = b.HTTP.PathPrefix, b.HTTP.BackendRef
	}
	name, why := t.apBackend(p, field, ref, c)
	if why == "" && out.GRPC {
		if ib := t.usedBackends[name]; ib != nil && ib.Protocol != "h2c" && ib.Protocol != "h2" && ib.Protocol != "tls" {
			why = c.fail("InvalidBackend", "%s: Backend %s speaks %s; gRPC external authorization needs protocol h2c, h2 or tls", field, ib.Origin.Namespace+"/"+ib.Origin.Name, cmp.Or(ib.Protocol, "plain"))
		}
	}
	out.Backend, out.Unavailable = name, why
	if ref != nil {
		out.BackendPort = int32(deref(ref.Port, 0))
	}
	return out
}

// urlBackend returns the IR backend (and port) through which the gateway reaches a URL's host
// when no Backend is named: a Backend of its own with the host as its endpoint, so the
// gateway's own requests (JWKS fetches, OIDC discovery and token exchanges) go through the
// same dialer, destination policy and certificate checks as traffic does. An https URL is
// verified against the host name.
func (t *translator) urlBackend(p *policyv1a1.AuthPolicy, raw string) (string, int32) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return "", 0
	}
	host := strings.ToLower(u.Hostname())
	port := int32(80)
	proto := "plain"
	if u.Scheme == "https" {
		port, proto = 443, "tls"
	}
	if n, err := strconv.Atoi(u.Port()); err == nil {
		port = int32(n)
	}
	name := t.scoped("url/" + u.Scheme + "://" + net.JoinHostPort(host, strconv.Itoa(int(port))))
	if _, ok := t.usedBackends[name]; !ok {
		ib := &ir.Backend{Name: name, Origin: ir.Origin{Kind: "AuthPolicy", Namespace: p.Namespace, Name: p.Name}, Protocol: proto}
		if ip, err := netip.ParseAddr(host); err == nil {
			ib.Endpoints = []ir.Endpoint{{IP: ip.String()}}
		} else {
			ib.Endpoints = []ir.Endpoint{{FQDN: host}}
		}
		if proto == "tls" {
			ib.TLS = &ir.UpstreamTLS{ServerName: host}
		}
		t.usedBackends[name] = ib
	}
	return name, port
}

// apBackend resolves a Backend an AuthPolicy reaches a service through (a JWKS or OIDC
// provider, an external authorization service) to its IR backend.
func (t *translator) apBackend(p *policyv1a1.AuthPolicy, field string, ref *gwapiv1.BackendObjectReference, c *apCompiled) (string, string) {
	if ref == nil {
		return "", c.fail("BackendNotFound", "%s: no Backend named", field)
	}
	ns := string(deref(ref.Namespace, gwapiv1.Namespace(p.Namespace)))
	if !t.refGrantAllows(policyv1a1.GroupName, "AuthPolicy", p.Namespace, coreApoxyGroup, "Backend", ns, string(ref.Name)) {
		return "", c.fail("RefNotPermitted", "%s: Backend %s/%s is in another namespace and no ReferenceGrant allows it", field, ns, ref.Name)
	}
	b, ok := t.backends[status.KeyOf(ns, string(ref.Name))]
	if !ok {
		return "", c.fail("BackendNotFound", "%s: Backend %s/%s not found", field, ns, ref.Name)
	}
	return t.irBackend(b).Name, ""
}

// reportAuthPolicies writes each AuthPolicy's status (reportPolicies) with its ResolvedRefs
// condition on every accepted ancestor.
func (t *translator) reportAuthPolicies() {
	reportPolicies(t, t.ap, t.set.AuthPolicies, reportHooks[*policyv1a1.AuthPolicy]{
		accepted: func(p *policyv1a1.AuthPolicy, _ gwapiv1.ParentReference, i int) bool {
			c := t.apc[p]
			// Blocks with a runtime dependency: remote JWKS, the OIDC provider (discovery and
			// keys), the external authorization service.
			remote := c.jwt != nil && slices.ContainsFunc(c.jwt.Providers, func(p ir.JWTProvider) bool { return p.RemoteJWKS != nil })
			if !remote && c.oidc == nil && c.ext == nil {
				return false
			}
			pk := status.KeyOf(p.Namespace, p.Name)
			if t.report.AuthRuntime == nil {
				t.report.AuthRuntime = map[status.Key]status.AuthRuntime{}
			}
			rt := t.report.AuthRuntime[pk]
			rt.ID = t.scoped(policyKey(p))
			rt.Ancestors = append(rt.Ancestors, i)
			if c.ext != nil {
				rt.ExtAuthFailOpen, rt.ExtAuthStatus = c.ext.FailOpen, c.ext.StatusOnError
			}
			t.report.AuthRuntime[pk] = rt
			// Healthy comes from the data plane (the controller): kept across these writes.
			return true
		},
		conditions: func(p *policyv1a1.AuthPolicy) []metav1.Condition {
			c := t.apc[p]
			cond := status.Condition("ResolvedRefs", true, "ResolvedRefs", "Every referenced Secret and Backend was found and parsed", p.Generation, t.opts.Now)
			switch {
			case len(c.refs) > 0:
				var msgs []string
				for _, r := range c.refs {
					msgs = append(msgs, r.msg)
				}
				cond = status.Condition("ResolvedRefs", false, c.refs[0].reason, listCapped(msgs), p.Generation, t.opts.Now)
			case len(c.warnings) > 0:
				cond = status.Condition("ResolvedRefs", true, c.warnings[0].reason, c.warnings[0].msg, p.Generation, t.opts.Now)
			}
			return []metav1.Condition{cond}
		},
	}, t.report.AuthPolicies)
}

func irPathMatch(pm policyv1a1.PathMatch) ir.PathMatch {
	return ir.PathMatch{Type: ir.PathMatchType(cmp.Or(string(pm.Type), string(ir.PathPrefix))), Value: pm.Value}
}

func irHeaderValues(h policyv1a1.HeaderValuesMatch) ir.HeaderValues {
	return ir.HeaderValues{Name: h.Name, Values: h.Values}
}

func irClaimMatch(c policyv1a1.ClaimMatch) ir.ClaimMatch {
	return ir.ClaimMatch{Name: c.Name, Values: c.Values}
}

// oidcIntercepts are the routes that bring an OIDC block's callback and logout paths to its
// relying party before route matching (design §2.4), on every host the route is served on:
// Exact path routes that match before every other route (ir.Route.Intercept), so no route of
// the user's, however specific, can shadow them. seen dedupes them within one HTTPRoute.
func (t *translator) oidcIntercepts(r *ir.Route, seen map[string]bool) []*ir.Route {
	if r.Auth == nil || r.Auth.OIDC == nil {
		return nil
	}
	o := r.Auth.OIDC
	var out []*ir.Route
	for _, p := range []string{callbackPath(o.RedirectURL), o.LogoutPath} {
		key := o.CookieNamePrefix + " " + p
		if p == "" || seen[key] {
			continue
		}
		seen[key] = true
		ic := &ir.Route{Name: r.Name + "/oidc" + p, Origin: r.Origin, Match: ir.Match{PathType: ir.PathExact, Path: p}, Intercept: true,
			Auth: &ir.Auth{OIDC: o}, Timeouts: r.Timeouts, DirectResponse: &ir.DirectResponse{StatusCode: http.StatusNotFound}}
		t.order[ic] = t.order[r]
		out = append(out, ic)
	}
	return out
}

// callbackPath is the path of a redirectURL: itself, or an absolute URL's path.
func callbackPath(redirect string) string {
	if strings.HasPrefix(redirect, "/") {
		return redirect
	}
	if u, err := url.Parse(redirect); err == nil && u.Path != "" {
		return u.Path
	}
	return ""
}
