package manifest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	policyv1a1 "apoxy.dev/apoxy/api/policy/v1alpha1"
	"apoxy.dev/apoxy/internal/resource"
)

// policyExamples holds the policy examples of the design: TrafficPolicy (§4.1, §4.2,
// §4.8-§4.12) and AuthPolicy (§4.3-§4.7).
const policyExamples = "../../../docs/examples/policy"

// validate runs the registry's validation of every Apoxy object in the set (the API server
// runs the same functions) and returns the problems, each prefixed with the object.
func validate(s *resource.Set) []string {
	var out []string
	for _, k := range resource.Kinds() {
		if k.Serving.Validate == nil {
			continue
		}
		for _, obj := range s.Objects(k) {
			for _, e := range k.Serving.Validate(context.Background(), obj, nil) {
				out = append(out, k.GVK.Kind+"/"+obj.GetName()+" "+e.Field+": "+e.Detail)
			}
		}
	}
	return out
}

func readExample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(policyExamples, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPolicyExamplesLoad: every example loads with the server's defaults and validates with no
// error, and the defaults land only in the blocks it sets.
func TestPolicyExamplesLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(policyExamples, "*.yaml"))
	if err != nil || len(files) != 12 {
		t.Fatalf("examples: %v, %v (want the twelve of §4.1-§4.12)", files, err)
	}
	policies := map[string]*policyv1a1.TrafficPolicy{}
	auth := map[string]*policyv1a1.AuthPolicy{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := Load(strings.NewReader(readExample(t, filepath.Base(f))))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.TrafficPolicies)+len(s.AuthPolicies) == 0 {
				t.Fatal("no policy in the example")
			}
			for _, msg := range validate(s) {
				t.Error(msg)
			}
			for _, tp := range s.TrafficPolicies {
				policies[tp.Name] = tp
				if tp.Namespace != "default" {
					t.Errorf("%s: namespace %q", tp.Name, tp.Namespace)
				}
			}
			for _, ap := range s.AuthPolicies {
				auth[ap.Name] = ap
				if ap.Namespace != "default" {
					t.Errorf("%s: namespace %q", ap.Name, ap.Namespace)
				}
			}
		})
	}
	// A few defaults, as `get -o yaml` would show them.
	lt := policies["login-throttle"]
	if lt == nil {
		t.Fatal("login-throttle not loaded")
	}
	r := lt.Spec.RateLimit.Rules[0]
	if *lt.Spec.RateLimit.Inherit != true || lt.Spec.RateLimit.FailureMode != policyv1a1.FailOpen || *lt.Spec.RateLimit.Response.StatusCode != 429 ||
		r.Scope != policyv1a1.ScopeLocal || r.MissingKey != policyv1a1.MissingKeyShared || *r.MaxTrackedKeys != 100000 ||
		*r.CountBy[0].ClientIP.IPv4PrefixLength != 32 || *r.CountBy[0].ClientIP.IPv6PrefixLength != 64 || r.Counters != policyv1a1.CountersPerRoute {
		t.Errorf("login-throttle rate-limit defaults: %+v", lt.Spec.RateLimit)
	}
	if lt.Spec.Retry != nil || lt.Spec.Timeouts != nil || lt.Spec.LoadBalancer != nil {
		t.Errorf("login-throttle: blocks it does not set were filled")
	}
	if q := policies["api-quota"].Spec.RateLimit.Rules[1]; q.MaxTrackedKeys != nil || q.MissingKey != policyv1a1.MissingKeyShared {
		t.Errorf("api-quota Global rule: maxTrackedKeys %v, missingKey %q", q.MaxTrackedKeys, q.MissingKey)
	}
	if o := policies["orders-resilience"].Spec; *o.OutlierDetection.MaxEjectionTime != "5m" || *o.Retry.Budget.Interval != "10s" || o.Timeouts.Request == nil || *o.Timeouts.ConnectionIdle != "1m" {
		t.Errorf("orders-resilience defaults: %+v %+v %+v", o.OutlierDetection, o.Retry.Budget, o.Timeouts)
	}
	if c := policies["checkout-chaos"].Spec.FaultInjection; *c.Abort.Fraction.Denominator != 1000 || c.Abort.Percent != nil || *c.Delay.Percent != 20 {
		t.Errorf("checkout-chaos: %+v %+v", c.Delay, c.Abort)
	}
	if e := policies["edge-traffic"].Spec; e.Timeouts.Request == nil || *e.Timeouts.Request != "30s" || e.Strategy != policyv1a1.StrategyDefault {
		t.Errorf("edge-traffic: %+v", e)
	}
	if len(auth) != 7 {
		t.Fatalf("AuthPolicies %d, want the seven of §4.3-§4.7 and §4.11", len(auth))
	}
	if j := auth["healthz-public"].Spec.JWT; !j.Disabled || j.ForwardToken != nil || len(j.Providers) != 0 {
		t.Errorf("healthz-public: a disabled block gets no defaults: %+v", j)
	}
	if j := auth["api-jwt"].Spec.JWT; *j.ForwardToken || *j.Providers[0].ClockSkew != "1m" || *j.Providers[1].JWKS.Remote.Timeout != "5s" {
		t.Errorf("api-jwt defaults: %+v", j.Providers)
	}
	if o := auth["grafana-login"].Spec.OIDC; o.UnauthenticatedAction != policyv1a1.UnauthenticatedAuto || o.ClientSecretRef.Key != "client-secret" || !*o.Session.RefreshTokens {
		t.Errorf("grafana-login defaults: %+v", o)
	}
	if a := auth["admin-basic"].Spec; a.BasicAuth.UsersRef.Key != ".htpasswd" || a.JWT != nil || a.CORS != nil {
		t.Errorf("admin-basic: %+v", a)
	}
}

