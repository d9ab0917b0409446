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
const statusBase = tpBase + `---
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

// policyCond returns a policy's condition of a type on its ancestor Gateway edge (listener
// section when given).
func policyCond(t *testing.T, r *status.Report, policy, section, typ string) *metav1.Condition {
	t.Helper()
	st := r.TrafficPolicies[status.KeyOf("default", policy)]
	if st == nil {
		t.Fatalf("no status for policy %s", policy)
	}
	for _, a := range st.Ancestors {
		if a.AncestorRef.Name == "edge" && ptrString(a.AncestorRef.SectionName) == section {
			return status.Find(a.Conditions, typ)
		}
	}
	t.Fatalf("policy %s has no ancestor edge/%s: %+v", policy, section, st.Ancestors)
	return nil
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

// A route policy that sets retry takes the block from the Gateway's policy on that route
// only: the Gateway policy is PartiallyProgrammed (naming the block and the winner), the
// route policy Programmed.
func TestTrafficPolicyPartiallyProgrammed(t *testing.T) {
	_, _, r := translateYAML(t, statusBase, `
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: g}
spec:
  targetRefs: [{kind: Gateway, name: edge}]
  retry: {attempts: 1}
  timeouts: {request: 30s}
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: r}
spec:
  targetRefs: [{kind: HTTPRoute, name: api}]
  retry: {attempts: 3}
`)
	wantCond(t, "g Programmed", policyCond(t, r, "g", "", "Programmed"), metav1.ConditionTrue, "PartiallyProgrammed",
		"retry superseded by TrafficPolicy default/r (HTTPRoute default/api)")
	if c := policyCond(t, r, "g", "", "Programmed"); c != nil && strings.Contains(c.Message, "timeouts") {
		t.Errorf("g's timeouts apply everywhere, yet: %q", c.Message)
	}
	wantCond(t, "r Programmed", policyCond(t, r, "r", "", "Programmed"), metav1.ConditionTrue, "Programmed")
	wantCond(t, "g Accepted", policyCond(t, r, "g", "", "Accepted"), metav1.ConditionTrue, "Accepted")
}

// The route rule's own timeouts.request beats the policy's field (Rule D): the policy is
// PartiallyProgrammed with the rule and its value in the message.
func TestTrafficPolicyPartiallyProgrammedByRouteField(t *testing.T) {
	base := strings.Replace(statusBase, "    matches: [{path: {value: /login}}]\n", "    matches: [{path: {value: /login}}]\n    timeouts: {request: 5s}\n", 1)
	_, _, r := translateYAML(t, base, `
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: g}
spec:
  targetRefs: [{kind: Gateway, name: edge}]
  timeouts: {request: 30s}
`)
	wantCond(t, "g Programmed", policyCond(t, r, "g", "", "Programmed"), metav1.ConditionTrue, "PartiallyProgrammed",
		"timeouts.request superseded by HTTPRoute default/api rule login (5s)")

	// Design §5 case 13: a policy setting only timeouts.connect next to the rule's own
	// timeouts.request loses nothing (both apply), so it is Programmed, not partially.
	_, _, r = translateYAML(t, base, `
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: g}
spec:
  targetRefs: [{kind: Gateway, name: edge}]
  timeouts: {connect: 3s}
`)
	wantCond(t, "connect-only g Programmed", policyCond(t, r, "g", "", "Programmed"), metav1.ConditionTrue, "Programmed")
}

// An Override on the Gateway wins the only block a route policy sets, on every route it
// targets: the route policy is Overridden (Programmed=False); the Gateway policy, whose block
// applies everywhere, is Programmed.
func TestTrafficPolicyOverridden(t *testing.T) {
	_, snap, r := translateYAML(t, statusBase, `
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: baseline}
spec:
  targetRefs: [{kind: Gateway, name: edge}]
  strategy: Override
  retry: {attempts: 0}
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: r}
spec:
  targetRefs: [{kind: HTTPRoute, name: api}]
  retry: {attempts: 5}
