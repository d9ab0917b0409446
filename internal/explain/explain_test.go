package explain

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	manifests "apoxy.dev/apoxy/internal/resource/manifest"
	"apoxy.dev/apoxy/internal/translate"
)

// explainPolicies is the worked example of the policy design (§2.2) plus an Override on
// the Gateway's listener that sets a circuit breaker: Gateway edge has policy g
// (timeouts.request 30s, connect 3s, maxStreamDuration 1h; rate-limit rule per-ip 100/s;
// retry attempts 1), HTTPRoute api has policy r (retry attempts 3, rule login 5/min), and
// api's login rule sets its own timeouts.request 5s.
const explainPolicies = `
apiVersion: gateway.apoxy.dev/v1
kind: GatewayClass
metadata: {name: apoxy}
spec: {controllerName: gateway.apoxy.dev/gatewayclass-controller}
---
apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: apoxy
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: be}
spec: {endpoints: [{ip: 127.0.0.1}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{name: edge}]
  hostnames: [api.example.com]
  rules:
  - name: login
    matches: [{path: {value: /login}}]
    timeouts: {request: 5s}
    backendRefs: [{kind: Backend, name: be, port: 8080}]
  - name: search
    backendRefs: [{kind: Backend, name: be, port: 8080}]
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: plain}
spec:
  parentRefs: [{name: edge}]
  hostnames: [plain.example.com]
  rules:
  - backendRefs: [{kind: Backend, name: be, port: 8080}]
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: g}
spec:
  targetRefs: [{kind: Gateway, name: edge}]
  timeouts: {request: 30s, connect: 3s, maxStreamDuration: 1h}
  retry: {attempts: 1}
  rateLimit:
    rules: [{name: per-ip, countBy: [{clientIP: {}}], limit: {requests: 100, unit: Second}}]
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: r}
spec:
  targetRefs: [{kind: HTTPRoute, name: api}]
  retry: {attempts: 3}
  rateLimit:
    rules: [{name: login, limit: {requests: 5, unit: Minute}}]
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: floor}
spec:
  targetRefs: [{kind: Gateway, name: edge, sectionName: http}]
  strategy: Override
  circuitBreaker: {maxParallelRequests: 100}
`

func explainFor(t *testing.T, docs, rawURL string) string {
	t.Helper()
	set, err := manifests.Load(strings.NewReader(docs))
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := translate.Translate(set, translate.Options{Now: time.Now()})
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := Request(&b, snap, u, "GET", nil); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestExplainPolicySources: apoxy explain prints the served route's effective policy, each
// block (and each rate-limit rule) with its source, as the design's worked example says.
func TestExplainPolicySources(t *testing.T) {
	g := `TrafficPolicy default/g \(Gateway default/edge\)`
	r := `TrafficPolicy default/r \(HTTPRoute default/api\)`
	floor := `TrafficPolicy default/floor \(Gateway default/edge listener http, Override\)`
	for _, tc := range []struct {
		url       string
		want, not []string
	}{
		{"http://api.example.com/login", []string{
			`SERVED BY  httproute/default/api/rule/0/match/0`,
			`rateLimit rule per-ip\s+100/Second per ClientIP\s+from ` + g,
			`rateLimit rule login\s+5/Minute\s+from ` + r,
			`timeouts\.request\s+5s\s+from HTTPRoute default/api rule login \(route's own field\)`,
			`timeouts\s+idle 5m0s, maxStreamDuration 1h0m0s, connect 3s, connectionIdle 1m0s\s+from ` + g,
			`retry\s+attempts 3, on ConnectFailure,RefusedStream, codes 503, backoff 25ms\.\.250ms\s+from ` + r,
			`circuitBreaker\s+maxParallelRequests 100\s+from ` + floor,
		}, []string{`timeouts\.request\s+30s`}},
		{"http://api.example.com/search", []string{
			`SERVED BY  httproute/default/api/rule/1/match/0`,
			`timeouts\.request\s+30s\s+from ` + g,
			`retry\s+attempts 3.*from ` + r,
			`rateLimit rule login\s+5/Minute\s+from ` + r,
		}, nil},
		{"http://plain.example.com/", []string{
			`timeouts\.request\s+30s\s+from ` + g,
			`retry\s+attempts 1.*from ` + g,
			`rateLimit rule per-ip\s+100/Second per ClientIP\s+from ` + g,
		}, []string{`rule login`, `default/r`}},
	} {
		out := explainFor(t, explainPolicies, tc.url)
		for _, w := range tc.want {
			if !regexp.MustCompile(w).MatchString(out) {
				t.Errorf("%s: no line matching %q in\n%s", tc.url, w, out)
			}
		}
		for _, n := range tc.not {
			if regexp.MustCompile(n).MatchString(out) {
				t.Errorf("%s: unexpected %q in\n%s", tc.url, n, out)
			}
		}
	}
}

// Without a TrafficPolicy, apoxy explain prints no policy section.
func TestExplainWithoutPolicy(t *testing.T) {
	docs := explainPolicies[:strings.Index(explainPolicies, "---\napiVersion: policy.apoxy.dev")]
	out := explainFor(t, docs, "http://api.example.com/login")
	if !strings.Contains(out, "SERVED BY  httproute/default/api/rule/0/match/0") || strings.Contains(out, "TrafficPolicy") {
		t.Errorf("explain without policies:\n%s", out)
	}
}

// apoxy explain shows which auth applies (issue 14): each AuthPolicy block with its source,
// a Gateway's jwt inherited and a route's authorization and cors.
func TestExplainAuthPolicy(t *testing.T) {
	docs := explainPolicies + `
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: AuthPolicy
metadata: {name: edge-jwt}
spec:
  targetRefs: [{kind: Gateway, name: edge}]
  jwt:
    providers:
    - {name: idp, issuer: https://idp.example.com/, jwks: {remote: {uri: https://idp.example.com/jwks.json}}}
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: AuthPolicy
metadata: {name: api-rules}
spec:
  targetRefs: [{kind: HTTPRoute, name: api}]
  cors: {allowOrigins: [https://app.example.com]}
  authorization:
    defaultAction: Deny
    rules: [{name: admins, action: Allow, match: {jwt: {claims: [{name: role, values: [admin]}]}}}]
`
	out := explainFor(t, docs, "http://api.example.com/search")
	for _, want := range []string{
		`jwt\s+providers idp \(https://idp.example.com/\)\s+from AuthPolicy default/edge-jwt \(Gateway default/edge\)`,
		`cors\s+origins https://app.example.com\s+from AuthPolicy default/api-rules \(HTTPRoute default/api\)`,
		`authorization\s+1 rules, first match wins, defaultAction Deny\s+from AuthPolicy default/api-rules`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
