package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	restclient "k8s.io/client-go/rest"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/resource"
)

// resourceFor returns the client of the kind of u in namespace default (if namespaced).
func resourceFor(t *testing.T, dc dynamic.Interface, u *unstructured.Unstructured) dynamic.ResourceInterface {
	t.Helper()
	k, ok := resource.Lookup(u.GroupVersionKind())
	if !ok {
		t.Fatalf("%s is not served", u.GroupVersionKind())
	}
	if k.Namespaced {
		return dc.Resource(k.GVR()).Namespace("default")
	}
	return dc.Resource(k.GVR())
}

// documents splits a YAML file into its objects.
func documents(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if u := obj(t, string(doc)); len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// TestPolicyExamplesApply applies every object of the design's policy examples
// (docs/examples/policy: TrafficPolicy §4.1, §4.2, §4.8-§4.12; AuthPolicy §4.3-§4.7 with their
// Secrets and Backends) to a real server with server-side apply and strict field validation:
// all are accepted, defaults are stored inside the blocks a policy sets only, applying the same
// file again changes nothing (no spurious diffs, §5.109), the upstream target group is stored
// as ours, and `get` shows the Targets, Accepted and Programmed columns.
func TestPolicyExamplesApply(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	dc := s.dynamic(t, "default", s.AdminToken())
	ctx := context.Background()
	files, err := filepath.Glob("../../docs/examples/policy/*.yaml")
	if err != nil || len(files) != 12 {
		t.Fatalf("examples: %v %v", files, err)
	}
	apply := func(u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		return resourceFor(t, dc, u).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "examples", Force: true})
	}
	isPolicy := func(u *unstructured.Unstructured) bool {
		return u.GetKind() == "TrafficPolicy" || u.GetKind() == "AuthPolicy"
	}
	stored, auth := map[string]*unstructured.Unstructured{}, map[string]*unstructured.Unstructured{}
	for _, f := range files {
		for _, u := range documents(t, f) {
			got, err := apply(u)
			if err != nil {
				t.Errorf("%s: apply %s %s: %v", filepath.Base(f), u.GetKind(), u.GetName(), err)
				continue
			}
			switch u.GetKind() {
			case "TrafficPolicy":
				stored[u.GetName()] = got
			case "AuthPolicy":
				auth[u.GetName()] = got
			}
		}
	}
	if len(stored) != 8 || len(auth) != 7 {
		t.Fatalf("stored %d TrafficPolicies and %d AuthPolicies, want the 8 and 7 of the examples", len(stored), len(auth))
	}
	checkAuthExamples(t, auth)

	// Defaults are persisted in set blocks; absent blocks stay absent.
	lt := stored["login-throttle"]
	rl, _, _ := unstructured.NestedMap(lt.Object, "spec", "rateLimit")
	rule := rl["rules"].([]any)[0].(map[string]any)
	clientIP := rule["countBy"].([]any)[0].(map[string]any)["clientIP"].(map[string]any)
	if rl["inherit"] != true || rl["failureMode"] != "FailOpen" || rl["responseHeaders"] != "XRateLimit" ||
		rule["scope"] != "Local" || rule["missingKey"] != "Shared" || rule["counters"] != "PerRoute" || rule["maxTrackedKeys"] != int64(100000) ||
		clientIP["ipv4PrefixLength"] != int64(32) || clientIP["ipv6PrefixLength"] != int64(64) {
		t.Errorf("login-throttle rateLimit stored as %v", rl)
	}
	if spec, _, _ := unstructured.NestedMap(lt.Object, "spec"); len(spec) != 3 { // targetRefs, strategy, rateLimit
		t.Errorf("login-throttle spec has blocks it did not set: %v", spec)
	}
	if to, _, _ := unstructured.NestedMap(stored["orders-resilience"].Object, "spec", "timeouts"); to["idle"] != "5m" || to["connectionIdle"] != "1m" || to["request"] != "10s" {
		t.Errorf("orders-resilience timeouts stored as %v", to)
	}

	// Applying the same objects again changes nothing of the spec (the controller may write
	// status in between, so the resource version is not compared).
	for _, f := range files {
		for _, u := range documents(t, f) {
			if !isPolicy(u) {
				continue
			}
			again, err := apply(u)
			if err != nil {
				t.Fatalf("re-apply %s: %v", u.GetName(), err)
			}
			before := stored[u.GetName()]
			if u.GetKind() == "AuthPolicy" {
				before = auth[u.GetName()]
				read, err := resourceFor(t, dc, u).Get(ctx, u.GetName(), metav1.GetOptions{})
				if err != nil || !equality.Semantic.DeepEqual(read.Object["spec"], before.Object["spec"]) {
					t.Errorf("%s reads back differently (%v): %v -> %v", u.GetName(), err, before.Object["spec"], read.Object["spec"])
				}
			}
			if !equality.Semantic.DeepEqual(again.Object["spec"], before.Object["spec"]) || again.GetGeneration() != 1 {
				t.Errorf("re-applying %s changed it: generation %d, spec %v -> %v",
					u.GetName(), again.GetGeneration(), before.Object["spec"], again.Object["spec"])
			}
		}
	}

	// The upstream group is accepted and stored as ours.
	up := obj(t, "apiVersion: policy.apoxy.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: upstream-group}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: default, sectionName: http}]\n  timeouts: {request: 5s}\n")
	got, err := resourceFor(t, dc, up).Create(ctx, up, metav1.CreateOptions{FieldValidation: "Strict"})
	if err != nil {
		t.Fatal(err)
	}
	if refs, _, _ := unstructured.NestedSlice(got.Object, "spec", "targetRefs"); refs[0].(map[string]any)["group"] != "gateway.apoxy.dev" {
		t.Errorf("targetRefs stored as %v", refs)
	}

	// A status as the translator writes it, then the table `apoxy get trafficpolicies` shows.
	st := gwapiv1.PolicyStatus{Ancestors: []gwapiv1.PolicyAncestorStatus{{
		AncestorRef:    gwapiv1.ParentReference{Name: "default"},
		ControllerName: "gateway.apoxy.dev/gatewayclass-controller",
		Conditions: []metav1.Condition{
			{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: metav1.Now()},
			{Type: "Programmed", Status: metav1.ConditionFalse, Reason: "Reconciling", LastTransitionTime: metav1.Now()},
		},
	}}}
	stu, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&st)
	if err != nil {
		t.Fatal(err)
	}
	lt, err = resourceFor(t, dc, lt).Get(ctx, "login-throttle", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lt.Object["status"] = stu
	if _, err := resourceFor(t, dc, lt).UpdateStatus(ctx, lt, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rows := table(t, s, "/apis/policy.apoxy.dev/v1alpha1/namespaces/default/trafficpolicies")
	want := map[string][]any{
		"login-throttle": {"login-throttle", "HTTPRoute/shop/login", "True", "False"},
		"app-uploads":    {"app-uploads", "HTTPRoute/app/upload", nil, nil},
		"upstream-group": {"upstream-group", "Gateway/default/http", nil, nil},
	}
	for _, row := range rows.Rows {
		name := row.Cells[0].(string)
		if w, ok := want[name]; ok {
			if got := row.Cells[:4]; !slices.Equal(got, w) {
				t.Errorf("row %s = %v, want %v", name, got, w)
			}
			delete(want, name)
		}
	}
	if len(want) > 0 {
		t.Errorf("rows missing: %v (table %v)", want, rows.Rows)
	}
	var cols []string
	for _, c := range rows.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if !slices.Equal(cols, []string{"Name", "Targets", "Accepted", "Programmed", "Strategy", "Age"}) {
		t.Errorf("columns = %v", cols)
	}

	// The same for `apoxy get authpolicies` (`kubectl get ap`).
	ac, err := resourceFor(t, dc, auth["api-cors"]).Get(ctx, "api-cors", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ac.Object["status"] = stu
	if _, err := resourceFor(t, dc, ac).UpdateStatus(ctx, ac, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rows = table(t, s, "/apis/policy.apoxy.dev/v1alpha1/namespaces/default/authpolicies")
	wantAuth := map[string][]any{
		"api-cors":    {"api-cors", "HTTPRoute/api", "True", "False", "Default"},
		"admin-basic": {"admin-basic", "HTTPRoute/site/admin", nil, nil, "Default"},
	}
	for _, row := range rows.Rows {
		name := row.Cells[0].(string)
		if w, ok := wantAuth[name]; ok {
			if got := row.Cells[:5]; !slices.Equal(got, w) {
				t.Errorf("row %s = %v, want %v", name, got, w)
			}
			delete(wantAuth, name)
		}
	}
	if len(wantAuth) > 0 || len(rows.Rows) != 7 {
		t.Errorf("rows missing: %v (table %v)", wantAuth, rows.Rows)
	}
	cols = nil
	for _, c := range rows.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if !slices.Equal(cols, []string{"Name", "Targets", "Accepted", "Programmed", "Strategy", "Age"}) {
		t.Errorf("authpolicies columns = %v", cols)
	}
}

// checkAuthExamples checks the AuthPolicy examples as the server stored them: every default
// inside the blocks each sets (§2.4), nothing in the blocks it does not set, the user's values
// untouched.
func checkAuthExamples(t *testing.T, auth map[string]*unstructured.Unstructured) {
	t.Helper()
	get := func(name string, path ...string) any {
		v, _, err := unstructured.NestedFieldNoCopy(auth[name].Object, path...)
		if err != nil {
			t.Fatalf("%s %v: %v", name, path, err)
		}
		return v
	}
	specKeys := func(name string) []string {
		spec, _, _ := unstructured.NestedMap(auth[name].Object, "spec")
		var keys []string
		for k := range spec {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys
	}
	for name, want := range map[string][]string{
		"api-jwt":        {"jwt", "strategy", "targetRefs"},
		"grafana-login":  {"authorization", "oidc", "strategy", "targetRefs"},
		"admin-basic":    {"basicAuth", "strategy", "targetRefs"},
		"payments-authz": {"extAuth", "jwt", "strategy", "targetRefs"},
		"api-cors":       {"cors", "strategy", "targetRefs"},
	} {
		if got := specKeys(name); !slices.Equal(got, want) {
			t.Errorf("%s: spec holds %v, want %v (absent blocks stay absent)", name, got, want)
		}
	}
	providers := get("api-jwt", "spec", "jwt", "providers").([]any)
	auth0, keycloak := providers[0].(map[string]any), providers[1].(map[string]any)
	for _, c := range []struct {
		got, want any
		what      string
	}{
		{get("api-jwt", "spec", "jwt", "forwardToken"), false, "api-jwt forwardToken (the user's)"},
		{auth0["clockSkew"], "1m", "api-jwt auth0 clockSkew"},
		{auth0["jwks"].(map[string]any)["remote"], map[string]any{"uri": "https://example.eu.auth0.com/.well-known/jwks.json", "cacheDuration": "10m", "timeout": "5s"}, "api-jwt auth0 jwks"},
		{auth0["extractFrom"], map[string]any{"headers": []any{map[string]any{"name": "Authorization", "prefix": "Bearer "}}}, "api-jwt auth0 extractFrom (the default)"},
		{keycloak["extractFrom"], map[string]any{"headers": []any{map[string]any{"name": "Authorization", "prefix": "Bearer "}}, "cookies": []any{"kc_access"}}, "api-jwt keycloak extractFrom (the user's)"},
		{keycloak["claimToHeaders"].([]any)[0], map[string]any{"claim": "preferred_username", "header": "x-user-id"}, "api-jwt keycloak claimToHeaders"},
		{get("grafana-login", "spec", "oidc", "clientSecretRef"), map[string]any{"name": "grafana-oidc", "key": "client-secret"}, "grafana-login clientSecretRef"},
		{get("grafana-login", "spec", "oidc", "cookies"), map[string]any{"domain": "ops.example.com", "sameSite": "Lax", "secure": true}, "grafana-login cookies"},
		{get("grafana-login", "spec", "oidc", "session"), map[string]any{"absoluteTimeout": "24h", "refreshTokens": true}, "grafana-login session"},
		{get("grafana-login", "spec", "oidc", "unauthenticatedAction"), "Auto", "grafana-login unauthenticatedAction"},
		{get("grafana-login", "spec", "oidc", "scopes"), []any{"openid", "email"}, "grafana-login scopes"},
		{get("grafana-login", "spec", "authorization", "defaultAction"), "Deny", "grafana-login defaultAction"},
		{get("admin-basic", "spec", "basicAuth"), map[string]any{"usersRef": map[string]any{"name": "admin-users", "key": ".htpasswd"}, "realm": "Admin", "forwardUsernameHeader": "x-auth-user"}, "admin-basic basicAuth"},
		{get("payments-authz", "spec", "jwt", "forwardToken"), true, "payments-authz forwardToken"},
		{get("payments-authz", "spec", "extAuth", "includeBody"), map[string]any{"maxBytes": int64(16384), "allowPartial": false}, "payments-authz includeBody"},
		{get("payments-authz", "spec", "extAuth", "timeout"), "500ms", "payments-authz timeout (the user's)"},
		{get("payments-authz", "spec", "extAuth", "statusOnError"), int64(503), "payments-authz statusOnError (the user's)"},
		{get("api-cors", "spec", "cors", "maxAge"), "10m", "api-cors maxAge (the user's)"},
		{get("api-cors", "spec", "targetRefs"), []any{map[string]any{"group": "gateway.apoxy.dev", "kind": "HTTPRoute", "name": "api"}}, "api-cors targetRefs"},
	} {
		if !equality.Semantic.DeepEqual(c.got, c.want) {
			t.Errorf("%s stored as %v, want %v", c.what, c.got, c.want)
		}
	}
}

// table fetches path of the default project as a Table, as `apoxy get` does.
func table(t *testing.T, s *Server, path string) *metav1.Table {
	t.Helper()
	rc, err := restclient.UnversionedRESTClientFor(&restclient.Config{
		Host: s.URL(), BearerToken: s.AdminToken(),
		TLSClientConfig: restclient.TLSClientConfig{CAData: s.CACertPEM()},
		ContentConfig:   restclient.ContentConfig{NegotiatedSerializer: Codecs.WithoutConversion()},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := rc.Get().AbsPath(projectPath("default"), path).SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("table %s: %v: %s", path, err, b)
	}
	tb := &metav1.Table{}
	if err := json.Unmarshal(b, tb); err != nil {
		t.Fatal(err)
	}
	return tb
}

// TestInvalidTrafficPoliciesRejected: the API server answers 422 naming the field for invalid
// policies (400 for what the types cannot hold) and stores nothing.
func TestInvalidTrafficPoliciesRejected(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	dc := s.dynamic(t, "default", s.AdminToken())
	policy := func(spec string) string {
		return "apiVersion: policy.apoxy.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: bad}\nspec:\n" + spec
	}
	const target = "  targetRefs: [{kind: HTTPRoute, name: shop}]\n"
	checkRejected(t, dc, []rejection{
		{"no feature", policy(target), 422, []string{"spec"}},
		{"no targets", policy("  timeouts: {request: 1s}\n"), 422, []string{"spec.targetRefs"}},
		{"TCPRoute target", policy("  targetRefs: [{kind: TCPRoute, name: t}]\n  timeouts: {request: 1s}\n"), 422, []string{"spec.targetRefs[0].kind"}},
		{"override on a route", policy(target + "  strategy: Override\n  timeouts: {request: 1s}\n"), 422, []string{"spec.strategy"}},
		{"disabled with settings", policy(target + "  retry: {disabled: true, attempts: 3}\n"), 422, []string{"spec.retry.attempts"}},
		{"backendRequest over request", policy(target + "  timeouts: {request: 1s, backendRequest: 5s}\n"), 422, []string{"spec.timeouts.backendRequest"}},
		{"unit", policy(target + "  rateLimit: {rules: [{name: a, limit: {requests: 1, unit: Fortnight}}, {name: b, limit: {requests: 1, unit: Second}}]}\n"), 422,
			[]string{"spec.rateLimit.rules[0].limit.unit"}},
		{"maglev not prime", policy(target + "  loadBalancer: {type: Maglev, hash: {sourceIP: {}}, maglev: {tableSize: 1000}}\n"), 422, []string{"spec.loadBalancer.maglev.tableSize"}},
		{"fraction over one", policy(target + "  faultInjection: {abort: {httpStatus: 503, fraction: {numerator: 3, denominator: 2}}}\n"), 422, []string{"spec.faultInjection.abort.fraction.numerator"}},
		{"float percent", policy(target + "  faultInjection: {abort: {httpStatus: 503, percent: 2.5}}\n"), 400, []string{"percent"}},
		{"target in another namespace", policy("  targetRefs: [{kind: HTTPRoute, name: shop, namespace: other}]\n  timeouts: {request: 1s}\n"), 400, []string{`unknown field "spec.targetRefs[0].namespace"`}},
	})
}

// TestInvalidAuthPoliciesRejected: the API server answers 422 naming the field for invalid
// AuthPolicies (design §5.83, §5.101, §5.108), 400 for what the types cannot hold, and stores
// nothing.
func TestInvalidAuthPoliciesRejected(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	dc := s.dynamic(t, "default", s.AdminToken())
	policy := func(spec string) string {
		return "apiVersion: policy.apoxy.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {name: bad}\nspec:\n  targetRefs: [{kind: HTTPRoute, name: api}]\n" + spec
	}
	const oidc = "  oidc: {provider: {issuer: 'https://accounts.google.com'}, clientID: c, clientSecretRef: {name: s}"
	const remote = "jwks: {remote: {uri: 'https://idp.example.com/keys'}}"
	checkRejected(t, dc, []rejection{
		{"no feature", policy(""), 422, []string{"spec"}},
		{"no defaultAction (5.101)", policy("  authorization: {rules: [{name: r, action: Allow, match: {authenticated: true}}]}\n"), 422, []string{"spec.authorization.defaultAction"}},
		{"SameSite None without Secure (5.83)", policy(oidc + ", cookies: {sameSite: None, secure: false}}\n"), 422, []string{"spec.oidc.cookies.sameSite"}},
		{"duplicate issuer", policy("  jwt: {providers: [{name: a, issuer: i, " + remote + "}, {name: b, issuer: i, " + remote + "}]}\n"), 422, []string{"spec.jwt.providers[1].issuer"}},
		{"alg none", policy("  jwt: {providers: [{name: a, issuer: i, " + remote + ", algorithms: [none]}]}\n"), 422, []string{"spec.jwt.providers[0].algorithms[0]"}},
		{"override on a route", policy("  strategy: Override\n  cors: {allowOrigins: ['*']}\n"), 422, []string{"spec.strategy"}},
		{"disabled with settings", policy("  basicAuth: {disabled: true, realm: x}\n"), 422, []string{"spec.basicAuth.realm"}},
		{"star among origins", policy("  cors: {allowOrigins: ['https://a.example.com', '*']}\n"), 422, []string{"spec.cors.allowOrigins[1]"}},
		{"ext-authz to a Service", policy("  extAuth: {grpc: {backendRef: {kind: Service, name: opa, port: 9191}}}\n"), 422, []string{"spec.extAuth.grpc.backendRef.kind", "spec.extAuth.grpc.backendRef.group"}},
		{"claim to Host", policy("  jwt: {providers: [{name: a, issuer: i, " + remote + ", claimToHeaders: [{claim: sub, header: host}]}]}\n"), 422, []string{"spec.jwt.providers[0].claimToHeaders[0].header"}},
		{"body as text", policy("  extAuth: {grpc: {backendRef: {group: core.apoxy.dev, kind: Backend, name: opa, port: 1}}, includeBody: {maxBytes: 16k}}\n"), 400, []string{"maxBytes"}},
		{"unknown field", policy("  jwt: {providers: [{name: a, issuer: i, jwksUri: 'https://a'}]}\n"), 400, []string{`unknown field "spec.jwt.providers[0].jwksUri"`}},
	})
}

// rejection is an object the API server must refuse: the status code, and the fields the
// error must name (a cause's field or a part of the message).
type rejection struct {
	name   string
	yaml   string
	code   int
	fields []string
}

// checkRejected creates each object (named "bad") with strict field validation and checks the
// status code, the fields named, and that nothing was stored.
func checkRejected(t *testing.T, dc dynamic.Interface, tests []rejection) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := obj(t, tc.yaml)
			rc := resourceFor(t, dc, u)
			_, err := rc.Create(context.Background(), u, metav1.CreateOptions{FieldValidation: "Strict"})
			var se *apierrors.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("create: err = %v, want an API error", err)
			}
			if got := int(se.ErrStatus.Code); got != tc.code {
				t.Fatalf("status code = %d, want %d (%v)", got, tc.code, err)
			}
			t.Log(err)
			var named []string
			if d := se.ErrStatus.Details; d != nil {
				for _, c := range d.Causes {
					named = append(named, c.Field)
				}
			}
			for _, f := range tc.fields {
				if !slices.Contains(named, f) && !strings.Contains(err.Error(), f) {
					t.Errorf("error does not name %q: causes %v, message %q", f, named, err)
				}
			}
			if _, err := rc.Get(context.Background(), "bad", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("rejected object was stored: get err = %v", err)
			}
		})
	}
}
