package gateway

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"apoxy.dev/apoxy/internal/edgetest"
)

const affected = "policy.apoxy.dev/TrafficPolicyAffected"

// gatewayCondition returns a condition of the default Gateway's own status.
func gatewayCondition(e *edgetest.Env, typ string) (status, reason, message string) {
	g := e.Get("gateway.apoxy.dev/v1", "Gateway", "default")
	conds, _, _ := unstructured.NestedSlice(g.Object, "status", "conditions")
	for _, c := range conds {
		if m := c.(map[string]any); m["type"] == typ {
			return fmt.Sprint(m["status"]), fmt.Sprint(m["reason"]), fmt.Sprint(m["message"])
		}
	}
	return "", "", ""
}

// The status half of the policy design (§3.2) through the API server and the controller:
// the targets' policy.apoxy.dev/TrafficPolicyAffected (Gateway, listener, route parents),
// which the API server must accept in their status, the policies' Programmed reasons
// (PartiallyProgrammed when a route policy takes the Gateway policy's retry block,
// Overridden under a Gateway Override), and the conditions gone once the policies are.
func TestTrafficPolicyStatusConditions(t *testing.T) {
	ln := echoServer(t, "127.0.0.9:0", "shop", nil)
	e := edgetest.Start(t, edgetest.Options{Hosts: map[string][]string{"shop.internal.example.com": {"127.0.0.9"}}})
	e.Apply(shopRoute(portOf(ln), "checkout") + `---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: gw}
spec:
  targetRefs: [{group: gateway.apoxy.dev, kind: Gateway, name: default}]
  retry: {attempts: 1}
  timeouts: {request: 30s}
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: listener}
spec:
  targetRefs: [{group: gateway.apoxy.dev, kind: Gateway, name: default, sectionName: http}]
  circuitBreaker: {maxParallelRequests: 1000}
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: shop}
spec:
  targetRefs: [{group: gateway.apoxy.dev, kind: HTTPRoute, name: shop, sectionName: checkout}]
  retry: {attempts: 3}
`)
	e.WaitFor("statuses", func() error {
		for _, c := range []struct {
			what                    string
			get                     func() (string, string, string)
			st, reason, msgContains string
		}{
			{"Gateway", func() (string, string, string) { return gatewayCondition(e, affected) }, "True", "Accepted", "TrafficPolicy default/gw"},
			{"listener http", func() (string, string, string) { return listenerCondition(e, "default", "http", affected) }, "True", "Accepted", "TrafficPolicy default/listener"},
			{"route shop", func() (string, string, string) { return routeCondition(e, "shop", affected) }, "True", "Accepted", "TrafficPolicy default/shop (rule checkout)"},
			{"policy gw", func() (string, string, string) { return policyCondition(e, "gw", "Programmed") }, "True", "PartiallyProgrammed",
				"retry superseded by TrafficPolicy default/shop (HTTPRoute default/shop rule checkout)"},
			{"policy shop", func() (string, string, string) { return policyCondition(e, "shop", "Programmed") }, "True", "Programmed", ""},
		} {
			if st, reason, msg := c.get(); st != c.st || reason != c.reason || !strings.Contains(msg, c.msgContains) {
				return fmt.Errorf("%s: %s/%s %q, want %s/%s with %q", c.what, st, reason, msg, c.st, c.reason, c.msgContains)
			}
		}
		return nil
	})
	if st, _, _ := listenerCondition(e, "default", "https", affected); st != "" {
		t.Errorf("listener https is not a target, yet has TrafficPolicyAffected %s", st)
	}

	// An Override on the Gateway takes retry, the only block "shop" sets: Overridden.
	e.Apply(`apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: gw}
spec:
  targetRefs: [{group: gateway.apoxy.dev, kind: Gateway, name: default}]
  strategy: Override
  retry: {attempts: 0}
`)
	e.WaitFor("shop Overridden", func() error {
		if st, reason, msg := policyCondition(e, "shop", "Programmed"); st != "False" || reason != "Overridden" || !strings.Contains(msg, "TrafficPolicy default/gw (Gateway default/default, Override)") {
			return fmt.Errorf("shop: %s/%s %q", st, reason, msg)
		}
		return nil
	})

	for _, p := range []string{"gw", "listener", "shop"} {
		e.Delete("policy.apoxy.dev/v1alpha1", "TrafficPolicy", p)
	}
	e.WaitFor("TrafficPolicyAffected gone", func() error {
		if st, _, _ := gatewayCondition(e, affected); st != "" {
			return fmt.Errorf("Gateway still has it")
		}
		if st, _, _ := listenerCondition(e, "default", "http", affected); st != "" {
			return fmt.Errorf("listener http still has it")
		}
		if st, _, _ := routeCondition(e, "shop", affected); st != "" {
			return fmt.Errorf("route shop still has it")
		}
		return nil
	})
	if st, _, _ := routeCondition(e, "shop", "Accepted"); st != "True" {
		t.Errorf("route shop Accepted=%s after the policies went", st)
	}
}