// authVariants are edits of the AuthPolicy examples that break one rule each.
var authVariants = []struct {
	file, old, new string
	want           []string
}{
	{"4.3-api-jwt.yaml", "issuer: https://sso.internal.example.com/realms/staff", "issuer: https://example.eu.auth0.com/", []string{"AuthPolicy/api-jwt spec.jwt.providers[1].issuer"}},
	{"4.3-api-jwt.yaml", "cacheDuration: 10m", "cacheDuration: 10s", []string{"AuthPolicy/api-jwt spec.jwt.providers[0].jwks.remote.cacheDuration"}},
	{"4.3-api-jwt.yaml", "header: x-roles", "header: host", []string{"AuthPolicy/api-jwt spec.jwt.providers[1].claimToHeaders[1].header"}},
	{"4.3-api-jwt.yaml", "{claim: realm_access.roles", "{claim: realm_access..roles", []string{"AuthPolicy/api-jwt spec.jwt.providers[1].claimToHeaders[1].claim"}},
	{"4.4-grafana-login.yaml", "sameSite: Lax}", "sameSite: None, secure: false}", []string{"AuthPolicy/grafana-login spec.oidc.cookies.sameSite"}},
	{"4.4-grafana-login.yaml", "    defaultAction: Deny\n", "", []string{"AuthPolicy/grafana-login spec.authorization.defaultAction"}},
	{"4.4-grafana-login.yaml", "issuer: https://accounts.google.com", "issuer: http://accounts.google.com", []string{"AuthPolicy/grafana-login spec.oidc.provider.issuer"}},
	{"4.5-admin-basic.yaml", "usersRef: {name: admin-users}", "usersRef: {key: .htpasswd}", []string{"AuthPolicy/admin-basic spec.basicAuth.usersRef.name"}},
	{"4.6-payments-authz.yaml", "maxBytes: 16384", "maxBytes: 0", []string{"AuthPolicy/payments-authz spec.extAuth.includeBody.maxBytes"}},
	{"4.6-payments-authz.yaml", "kind: Backend, name: opa", "kind: Service, name: opa", []string{"AuthPolicy/payments-authz spec.extAuth.grpc.backendRef.kind"}},
	{"4.7-api-cors.yaml", "https://app.example.com,", "https://app.example.com/,", []string{"AuthPolicy/api-cors spec.cors.allowOrigins[0]"}},
	{"4.7-api-cors.yaml", "maxAge: 10m", "maxAge: 48h", []string{"AuthPolicy/api-cors spec.cors.maxAge"}},
}

