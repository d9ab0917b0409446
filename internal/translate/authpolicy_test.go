package translate

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/resource/manifest"
	"apoxy.dev/apoxy/internal/status"
)

func ap(name, created, targets, body string) string {
	return fmt.Sprintf(`apiVersion: policy.apoxy.dev/v1alpha1
kind: AuthPolicy
metadata: {name: %s, creationTimestamp: %q}
spec:
  targetRefs: %s
%s
`, name, created, targets, body)
}

// apCond returns an AuthPolicy's condition of a type on its first ancestor.
func apCond(t *testing.T, r *status.Report, policy, typ string) *metav1.Condition {
	t.Helper()
	st := r.AuthPolicies[status.KeyOf("default", policy)]
	if st == nil || len(st.Ancestors) == 0 {
		t.Fatalf("no status for AuthPolicy %s", policy)
	}
	return status.Find(st.Ancestors[0].Conditions, typ)
}

const usersSecret = `apiVersion: v1
kind: Secret
metadata: {name: users}
stringData:
  .htpasswd: |
    alice:$2y$05$Q3GpQn5QpqdxJ1sbv8rE9eGyXW0bWBdo6h8sCYRlN5k0xRgE1gG6W
    legacy:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=
`

// Blocks merge per block across levels (a Gateway's jwt with a route's authorization), the
// route rule's CORS filter beats a policy's cors (Rule D, reported), and a TrafficPolicy on the
// same target never conflicts with an AuthPolicy (design §5 cases 2, 15, 20).
func TestAuthPolicyMergeAndRuleD(t *testing.T) {
	route := tpRoute(`    filters:
    - type: CORS
      cors: {allowOrigins: ["https://own.example.com"]}`)
	_, snap, rep := translateYAML(t, statusBase[:strings.Index(statusBase, "---\napiVersion: gateway.apoxy.dev/v1\nkind: HTTPRoute")], route,
		ap("g", "2026-01-01T00:00:00Z", "[{kind: Gateway, name: edge}]", `  jwt:
    providers: [{name: idp, issuer: "https://idp.example.com/", jwks: {remote: {uri: "https://idp.example.com/jwks"}}}]`),
		ap("r", "2026-01-01T00:00:00Z", "[{kind: HTTPRoute, name: api}]", `  cors: {allowOrigins: ["https://app.example.com"]}
  authorization:
    defaultAction: Deny
    rules: [{name: admins, action: Allow, match: {jwt: {claims: [{name: role, values: [admin]}]}}}]`),
		tp("t", "2026-01-01T00:00:00Z", "[{kind: HTTPRoute, name: api}]", "  retry: {attempts: 3}"))
	for _, r := range servedRoutes(snap, "api") {
		login := strings.Contains(r.Origin.Section, "rule/0")
		if r.Auth == nil || r.Auth.JWT == nil || r.Auth.Authorization == nil || r.Retry == nil || r.Retry.Attempts != 3 {
			t.Errorf("%s: auth %+v retry %+v", r.Name, r.Auth, r.Retry)
		}
		if login && r.CORS != nil {
			t.Errorf("%s: the rule's own CORS filter must win over the policy's cors", r.Name)
		}
		if !login && (r.CORS == nil || r.CORS.AllowOrigins[0] != "https://app.example.com") {
			t.Errorf("%s: policy cors %+v", r.Name, r.CORS)
		}
	}
	wantCond(t, "r Accepted", apCond(t, rep, "r", "Accepted"), metav1.ConditionTrue, "Accepted")
	wantCond(t, "r Programmed", apCond(t, rep, "r", "Programmed"), metav1.ConditionTrue, "PartiallyProgrammed", "cors superseded by HTTPRoute default/api rule login (its CORS filter)")
	wantCond(t, "t Accepted", policyCond(t, rep, "t", "", "Accepted"), metav1.ConditionTrue, "Accepted")
	wantCond(t, "g ResolvedRefs", apCond(t, rep, "g", "ResolvedRefs"), metav1.ConditionTrue, "ResolvedRefs")
	// The JWKS host without a backendRef is reached through a Backend of its own.
	found := false
	for _, b := range snap.Backends {
		if strings.HasSuffix(b.Name, "url/https://idp.example.com:443") && b.Protocol == "tls" && b.TLS != nil && b.TLS.ServerName == "idp.example.com" {
			found = true
		}
	}
	if !found {
		t.Errorf("no backend for the JWKS host: %v", snap.Backends)
	}
}

