package translate

import (
	"strings"
	"testing"

	"apoxy.dev/apoxy/internal/ir"
)

// The worked example of design §2.2 through PolicySources: api/login takes
// timeouts.request from its own rule, retry from R and rules per-ip (G) and login (R).
func TestTrafficPolicySourcesWorkedExample(t *testing.T) {
	base := strings.Replace(statusBase, "    matches: [{path: {value: /login}}]\n", "    matches: [{path: {value: /login}}]\n    timeouts: {request: 5s}\n", 1)
	_, snap, _ := translateYAML(t, base, `
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: g}
spec:
  targetRefs: [{kind: Gateway, name: edge}]
  timeouts: {request: 30s}
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
`)
	g, rp := "TrafficPolicy default/g (Gateway default/edge)", "TrafficPolicy default/r (HTTPRoute default/api)"
	want := map[string]map[string]string{
		"rule/0": {"timeouts.request": "HTTPRoute default/api rule login", "retry": rp, "rateLimit.rules[per-ip]": g, "rateLimit.rules[login]": rp},
		"rule/1": {"timeouts.request": g, "retry": rp, "rateLimit.rules[per-ip]": g, "rateLimit.rules[login]": rp},
	}
	routes := servedRoutes(snap, "api")
	if len(routes) == 0 {
		t.Fatal("api is not served")
	}
	for _, rt := range routes {
		for block, src := range want[rt.Origin.Section] {
			if s := rt.PolicySourceOf(block); s == nil || s.Source != src {
				t.Errorf("%s: %s from %+v, want %s", rt.Name, block, s, src)
			}
		}
	}
	for _, rt := range servedRoutes(snap, "other") {
		if s := rt.PolicySourceOf("retry"); s == nil || s.Source != g {
			t.Errorf("%s: retry from %+v, want %s", rt.Name, s, g)
		}
		if s := rt.PolicySourceOf("rateLimit.rules[login]"); s != nil {
			t.Errorf("%s: has r's login rule from %+v", rt.Name, s)
		}
	}
}

// servedRoutes are the IR routes of an HTTPRoute on every listener.
func servedRoutes(snap *ir.Snapshot, route string) []*ir.Route {
	var out []*ir.Route
	for _, l := range snap.Listeners {
		for _, vh := range l.VirtualHosts {
			for _, r := range vh.Routes {
				if r.Origin.Kind == "HTTPRoute" && r.Origin.Name == route {
					out = append(out, r)
				}
			}
		}
	}
	return out
}
