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

// TestPolicyExamplesApply applies every object of the design's TrafficPolicy examples
// (docs/examples/policy) to a real server with server-side apply and strict field validation:
// all are accepted, defaults are stored inside the blocks a policy sets only, applying the same
// file again changes nothing (no spurious diffs, §5.109), the upstream target group is stored
// as ours, and `get` shows the Targets, Accepted and Programmed columns.
func TestPolicyExamplesApply(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	dc := s.dynamic(t, "default", s.AdminToken())
	ctx := context.Background()
	files, err := filepath.Glob("../../docs/examples/policy/*.yaml")
	if err != nil || len(files) != 6 {
		t.Fatalf("examples: %v %v", files, err)
	}
	apply := func(u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		return resourceFor(t, dc, u).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "examples", Force: true})
	}
	stored := map[string]*unstructured.Unstructured{}
	for _, f := range files {
		for _, u := range documents(t, f) {
			got, err := apply(u)
			if err != nil {
				t.Errorf("%s: apply %s %s: %v", filepath.Base(f), u.GetKind(), u.GetName(), err)
				continue
			}
			if u.GetKind() == "TrafficPolicy" {
				stored[u.GetName()] = got
			}
		}
	}
	if len(stored) != 7 {
		t.Fatalf("stored %d TrafficPolicies, want the 7 of the examples", len(stored))
	}

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
			if u.GetKind() != "TrafficPolicy" {
				continue
			}
			again, err := apply(u)
			if err != nil {
				t.Fatalf("re-apply %s: %v", u.GetName(), err)
			}
			before := stored[u.GetName()]
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
	tests := []struct {
		name   string
		yaml   string
		code   int
		fields []string
	}{
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
	}
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