// Status of references: a missing Secret, InsecureHash, a cross-namespace Secret without a
// ReferenceGrant, and the Invalid cases (design §3.2, §5 case 83).
func TestAuthPolicyStatus(t *testing.T) {
	base := statusBase
	_, snap, rep := translateYAML(t, base, usersSecret,
		ap("basic", "2026-01-01T00:00:00Z", "[{kind: HTTPRoute, name: api, sectionName: login}]", "  basicAuth: {usersRef: {name: users}}"),
		ap("missing", "2026-01-01T00:00:00Z", "[{kind: HTTPRoute, name: other}]", "  basicAuth: {usersRef: {name: nope}}"),
		ap("foreign", "2026-01-01T00:00:00Z", "[{kind: HTTPRoute, name: api, sectionName: search}]", "  basicAuth: {usersRef: {name: users, namespace: other}}"),
		ap("claims-only", "2026-01-01T00:00:00Z", "[{kind: HTTPRoute, name: api}]", `  authorization:
    defaultAction: Deny
    rules: [{name: a, action: Allow, match: {jwt: {claims: [{name: role, values: [admin]}]}}}]`))
	wantCond(t, "basic", apCond(t, rep, "basic", "ResolvedRefs"), metav1.ConditionTrue, "InsecureHash", "{SHA}")
	wantCond(t, "missing", apCond(t, rep, "missing", "ResolvedRefs"), metav1.ConditionFalse, "SecretNotFound", "Secret default/nope not found")
	wantCond(t, "foreign", apCond(t, rep, "foreign", "ResolvedRefs"), metav1.ConditionFalse, "RefNotPermitted")
	wantCond(t, "claims-only", apCond(t, rep, "claims-only", "Accepted"), metav1.ConditionFalse, "Invalid", "neither this policy nor one on a less specific target sets jwt or oidc")
	for _, r := range servedRoutes(snap, "other") {
		if r.Auth == nil || r.Auth.Basic == nil || r.Auth.Basic.Unavailable == "" {
			t.Errorf("a block whose Secret is missing must fail closed: %+v", r.Auth)
		}
	}

	// secure: false on an HTTPS listener is Invalid.
	https := strings.Replace(tpBase, "- {name: alt, protocol: HTTP, port: 8080}", `- name: tls
    protocol: HTTPS
    port: 443
    tls: {certificateRefs: [{name: cert}]}`, 1)
	_, _, rep = translateYAML(t, https, `apiVersion: v1
kind: Secret
metadata: {name: cid}
stringData: {client-secret: s}`,
		ap("o", "2026-01-01T00:00:00Z", "[{kind: Gateway, name: edge}]", `  oidc:
    provider: {issuer: "https://idp.example.com"}
    clientID: c
    clientSecretRef: {name: cid}
    cookies: {secure: false}`))
	wantCond(t, "secure false", apCond(t, rep, "o", "Accepted"), metav1.ConditionFalse, "Invalid", "listener tls is HTTPS")
}