// TestPolicyExampleVariantsRefused: edits of the examples that break one rule each are refused
// with the field path of that rule.
func TestPolicyExampleVariantsRefused(t *testing.T) {
	tests := []struct {
		file, old, new string
		want           []string // "Kind/name field.path"
	}{
		{"4.1-login-throttle.yaml", "  - {group: gateway.apoxy.dev, kind: HTTPRoute, name: shop, sectionName: login}\n",
			"  - {group: gateway.apoxy.dev, kind: HTTPRoute, name: shop, sectionName: login}\n  - {group: gateway.networking.k8s.io, kind: HTTPRoute, name: shop, sectionName: login}\n",
			[]string{"TrafficPolicy/login-throttle spec.targetRefs[1]"}},
		{"4.1-login-throttle.yaml", "countBy: [{clientIP: {}}]", "countBy: [{clientIP: {}}, {clientIP: {ipv4PrefixLength: 24}}]",
			[]string{"TrafficPolicy/login-throttle spec.rateLimit.rules[0].countBy[1]"}},
		{"4.1-login-throttle.yaml", "unit: Minute", "unit: Week", []string{"TrafficPolicy/login-throttle spec.rateLimit.rules[0].limit.unit"}},
		{"4.1-login-throttle.yaml", "name: per-ip", "name: Per_IP", []string{"TrafficPolicy/login-throttle spec.rateLimit.rules[0].name"}},
		{"4.2-api-quota.yaml", "address: 127.0.0.1:6379", "address: 127.0.0.1", []string{"Proxy/default spec.rateLimit.redis.address"}},
		{"4.2-api-quota.yaml", "clientCIDRs: [10.0.0.0/8]", "clientCIDRs: [10.0.0.0/88]", []string{"TrafficPolicy/api-quota spec.rateLimit.exempt[0].clientCIDRs[0]"}},
		{"4.2-api-quota.yaml", "name: per-key-day", "name: per-key-minute", []string{"TrafficPolicy/api-quota spec.rateLimit.rules[1].name"}},
		{"4.2-api-quota.yaml", "      countBy: [{header: {name: x-api-key}}]\n      missingKey: Shared", "      missingKey: Shared",
			[]string{"TrafficPolicy/api-quota spec.rateLimit.rules[0].missingKey"}},
		{"4.2-api-quota.yaml", "limit: {requests: 100000, unit: Day}", "limit: {requests: 100000, unit: Day}\n      maxTrackedKeys: 10",
			[]string{"TrafficPolicy/api-quota spec.rateLimit.rules[1].maxTrackedKeys"}},
		{"4.8-orders-resilience.yaml", "  timeouts:\n", "  strategy: Override\n  timeouts:\n", []string{"TrafficPolicy/orders-resilience spec.strategy"}},
		{"4.8-orders-resilience.yaml", "backendRequest: 2s", "backendRequest: 20s", []string{"TrafficPolicy/orders-resilience spec.timeouts.backendRequest"}},
		{"4.8-orders-resilience.yaml", "maxInterval: 500ms", "maxInterval: 5ms", []string{"TrafficPolicy/orders-resilience spec.retry.backoff.maxInterval"}},
		{"4.8-orders-resilience.yaml", "attempts: 3", "attempts: 30", []string{"TrafficPolicy/orders-resilience spec.retry.attempts"}},
		{"4.8-orders-resilience.yaml", "statusCodes: [502, 503, 504]", "statusCodes: [302]", []string{"TrafficPolicy/orders-resilience spec.retry.retryOn.statusCodes[0]"}},
		{"4.8-orders-resilience.yaml", "maxConnections: 200", "maxConnections: 0", []string{"TrafficPolicy/orders-resilience spec.circuitBreaker.maxConnections"}},
		{"4.8-orders-resilience.yaml", "maxEjectionPercent: 50", "maxEjectionPercent: 0", []string{"TrafficPolicy/orders-resilience spec.outlierDetection.maxEjectionPercent"}},
		{"4.9-cart-sticky.yaml", "type: Maglev", "type: RoundRobin", []string{"TrafficPolicy/cart-sticky spec.loadBalancer.hash", "TrafficPolicy/cart-sticky spec.loadBalancer.maglev"}},
		{"4.9-cart-sticky.yaml", "tableSize: 65537", "tableSize: 65536", []string{"TrafficPolicy/cart-sticky spec.loadBalancer.maglev.tableSize"}},
		{"4.9-cart-sticky.yaml", "sameSite: Lax, secure: true", "sameSite: None", []string{"TrafficPolicy/cart-sticky spec.loadBalancer.hash.cookie.sameSite"}},
		{"4.10-checkout-chaos.yaml", "numerator: 5, denominator: 1000", "numerator: 5000, denominator: 1000", []string{"TrafficPolicy/checkout-chaos spec.faultInjection.abort.fraction.numerator"}},
		{"4.10-checkout-chaos.yaml", "httpStatus: 503", "httpStatus: 503, grpcStatus: Unavailable", []string{"TrafficPolicy/checkout-chaos spec.faultInjection.abort.grpcStatus"}},
		{"4.10-checkout-chaos.yaml", "fixedDelay: 1500ms", "fixedDelay: 1.5s", []string{"TrafficPolicy/checkout-chaos spec.faultInjection.delay.fixedDelay"}},
		{"4.10-checkout-chaos.yaml", "percent: 20", "percent: 20, fraction: {numerator: 1}", []string{"TrafficPolicy/checkout-chaos spec.faultInjection.delay.fraction"}},
		{"4.11-gateway-defaults.yaml", "timeouts: {request: 300s}", "timeouts: {disabled: true, request: 300s}", []string{"TrafficPolicy/app-uploads spec.timeouts.request"}},
		{"4.11-gateway-defaults.yaml", "kind: HTTPRoute, name: app, sectionName: upload", "kind: TCPRoute, name: app, sectionName: upload", []string{"TrafficPolicy/app-uploads spec.targetRefs[0].kind"}},
		{"4.11-gateway-defaults.yaml", "[{group: gateway.apoxy.dev, kind: Gateway, name: default}]", "[{group: gateway.envoyproxy.io, kind: Gateway, name: default}]", []string{"TrafficPolicy/edge-traffic spec.targetRefs[0].group"}},
		{"4.11-gateway-defaults.yaml", "  timeouts: {request: 30s}\n  rateLimit:\n    rules:\n    - name: per-ip\n      countBy: [{clientIP: {}}]\n      limit: {requests: 50, unit: Second}\n", "",
			[]string{"TrafficPolicy/edge-traffic spec"}},
	}
	tests = append(tests, authVariants...)
	for _, tc := range tests {
		t.Run(tc.file+" "+tc.new, func(t *testing.T) {
			in := readExample(t, tc.file)
			if !strings.Contains(in, tc.old) {
				t.Fatalf("%s does not contain %q", tc.file, tc.old)
			}
			s, err := Load(strings.NewReader(strings.Replace(in, tc.old, tc.new, 1)))
			if err != nil {
				t.Fatal(err)
			}
			got := validate(s)
			var fields []string
			for _, msg := range got {
				name, _, _ := strings.Cut(msg, ":")
				fields = append(fields, name)
			}
			for _, w := range tc.want {
				if !slices.Contains(fields, w) {
					t.Errorf("not refused at %s; errors: %q", w, got)
				}
			}
			if len(fields) != len(tc.want) {
				t.Errorf("errors %q, want only %q", got, tc.want)
			}
		})
	}
}
