package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"apoxy.dev/apoxy/internal/edgetest"
)

// TrafficPolicy lifecycle edge cases of the policy API design §5 that need the whole path:
// the API server, the controller reacting to creates, edits and deletes, the data plane, and
// status written back (cases 1, 5, 17, 18). docs/testing-trafficpolicy.md maps every case.

// shopRoute is an HTTPRoute "shop" for shop.example.com with one rule, named ruleName ("" for
// an unnamed rule).
func shopRoute(port, ruleName string) string {
	name := ""
	if ruleName != "" {
		name = "  - name: " + ruleName + "\n    backendRefs"
	} else {
		name = "  - backendRefs"
	}
	return `apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: shop}
spec:
  endpoints: [{fqdn: shop.internal.example.com}]
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: shop}
spec:
  parentRefs: [{name: default}]
  hostnames: [shop.example.com]
  rules:
` + name + `: [{group: core.apoxy.dev, kind: Backend, name: shop, port: ` + port + `}]
`
}

// abortPolicy is a TrafficPolicy answering every request on its targets with status.
func abortPolicy(name, targets string, status int) string {
	return fmt.Sprintf(`apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: %s}
spec:
  targetRefs: %s
  faultInjection: {abort: {httpStatus: %d}}
`, name, targets, status)
}

// policyAncestors returns each ancestor's Accepted condition (status, reason, message,
// observedGeneration) and the policy's generation.
func policyAncestors(e *edgetest.Env, name string) (conds []map[string]any, generation int64) {
	p := e.Get("policy.apoxy.dev/v1alpha1", "TrafficPolicy", name)
	ancestors, _, _ := unstructured.NestedSlice(p.Object, "status", "ancestors")
	for _, a := range ancestors {
		cs, _, _ := unstructured.NestedSlice(a.(map[string]any), "conditions")
		for _, c := range cs {
			if m := c.(map[string]any); m["type"] == "Accepted" {
				conds = append(conds, m)
			}
		}
	}
	return conds, p.GetGeneration()
}

func wantStatus(t *testing.T, e *edgetest.Env, what string, code int) {
	t.Helper()
	e.WaitFor(what, func() error {
		if r := request(t, e, "GET", "shop.example.com", "/"); r.StatusCode != code {
			return fmt.Errorf("GET shop.example.com: %d, want %d", r.StatusCode, code)
		}
		return nil
	})
}

// Case 1 end to end: the older of two policies on one route serves, the newer is Conflicted
// naming it; deleting the older makes the unedited newer Accepted and changes the traffic.
// The names sort against their age, so the creation time decides, not the name.
func TestTrafficPolicyConflictResolvesOnDelete(t *testing.T) {
	ln := echoServer(t, "127.0.0.9:0", "shop", nil)
	e := edgetest.Start(t, edgetest.Options{Hosts: map[string][]string{"shop.internal.example.com": {"127.0.0.9"}}})
	route := "[{group: gateway.apoxy.dev, kind: HTTPRoute, name: shop}]"
	e.Apply(shopRoute(portOf(ln), "") + "---\n" + abortPolicy("zz-older", route, 418))
	wantStatus(t, e, "older policy in force", 418)
	time.Sleep(1100 * time.Millisecond) // creation timestamps have a resolution of one second
	e.Apply(abortPolicy("aa-newer", route, 451))
	e.WaitFor("newer Conflicted", func() error {
		if st, reason, msg := policyCondition(e, "aa-newer", "Accepted"); st != "False" || reason != "Conflicted" || !strings.Contains(msg, "default/zz-older") {
			return fmt.Errorf("aa-newer: %s %s %q", st, reason, msg)
		}
		return nil
	})
	if r := request(t, e, "GET", "shop.example.com", "/"); r.StatusCode != 418 {
		t.Fatalf("with both policies: %d, want the older's 418", r.StatusCode)
	}
	e.Delete("policy.apoxy.dev/v1alpha1", "TrafficPolicy", "zz-older")
	e.WaitFor("newer Accepted", func() error {
		if st, reason, msg := policyCondition(e, "aa-newer", "Accepted"); st != "True" {
			return fmt.Errorf("aa-newer: %s %s %q", st, reason, msg)
		}
		return nil
	})
	if r := request(t, e, "GET", "shop.example.com", "/"); r.StatusCode != 451 {
		t.Errorf("after deleting the older: %d, want the newer's 451 (Accepted is written after the data plane applied it)", r.StatusCode)
	}
}