// Policies whose blocks depend on something at run time (remote JWKS, an OIDC provider, an
// external authorization service) are listed for the controller's Healthy condition; others
// are not.
func TestAuthPolicyRuntimeDependencies(t *testing.T) {
	_, _, rep := translateYAML(t, statusBase, usersSecret, `apiVersion: v1
kind: Secret
metadata: {name: cid}
stringData: {client-secret: s}`,
		ap("login", "2026-01-01T00:00:00Z", "[{kind: HTTPRoute, name: api}]", `  oidc:
    provider: {issuer: "https://idp.example.com"}
    clientID: c
    clientSecretRef: {name: cid}`),
		ap("basic", "2026-01-01T00:00:00Z", "[{kind: HTTPRoute, name: other}]", "  basicAuth: {usersRef: {name: users}}"))
	rt, ok := rep.AuthRuntime[status.KeyOf("default", "login")]
	if !ok || rt.ID == "" || len(rt.Ancestors) != 1 || rt.Ancestors[0] != 0 {
		t.Errorf("oidc-only policy: runtime %+v (listed %v), want its ID and ancestor 0", rt, ok)
	}
	if rt, ok := rep.AuthRuntime[status.KeyOf("default", "basic")]; ok {
		t.Errorf("basicAuth-only policy listed: %+v", rt)
	}
}

// A Secret update that does not parse keeps the last good version in force (Memory), and a
// deleted Secret is forgotten.
func TestAuthPolicyLastGoodSecret(t *testing.T) {
	opts := testOptions
	opts.Memory = &Memory{}
	pol := ap("basic", "2026-01-01T00:00:00Z", "[{kind: HTTPRoute, name: other}]", "  basicAuth: {usersRef: {name: users}}")
	users := func(set string) []*ir.Route {
		t.Helper()
		docs := []string{statusBase, pol}
		if set != "" {
			docs = append(docs, set)
		}
		set2, err := manifest.Load(strings.NewReader(strings.Join(docs, "\n---\n")))
		if err != nil {
			t.Fatal(err)
		}
		snap, _ := Translate(set2, opts)
		return servedRoutes(snap, "other")
	}
	good := users(usersSecret)
	bad := users(`apiVersion: v1
kind: Secret
metadata: {name: users}
stringData:
  .htpasswd: "alice:plaintext\n"`)
	if len(bad) == 0 || bad[0].Auth.Basic.Unavailable != "" || bad[0].Auth.Basic.Users != good[0].Auth.Basic.Users {
		t.Errorf("a bad update did not keep the last good users: %+v", bad[0].Auth.Basic)
	}
	if gone := users(""); gone[0].Auth.Basic.Unavailable == "" {
		t.Error("a deleted Secret still served")
	}
	if again := users(`apiVersion: v1
kind: Secret
metadata: {name: users}
stringData:
  .htpasswd: "alice:plaintext\n"`); again[0].Auth.Basic.Unavailable == "" {
		t.Error("after the Secret was deleted, a bad version revived the forgotten one")
	}
}

// Design §5 case 31: a rule keyed by a JWT claim where no AuthPolicy verifies tokens is
// reported (its requests share one bucket); with a jwt block on the route it is not.
func TestClaimRuleWithoutIdentityReported(t *testing.T) {
	rule := tp("tiers", "2026-01-01T00:00:00Z", "[{kind: HTTPRoute, name: api}]", `  rateLimit:
    rules: [{name: per-user, countBy: [{jwtClaim: {name: sub}}], limit: {requests: 10, unit: Minute}}]`)
	_, _, rep := translateYAML(t, statusBase, rule)
	wantCond(t, "without jwt", policyCond(t, rep, "tiers", "", "Programmed"), metav1.ConditionTrue, "PartiallyProgrammed",
		"rateLimit rule per-user keys or matches on JWT claims, but no AuthPolicy with jwt or oidc applies")
	_, _, rep = translateYAML(t, statusBase, rule, ap("jwt", "2026-01-01T00:00:00Z", "[{kind: HTTPRoute, name: api}]", `  jwt:
    providers: [{name: idp, issuer: "https://idp.example.com/", jwks: {remote: {uri: "https://idp.example.com/jwks"}}}]`))
	wantCond(t, "with jwt", policyCond(t, rep, "tiers", "", "Programmed"), metav1.ConditionTrue, "Programmed")
}
