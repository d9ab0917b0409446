package translate

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/resource"
	"apoxy.dev/apoxy/internal/resource/manifest"
	"apoxy.dev/apoxy/internal/status"
)

// statusBase is a Gateway "edge" (listeners http and alt) with HTTPRoute "api" (rules login and
// search) and HTTPRoute "other", both on edge.
const statusBase = `
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
  listeners:
  - {name: http, protocol: HTTP, port: 80}
  - {name: alt, protocol: HTTP, port: 8080}
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
    backendRefs: [{kind: Backend, name: be, port: 8080}]
  - name: search
    backendRefs: [{kind: Backend, name: be, port: 8080}]
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: other}
spec:
  parentRefs: [{name: edge}]
  hostnames: [other.example.com]
  rules:
  - backendRefs: [{kind: Backend, name: be, port: 8080}]
`

func translateYAML(t *testing.T, docs ...string) (*resource.Set, *ir.Snapshot, *status.Report) {
	t.Helper()
	set, err := manifest.Load(strings.NewReader(strings.Join(docs, "\n---\n")))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	snap, report := Translate(set, testOptions)
	return set, snap, report
}

func wantCond(t *testing.T, what string, c *metav1.Condition, st metav1.ConditionStatus, reason string, msgParts ...string) {
	t.Helper()
	if c == nil {
		t.Errorf("%s: no condition", what)
		return
	}
	if c.Status != st || c.Reason != reason {
		t.Errorf("%s: %s/%s (%s), want %s/%s", what, c.Status, c.Reason, c.Message, st, reason)
	}
	for _, m := range msgParts {
		if !strings.Contains(c.Message, m) {
			t.Errorf("%s: message %q does not mention %q", what, c.Message, m)
		}
	}
}

// TrafficPolicyAffected appears on the Gateway, the targeted listener and every parent
// status of a targeted route (a rule target counts for its route), not on objects only
// reached by inheritance, and disappears once the policies are gone.
func TestTrafficPolicyAffected(t *testing.T) {
	policies := `
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: g}
spec:
  targetRefs: [{kind: Gateway, name: edge}]
  retry: {attempts: 1}
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: l}
spec:
  targetRefs: [{kind: Gateway, name: edge, sectionName: alt}]
  retry: {attempts: 2}
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: r, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  targetRefs: [{kind: HTTPRoute, name: api}]
  retry: {attempts: 3}
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: rule, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  targetRefs: [{kind: HTTPRoute, name: api, sectionName: login}]
  retry: {attempts: 4}
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: loser, creationTimestamp: "2026-02-01T00:00:00Z"}
spec:
  targetRefs: [{kind: HTTPRoute, name: other, sectionName: nope}]
  retry: {attempts: 4}
`
	set, _, r := translateYAML(t, statusBase, policies)
	gw := r.Gateways[status.KeyOf("default", "edge")]
	wantCond(t, "Gateway", status.Find(gw.Conditions, ConditionTrafficPolicyAffected), metav1.ConditionTrue, "Accepted", "TrafficPolicy default/g")
	if c := status.Find(gw.Conditions, ConditionTrafficPolicyAffected); c != nil && strings.Contains(c.Message, "default/l") {
		t.Errorf("the Gateway names the listener's policy: %q", c.Message)
	}
	for _, ls := range gw.Listeners {
		c := status.Find(ls.Conditions, ConditionTrafficPolicyAffected)
		switch ls.Name {
		case "alt":
			wantCond(t, "listener alt", c, metav1.ConditionTrue, "Accepted", "TrafficPolicy default/l")
		default:
			if c != nil {
				t.Errorf("listener %s is not a target: %+v", ls.Name, c)
			}
		}
	}
	api := r.HTTPRoutes[status.KeyOf("default", "api")]
	for _, p := range api.Parents {
		wantCond(t, "api parent", status.Find(p.Conditions, ConditionTrafficPolicyAffected), metav1.ConditionTrue, "Accepted",
			"TrafficPolicy default/r", "TrafficPolicy default/rule (rule login)")
		for _, typ := range []gwapiv1.RouteConditionType{gwapiv1.RouteConditionAccepted, gwapiv1.RouteConditionResolvedRefs} {
			wantCond(t, "api "+string(typ), status.Find(p.Conditions, string(typ)), metav1.ConditionTrue, string(typ))
		}
	}
	for _, p := range r.HTTPRoutes[status.KeyOf("default", "other")].Parents {
		if c := status.Find(p.Conditions, ConditionTrafficPolicyAffected); c != nil {
			t.Errorf("other is reached only by inheritance (and a TargetNotFound policy): %+v", c)
		}
	}

	// The controller writes the report; the next translation without the policies drops
	// the condition.
	for _, g := range set.Gateways {
		g.Status = *r.Gateways[status.KeyOf(g.Namespace, g.Name)]
	}
	for _, hr := range set.HTTPRoutes {
		hr.Status = *r.HTTPRoutes[status.KeyOf(hr.Namespace, hr.Name)]
	}
	set.TrafficPolicies = nil
	_, r2 := Translate(set, testOptions)
	gw = r2.Gateways[status.KeyOf("default", "edge")]
	if c := status.Find(gw.Conditions, ConditionTrafficPolicyAffected); c != nil {
		t.Errorf("Gateway keeps %+v after its policy was deleted", c)
	}
	for _, ls := range gw.Listeners {
		if c := status.Find(ls.Conditions, ConditionTrafficPolicyAffected); c != nil {
			t.Errorf("listener %s keeps %+v", ls.Name, c)
		}
	}
	for _, p := range r2.HTTPRoutes[status.KeyOf("default", "api")].Parents {
		if c := status.Find(p.Conditions, ConditionTrafficPolicyAffected); c != nil {
			t.Errorf("api keeps %+v", c)
		}
	}
}