// Cases 17 and 5 end to end: a policy created before its route is TargetNotFound and the
// route serves untouched; when the route appears the unedited policy is Accepted and in
// force. A policy on a rule name the route lacks heals when the rule is named.
func TestTrafficPolicyBeforeItsTarget(t *testing.T) {
	ln := echoServer(t, "127.0.0.9:0", "shop", nil)
	e := edgetest.Start(t, edgetest.Options{Hosts: map[string][]string{"shop.internal.example.com": {"127.0.0.9"}}})
	e.Apply(abortPolicy("early", "[{group: gateway.apoxy.dev, kind: HTTPRoute, name: shop}]", 418) + "---\n" +
		abortPolicy("on-rule", "[{group: gateway.apoxy.dev, kind: HTTPRoute, name: shop, sectionName: checkout}]", 419))
	e.WaitFor("TargetNotFound", func() error {
		for _, p := range []string{"early", "on-rule"} {
			if st, reason, msg := policyCondition(e, p, "Accepted"); st != "False" || reason != "TargetNotFound" {
				return fmt.Errorf("%s: %s %s %q", p, st, reason, msg)
			}
		}
		return nil
	})
	e.Apply(shopRoute(portOf(ln), ""))
	e.WaitFor("policy accepted once the route exists", func() error {
		if st, reason, msg := policyCondition(e, "early", "Accepted"); st != "True" {
			return fmt.Errorf("early: %s %s %q", st, reason, msg)
		}
		if st, reason, msg := policyCondition(e, "on-rule", "Accepted"); st != "False" || reason != "TargetNotFound" || !strings.Contains(msg, "checkout") {
			return fmt.Errorf("on-rule (the rule has no name yet): %s %s %q", st, reason, msg)
		}
		return nil
	})
	wantStatus(t, e, "route-level policy in force", 418)
	// The route-level policy gone, and the rule named: the rule policy heals, unedited.
	e.Delete("policy.apoxy.dev/v1alpha1", "TrafficPolicy", "early")
	e.Apply(shopRoute(portOf(ln), "checkout"))
	e.WaitFor("rule policy accepted", func() error {
		if st, reason, msg := policyCondition(e, "on-rule", "Accepted"); st != "True" {
			return fmt.Errorf("on-rule: %s %s %q", st, reason, msg)
		}
		return nil
	})
	wantStatus(t, e, "rule policy in force", 419)
}

// Case 18: a spec change bumps the generation; every ancestor's condition carries the new
// observedGeneration only once the data plane serves the new spec: the first request after
// the status shows it already gets the new behaviour.
func TestTrafficPolicyObservedGenerationAfterTheDataPlane(t *testing.T) {
	ln := echoServer(t, "127.0.0.9:0", "shop", nil)
	e := edgetest.Start(t, edgetest.Options{Hosts: map[string][]string{"shop.internal.example.com": {"127.0.0.9"}}})
	targets := "[{group: gateway.apoxy.dev, kind: Gateway, name: default, sectionName: http}, {group: gateway.apoxy.dev, kind: Gateway, name: default, sectionName: https}]"
	e.Apply(shopRoute(portOf(ln), "") + "---\n" + abortPolicy("gw", targets, 418))
	observed := func(gen int64) func() error {
		return func() error {
			conds, g := policyAncestors(e, "gw")
			if g != gen {
				return fmt.Errorf("generation %d, want %d", g, gen)
			}
			if len(conds) != 2 {
				return fmt.Errorf("%d ancestors, want 2 (listeners http and https)", len(conds))
			}
			for _, c := range conds {
				if og, _, _ := unstructured.NestedInt64(c, "observedGeneration"); og != gen || c["status"] != "True" {
					return fmt.Errorf("ancestor condition %v, want Accepted at generation %d", c, gen)
				}
			}
			return nil
		}
	}
	e.WaitFor("generation 1 observed", observed(1))
	// The policy is applied before its route (apoxy apply's order): wait for the route, which
	// is served with the policy from its first request.
	e.WaitFor("route served", func() error {
		switch r := request(t, e, "GET", "shop.example.com", "/"); r.StatusCode {
		case 418:
			return nil
		case 404:
			return fmt.Errorf("route not served yet")
		default:
			t.Fatalf("the route was served without its policy: %d", r.StatusCode)
		}
		return nil
	})
	for _, step := range []struct {
		gen  int64
		code int
	}{{2, 451}, {3, 503}} {
		e.Apply(abortPolicy("gw", targets, step.code))
		e.WaitFor(fmt.Sprintf("generation %d observed", step.gen), observed(step.gen))
		if r := request(t, e, "GET", "shop.example.com", "/"); r.StatusCode != step.code {
			t.Errorf("generation %d observed on every ancestor, but traffic got %d, want %d", step.gen, r.StatusCode, step.code)
		}
	}
	// Re-applying the same spec does not bump the generation.
	e.Apply(abortPolicy("gw", targets, 503))
	time.Sleep(300 * time.Millisecond)
	if _, g := policyAncestors(e, "gw"); g != 3 {
		t.Errorf("an unchanged apply moved the generation to %d", g)
	}
}