`)
	wantCond(t, "r Programmed", policyCond(t, r, "r", "", "Programmed"), metav1.ConditionFalse, "Overridden",
		"retry superseded by TrafficPolicy default/baseline (Gateway default/edge, Override)")
	wantCond(t, "baseline Programmed", policyCond(t, r, "baseline", "", "Programmed"), metav1.ConditionTrue, "Programmed")
	for _, rt := range servedRoutes(snap, "api") {
		if rt.Retry == nil || rt.Retry.Attempts != 0 {
			t.Errorf("%s: retry %+v, want the Override's 0 attempts", rt.Name, rt.Retry)
		}
		if s := rt.PolicySourceOf("retry"); s == nil || s.Source != "TrafficPolicy default/baseline (Gateway default/edge, Override)" {
			t.Errorf("%s: retry source %+v", rt.Name, s)
		}
	}
}

// A route policy that also sets a block nobody overrides is only PartiallyProgrammed under
// the Override; a rate-limit rule replaced by name is reported rule by rule.
func TestTrafficPolicyPartialUnderOverride(t *testing.T) {
	_, _, r := translateYAML(t, statusBase, `
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: baseline}
spec:
  targetRefs: [{kind: Gateway, name: edge}]
  strategy: Override
  retry: {attempts: 0}
  rateLimit:
    rules: [{name: per-ip, countBy: [{clientIP: {}}], limit: {requests: 100, unit: Second}}]
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: r}
spec:
  targetRefs: [{kind: HTTPRoute, name: api}]
  retry: {attempts: 5}
  rateLimit:
    rules:
    - {name: per-ip, limit: {requests: 1000, unit: Second}}
    - {name: login, limit: {requests: 5, unit: Minute}}
`)
	wantCond(t, "r Programmed", policyCond(t, r, "r", "", "Programmed"), metav1.ConditionTrue, "PartiallyProgrammed",
		"retry superseded by TrafficPolicy default/baseline", "rateLimit rule per-ip superseded by TrafficPolicy default/baseline")
	if c := policyCond(t, r, "r", "", "Programmed"); c != nil && strings.Contains(c.Message, "login") {
		t.Errorf("r's login rule applies, yet: %q", c.Message)
	}
}

// A listener policy reports under its listener ancestor; a route policy on one rule that
// sets the same block supersedes it there only.
func TestTrafficPolicyListenerAncestor(t *testing.T) {
	_, _, r := translateYAML(t, statusBase, `
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: l}
spec:
  targetRefs: [{kind: Gateway, name: edge, sectionName: http}]
  circuitBreaker: {maxConnections: 10}
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: rule}
spec:
  targetRefs: [{kind: HTTPRoute, name: api, sectionName: login}]
  circuitBreaker: {disabled: true}
`)
	wantCond(t, "l Programmed", policyCond(t, r, "l", "http", "Programmed"), metav1.ConditionTrue, "PartiallyProgrammed",
		"circuitBreaker disabled by TrafficPolicy default/rule (HTTPRoute default/api rule login)")
	wantCond(t, "rule Programmed", policyCond(t, r, "rule", "", "Programmed"), metav1.ConditionTrue, "Programmed")
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
	snap, r2 := Translate(set, testOptions)
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
	for _, rt := range servedRoutes(snap, "api") {
		if rt.PolicySources != nil {
			t.Errorf("%s keeps policy sources %+v", rt.Name, rt.PolicySources)
		}
	}
}

// A policy accepted for one target and Conflicted for another under the same Gateway is
// PartiallyProgrammed there, naming the failure.
func TestTrafficPolicyPartiallyProgrammedByFailedTarget(t *testing.T) {
	_, _, r := translateYAML(t, statusBase, `
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: older, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  targetRefs: [{kind: HTTPRoute, name: api}]
  retry: {attempts: 1}
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: newer, creationTimestamp: "2026-02-01T00:00:00Z"}
spec:
  targetRefs: [{kind: HTTPRoute, name: api}, {kind: HTTPRoute, name: other}]
  retry: {attempts: 2}
`)
	wantCond(t, "newer Accepted", policyCond(t, r, "newer", "", "Accepted"), metav1.ConditionTrue, "Accepted", "not for: conflicts with default/older")
	wantCond(t, "newer Programmed", policyCond(t, r, "newer", "", "Programmed"), metav1.ConditionTrue, "PartiallyProgrammed",
		"not in effect for a target: conflicts with default/older (older)")
	wantCond(t, "older Programmed", policyCond(t, r, "older", "", "Programmed"), metav1.ConditionTrue, "Programmed")
}
