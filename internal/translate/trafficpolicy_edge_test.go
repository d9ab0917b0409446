package translate

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/resource/manifest"
	"apoxy.dev/apoxy/internal/status"
)

// TrafficPolicy attachment and precedence edge cases (policy API design §5, cases 1–19 and a
// few data-plane cases whose decisive part is the translation: 27, 35, 62). Each test
// translates a small manifest and reads the effective values off the IR routes and the
// policies' status, as the data plane and the API would. docs/testing-trafficpolicy.md maps
// the cases to tests.

// tpBase is a GatewayClass, a Gateway "edge" with two HTTP listeners (http :80 and alt :8080)
// and a Backend "be".
const tpBase = `apiVersion: gateway.apoxy.dev/v1
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
`

// tpRoute is an HTTPRoute "api" on Gateway edge with rules login (/login) and search (/),
// extra is added to the login rule (e.g. its own timeouts or retry).
func tpRoute(loginExtra string) string {
	return `apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{name: edge}]
  hostnames: [api.example.com]
  rules:
  - name: login
    matches: [{path: {value: /login}}]
    backendRefs: [{kind: Backend, name: be, port: 9000}]
` + loginExtra + `
  - name: search
    backendRefs: [{kind: Backend, name: be, port: 9000}]
`
}

// tp is a TrafficPolicy document.
func tp(name, created, targets, body string) string {
	return fmt.Sprintf(`apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: %s, creationTimestamp: %q}
spec:
  targetRefs: %s
%s
`, name, created, targets, body)
}

func tpTranslate(t *testing.T, docs ...string) (*ir.Snapshot, *status.Report) {
	t.Helper()
	set, err := manifest.Load(strings.NewReader(strings.Join(docs, "\n---\n")))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	snap, report := Translate(set, testOptions)
	if err := snap.Validate(); err != nil {
		t.Fatalf("invalid snapshot: %v", err)
	}
	return snap, report
}

// tpRouteAt is the IR route of a route's rule (section "rule/N") served on a listener port.
func tpRouteAt(t *testing.T, snap *ir.Snapshot, port int32, name, section string) *ir.Route {
	t.Helper()
	for _, l := range snap.Listeners {
		if l.Port != port {
			continue
		}
		for _, vh := range l.VirtualHosts {
			for _, r := range vh.Routes {
				if r.Origin.Name == name && r.Origin.Section == section {
					return r
				}
			}
		}
	}
	t.Fatalf("no route %s %s on :%d", name, section, port)
	return nil
}

func tpBackend(t *testing.T, snap *ir.Snapshot, name string) *ir.Backend {
	t.Helper()
	for _, b := range snap.Backends {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("no backend %s", name)
	return nil
}

// tpAncestor is one ancestor entry of a policy's status, reduced to what the tests compare.
type tpAncestor struct {
	Kind, Name, Section string
	Status, Reason, Msg string
	Generation          int64
}

func tpStatus(t *testing.T, report *status.Report, name string) []tpAncestor {
	t.Helper()
	st := report.TrafficPolicies[status.KeyOf("default", name)]
	if st == nil {
		t.Fatalf("no status for policy %s", name)
	}
	var out []tpAncestor
	for _, a := range st.Ancestors {
		c := status.Find(a.Conditions, string(gwapiv1.PolicyConditionAccepted))
		if c == nil {
			t.Fatalf("policy %s: ancestor %v has no Accepted condition", name, a.AncestorRef)
		}
		sec := ""
		if a.AncestorRef.SectionName != nil {
			sec = string(*a.AncestorRef.SectionName)
		}
		out = append(out, tpAncestor{Kind: ptrString(a.AncestorRef.Kind), Name: string(a.AncestorRef.Name), Section: sec,
			Status: string(c.Status), Reason: c.Reason, Msg: c.Message, Generation: c.ObservedGeneration})
	}
	return out
}

// tpAccepted returns the single ancestor's Accepted status and reason.
func tpAccepted(t *testing.T, report *status.Report, name string) tpAncestor {
	t.Helper()
	a := tpStatus(t, report, name)
	if len(a) != 1 {
		t.Fatalf("policy %s has %d ancestors, want 1: %+v", name, len(a), a)
	}
	return a[0]
}

const apiRef = "[{group: gateway.apoxy.dev, kind: HTTPRoute, name: api}]"

// Case 1: of two policies on one route the older wins and the newer is Conflicted naming it;
// once the older is deleted the newer takes over unedited, and the route's values change;
// with equal timestamps namespace/name order decides.
func TestTrafficPolicyOlderWinsThenNewerTakesOver(t *testing.T) {
	older := tp("older", "2026-01-01T00:00:00Z", apiRef, "  timeouts: {request: 11s}")
	newer := tp("newer", "2026-01-02T00:00:00Z", apiRef, "  timeouts: {request: 22s}")
	snap, report := tpTranslate(t, tpBase, tpRoute(""), older, newer)
	if a := tpAccepted(t, report, "older"); a.Status != "True" {
		t.Errorf("older: %+v", a)
	}
	if a := tpAccepted(t, report, "newer"); a.Status != "False" || a.Reason != "Conflicted" || !strings.Contains(a.Msg, "default/older") {
		t.Errorf("newer: %+v, want Conflicted naming default/older", a)
	}
	if got := tpRouteAt(t, snap, 80, "api", "rule/1").Timeouts.Request; got != ir.Duration(11*time.Second) {
		t.Errorf("request timeout %v, want the older policy's 11s", got)
	}
	// The older one deleted: same newer object, now Accepted, and its value serves.
	snap, report = tpTranslate(t, tpBase, tpRoute(""), newer)
	if a := tpAccepted(t, report, "newer"); a.Status != "True" || a.Reason != "Accepted" {
		t.Errorf("newer after the older was deleted: %+v", a)
	}
	if got := tpRouteAt(t, snap, 80, "api", "rule/1").Timeouts.Request; got != ir.Duration(22*time.Second) {
		t.Errorf("request timeout %v after the older was deleted, want 22s", got)
	}
	// Same timestamp: "a-policy" sorts before "b-policy" and wins, whatever the input order.
	b := tp("b-policy", "2026-01-01T00:00:00Z", apiRef, "  timeouts: {request: 2s}")
	a := tp("a-policy", "2026-01-01T00:00:00Z", apiRef, "  timeouts: {request: 1s}")
	for _, order := range [][]string{{b, a}, {a, b}} {
		snap, report = tpTranslate(t, tpBase, tpRoute(""), order[0], order[1])
		if st := tpAccepted(t, report, "b-policy"); st.Reason != "Conflicted" || !strings.Contains(st.Msg, "default/a-policy") {
			t.Errorf("tie: b-policy %+v, want Conflicted naming default/a-policy", st)
		}
		if got := tpRouteAt(t, snap, 80, "api", "rule/1").Timeouts.Request; got != ir.Duration(time.Second) {
			t.Errorf("tie: request timeout %v, want a-policy's 1s", got)
		}
	}
}

// Case 2: a policy on the route and one on a rule of it do not conflict; the rule's blocks win
// per block and the route's other blocks still apply to that rule.
func TestTrafficPolicyRuleAndRouteLevels(t *testing.T) {
	route := tp("route", "2026-01-01T00:00:00Z", apiRef, "  retry: {attempts: 1}\n  timeouts: {request: 7s}")
	rule := tp("rule", "2026-01-02T00:00:00Z", "[{group: gateway.apoxy.dev, kind: HTTPRoute, name: api, sectionName: login}]", "  retry: {attempts: 4}")
	snap, report := tpTranslate(t, tpBase, tpRoute(""), route, rule)
	for _, p := range []string{"route", "rule"} {
		if a := tpAccepted(t, report, p); a.Status != "True" {
			t.Errorf("%s: %+v", p, a)
		}
	}
	login := tpRouteAt(t, snap, 80, "api", "rule/0")
	if login.Retry == nil || login.Retry.Attempts != 4 || login.Timeouts.Request != ir.Duration(7*time.Second) {
		t.Errorf("login: retry %+v request %v, want attempts 4 (rule) and 7s (route)", login.Retry, login.Timeouts.Request)
	}
	search := tpRouteAt(t, snap, 80, "api", "rule/1")
	if search.Retry == nil || search.Retry.Attempts != 1 || search.Timeouts.Request != ir.Duration(7*time.Second) {
		t.Errorf("search: retry %+v request %v, want the route's attempts 1 and 7s", search.Retry, search.Timeouts.Request)
	}
}

// Case 3: a listener-targeted policy applies to the route only as served on that listener.
// (The Gateway here has two HTTP listeners, :80 and :8080; the design's :80/:443 pair differs
// only in needing a certificate.)
func TestTrafficPolicyListenerTarget(t *testing.T) {
	p := tp("http-only", "2026-01-01T00:00:00Z", "[{group: gateway.apoxy.dev, kind: Gateway, name: edge, sectionName: http}]",
		"  faultInjection: {abort: {httpStatus: 418}}\n  timeouts: {request: 3s}")
	snap, report := tpTranslate(t, tpBase, tpRoute(""), p)
	if a := tpAccepted(t, report, "http-only"); a.Status != "True" || a.Section != "http" {
		t.Errorf("status %+v, want Accepted on listener http", a)
	}
	on80, on8080 := tpRouteAt(t, snap, 80, "api", "rule/1"), tpRouteAt(t, snap, 8080, "api", "rule/1")
	if on80.Fault == nil || on80.Fault.AbortStatus != 418 || on80.Timeouts.Request != ir.Duration(3*time.Second) {
		t.Errorf(":80: fault %+v request %v, want the listener policy's", on80.Fault, on80.Timeouts.Request)
	}
	if on8080.Fault != nil || on8080.Timeouts.Request != ir.Duration(defaultRequestTimeout) {
		t.Errorf(":8080: fault %+v request %v, want none and the platform default", on8080.Fault, on8080.Timeouts.Request)
	}
}

// Case 4: a route attached to two Gateways gives its policy two ancestor entries.
func TestTrafficPolicyRouteUnderTwoGateways(t *testing.T) {
	second := `apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: edge2}
spec:
  gatewayClassName: apoxy
  listeners: [{name: http, protocol: HTTP, port: 81}]
`
	route := strings.Replace(tpRoute(""), "parentRefs: [{name: edge}]", "parentRefs: [{name: edge}, {name: edge2}]", 1)
	snap, report := tpTranslate(t, tpBase, second, route, tp("p", "2026-01-01T00:00:00Z", apiRef, "  timeouts: {request: 3s}"))
	got := tpStatus(t, report, "p")
	if len(got) != 2 || got[0].Name != "edge" || got[1].Name != "edge2" || got[0].Status != "True" || got[1].Status != "True" {
		t.Errorf("ancestors %+v, want edge and edge2, both Accepted", got)
	}
	for _, port := range []int32{80, 81} {
		if r := tpRouteAt(t, snap, port, "api", "rule/1"); r.Timeouts.Request != ir.Duration(3*time.Second) {
			t.Errorf(":%d: request %v, want 3s", port, r.Timeouts.Request)
		}
	}
}

// Cases 5 and 6: a sectionName naming a missing rule or listener is TargetNotFound; adding
// the rule heals the unedited policy; renaming the rule detaches it again.
func TestTrafficPolicySectionNameLifecycle(t *testing.T) {
	missingListener := tp("nolistener", "2026-01-01T00:00:00Z", "[{group: gateway.apoxy.dev, kind: Gateway, name: edge, sectionName: https}]", "  timeouts: {request: 3s}")
	onRule := tp("onrule", "2026-01-01T00:00:00Z", "[{group: gateway.apoxy.dev, kind: HTTPRoute, name: api, sectionName: checkout}]", "  timeouts: {request: 4s}")
	// The route has no rule "checkout" yet.
	snap, report := tpTranslate(t, tpBase, tpRoute(""), missingListener, onRule)
	if a := tpAccepted(t, report, "nolistener"); a.Reason != "TargetNotFound" || !strings.Contains(a.Msg, `no listener "https"`) {
		t.Errorf("missing listener: %+v", a)
	}
	if a := tpAccepted(t, report, "onrule"); a.Reason != "TargetNotFound" || !strings.Contains(a.Msg, `no rule named "checkout"`) {
		t.Errorf("missing rule: %+v", a)
	}
	for _, l := range snap.Listeners {
		for _, vh := range l.VirtualHosts {
			for _, r := range vh.Routes {
				if r.Timeouts.Request != ir.Duration(defaultRequestTimeout) {
					t.Errorf("%s on %s: request %v, a policy without a target changed it", r.Name, l.Name, r.Timeouts.Request)
				}
			}
		}
	}
	// The rule appears (renamed from login): the same policy is accepted and in force.
	renamed := strings.Replace(tpRoute(""), "name: login", "name: checkout", 1)
	snap, report = tpTranslate(t, tpBase, renamed, onRule)
	if a := tpAccepted(t, report, "onrule"); a.Status != "True" {
		t.Errorf("after the rule appeared: %+v", a)
	}
	if r := tpRouteAt(t, snap, 80, "api", "rule/0"); r.Timeouts.Request != ir.Duration(4*time.Second) {
		t.Errorf("checkout rule: request %v, want 4s", r.Timeouts.Request)
	}
	// Renamed back: the policy detaches from the rule and its status flips.
	snap, report = tpTranslate(t, tpBase, tpRoute(""), onRule)
	if a := tpAccepted(t, report, "onrule"); a.Status != "False" || a.Reason != "TargetNotFound" {
		t.Errorf("after the rename: %+v", a)
	}
	if r := tpRouteAt(t, snap, 80, "api", "rule/0"); r.Timeouts.Request != ir.Duration(defaultRequestTimeout) {
		t.Errorf("renamed rule: request %v, the detached policy still applies", r.Timeouts.Request)
	}
}

// Case 7: rules without a name cannot be targeted by sectionName: the policy is reported
// TargetNotFound and no rule gets its values (not even by an index-like name).
func TestTrafficPolicyUnnamedRulesCannotBeTargeted(t *testing.T) {
	unnamed := `apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{name: edge}]
  rules:
  - backendRefs: [{kind: Backend, name: be, port: 9000}]
`
	for _, section := range []string{"rule-0", "0", "rule/0"} {
		p := tp("p", "2026-01-01T00:00:00Z", "[{group: gateway.apoxy.dev, kind: HTTPRoute, name: api, sectionName: '"+section+"'}]", "  timeouts: {request: 3s}")
		snap, report := tpTranslate(t, tpBase, unnamed, p)
		if a := tpAccepted(t, report, "p"); a.Status != "False" || a.Reason != "TargetNotFound" || !strings.Contains(a.Msg, section) {
			t.Errorf("sectionName %q: %+v, want TargetNotFound naming it", section, a)
		}
		if r := tpRouteAt(t, snap, 80, "api", "rule/0"); r.Timeouts.Request != ir.Duration(defaultRequestTimeout) {
			t.Errorf("sectionName %q: the unnamed rule got request %v", section, r.Timeouts.Request)
		}
	}
}

// Case 11 (second part): a rule-level `disabled: true` block under a Gateway policy that sets
// the block gives the platform default, not the Gateway's values; the Gateway's other blocks
// still apply.
func TestTrafficPolicyDisabledBlockMeansPlatformDefault(t *testing.T) {
	gw := tp("gw", "2026-01-01T00:00:00Z", "[{group: gateway.apoxy.dev, kind: Gateway, name: edge}]",
		"  timeouts: {request: 30s, idle: 1m}\n  retry: {attempts: 5}\n  loadBalancer: {type: RoundRobin}")
	rule := tp("rule", "2026-01-02T00:00:00Z", "[{group: gateway.apoxy.dev, kind: HTTPRoute, name: api, sectionName: login}]",
		"  timeouts: {disabled: true}\n  retry: {disabled: true}")
	snap, _ := tpTranslate(t, tpBase, tpRoute(""), gw, rule)
	login := tpRouteAt(t, snap, 80, "api", "rule/0")
	if login.Timeouts.Request != ir.Duration(defaultRequestTimeout) || login.Timeouts.StreamIdle != 0 || login.Retry != nil {
		t.Errorf("login: timeouts %+v retry %+v, want the platform defaults (request %v, no idle override, default retry)",
			login.Timeouts, login.Retry, defaultRequestTimeout)
	}
	if lb := tpBackend(t, snap, login.Backends[0].Backend).LoadBalancer; lb == nil || lb.Type != "RoundRobin" {
		t.Errorf("login: load balancer %+v, want the Gateway's RoundRobin (a block the rule did not disable)", lb)
	}
	search := tpRouteAt(t, snap, 80, "api", "rule/1")
	if search.Timeouts.Request != ir.Duration(30*time.Second) || search.Retry == nil || search.Retry.Attempts != 5 {
		t.Errorf("search: timeouts %+v retry %+v, want the Gateway's", search.Timeouts, search.Retry)
	}
}

// Case 12: an Override block on the Gateway beats a rule-level `disabled`; of two Overrides,
// the Gateway's beats the listener's.
func TestTrafficPolicyOverrideBeatsDisabledAndListenerOverride(t *testing.T) {
	gw := tp("gw", "2026-01-01T00:00:00Z", "[{group: gateway.apoxy.dev, kind: Gateway, name: edge}]",
		"  strategy: Override\n  faultInjection: {abort: {httpStatus: 599, percent: 1}}\n  timeouts: {request: 9s}")
	listener := tp("listener", "2026-01-01T00:00:00Z", "[{group: gateway.apoxy.dev, kind: Gateway, name: edge, sectionName: http}]",
		"  strategy: Override\n  timeouts: {request: 8s}\n  retry: {attempts: 7}")
	rule := tp("rule", "2026-01-02T00:00:00Z", "[{group: gateway.apoxy.dev, kind: HTTPRoute, name: api, sectionName: login}]",
		"  faultInjection: {disabled: true}\n  timeouts: {request: 1s}\n  retry: {attempts: 0}")
	snap, _ := tpTranslate(t, tpBase, tpRoute(""), gw, listener, rule)
	login := tpRouteAt(t, snap, 80, "api", "rule/0")
	if login.Fault == nil || login.Fault.AbortStatus != 599 {
		t.Errorf("login fault %+v: the Gateway's Override lost to the rule's disabled", login.Fault)
	}
	if login.Timeouts.Request != ir.Duration(9*time.Second) {
		t.Errorf("login request %v, want the Gateway Override's 9s (over the listener's 8s and the rule's 1s)", login.Timeouts.Request)
	}
	if login.Retry == nil || login.Retry.Attempts != 7 {
		t.Errorf("login retry %+v, want the listener Override's attempts 7 (the Gateway sets no retry)", login.Retry)
	}
}

// Case 13: the route rule's own timeouts.request and a Gateway policy's timeouts.connect both
// apply (Envoy Gateway #4844): the request timeout from the route, the connect timeout on the
// Backend's cluster. (The PartiallyProgrammed condition is not built yet: see the doc.)
func TestTrafficPolicyRouteTimeoutAndPolicyConnectBothApply(t *testing.T) {
	gw := tp("gw", "2026-01-01T00:00:00Z", "[{group: gateway.apoxy.dev, kind: Gateway, name: edge}]", "  timeouts: {connect: 2s, request: 30s}")
	snap, _ := tpTranslate(t, tpBase, tpRoute("    timeouts: {request: 5s}"), gw)
	login := tpRouteAt(t, snap, 80, "api", "rule/0")
	if login.Timeouts.Request != ir.Duration(5*time.Second) {
		t.Errorf("request %v, want the route's 5s", login.Timeouts.Request)
	}
	if b := tpBackend(t, snap, login.Backends[0].Backend); b.ConnectTimeout != ir.Duration(2*time.Second) {
		t.Errorf("backend %s connect timeout %v, want the policy's 2s", b.Name, b.ConnectTimeout)
	}
	if r := tpRouteAt(t, snap, 80, "api", "rule/1"); r.Timeouts.Request != ir.Duration(30*time.Second) {
		t.Errorf("search request %v, want the policy's 30s", r.Timeouts.Request)
	}
}

// Case 14: the route rule's retry.attempts and codes replace the policy's attempts and
// statusCodes field by field; the policy's other retry fields stay.
func TestTrafficPolicyRouteRetryFieldsWin(t *testing.T) {
	p := tp("p", "2026-01-01T00:00:00Z", apiRef, "  retry: {attempts: 3, retryOn: {statusCodes: [502]}, backoff: {baseInterval: 40ms}}")
	snap, _ := tpTranslate(t, tpBase, tpRoute("    retry: {attempts: 1, codes: [500, 504]}"), p)
	login := tpRouteAt(t, snap, 80, "api", "rule/0")
	if r := login.Retry; r == nil || r.Attempts != 1 || !slices.Equal(r.Codes, []int{500, 504}) || r.Backoff != ir.Duration(40*time.Millisecond) {
		t.Errorf("login retry %+v, want attempts 1 and codes [500 504] from the route, backoff 40ms from the policy", r)
	}
	// A route that sets only attempts keeps the policy's codes.
	snap, _ = tpTranslate(t, tpBase, tpRoute("    retry: {attempts: 1}"), p)
	if r := tpRouteAt(t, snap, 80, "api", "rule/0").Retry; r == nil || r.Attempts != 1 || !slices.Equal(r.Codes, []int{502}) {
		t.Errorf("attempts-only route: retry %+v, want attempts 1, codes [502]", r)
	}
	if r := tpRouteAt(t, snap, 80, "api", "rule/1").Retry; r == nil || r.Attempts != 3 {
		t.Errorf("search retry %+v, want the policy's attempts 3", r)
	}
}

func ruleNames(rl *ir.RateLimit) []string {
	if rl == nil {
		return nil
	}
	var out []string
	for _, r := range rl.Rules {
		out = append(out, fmt.Sprintf("%s=%d", r.Name, r.Requests))
	}
	return out
}

// Case 16: rate-limit rules merge by name; `inherit: false` drops the inherited rules, but
// not an Override policy's, which a lower level can neither drop nor replace.
func TestTrafficPolicyRateLimitInheritAndOverride(t *testing.T) {
	gw := tp("gw", "2026-01-01T00:00:00Z", "[{group: gateway.apoxy.dev, kind: Gateway, name: edge}]",
		"  strategy: Override\n  rateLimit: {rules: [{name: ceiling, limit: {requests: 1000, unit: Second}}]}")
	listener := tp("listener", "2026-01-01T00:00:00Z", "[{group: gateway.apoxy.dev, kind: Gateway, name: edge, sectionName: http}]",
		"  rateLimit: {rules: [{name: per-ip, limit: {requests: 50, unit: Second}}, {name: login, limit: {requests: 9, unit: Second}}]}")
	route := tp("route", "2026-01-01T00:00:00Z", apiRef,
		"  rateLimit: {inherit: false, rules: [{name: login, limit: {requests: 5, unit: Minute}}, {name: ceiling, limit: {requests: 1, unit: Second}}]}")
	snap, _ := tpTranslate(t, tpBase, tpRoute(""), gw, listener, route)
	if got, want := ruleNames(tpRouteAt(t, snap, 80, "api", "rule/0").RateLimit), []string{"ceiling=1000", "login=5"}; !slices.Equal(got, want) {
		t.Errorf("api with inherit: false: rules %v, want %v (the Override's ceiling kept, per-ip dropped)", got, want)
	}
	// Without inherit: false the listener's rules are merged by name (login replaced).
	route = strings.Replace(route, "inherit: false, ", "", 1)
	snap, _ = tpTranslate(t, tpBase, tpRoute(""), gw, listener, route)
	if got, want := ruleNames(tpRouteAt(t, snap, 80, "api", "rule/0").RateLimit), []string{"ceiling=1000", "per-ip=50", "login=5"}; !slices.Equal(got, want) {
		t.Errorf("api inheriting: rules %v, want %v", got, want)
	}
	// disabled: true drops all but the Override's too.
	route = tp("route", "2026-01-01T00:00:00Z", apiRef, "  rateLimit: {disabled: true}")
	snap, _ = tpTranslate(t, tpBase, tpRoute(""), gw, listener, route)
	if got, want := ruleNames(tpRouteAt(t, snap, 80, "api", "rule/0").RateLimit), []string{"ceiling=1000"}; !slices.Equal(got, want) {
		t.Errorf("api with rateLimit disabled: rules %v, want %v", got, want)
	}
}

// Case 19: more than 16 ancestors: the first 16 by name are listed and the last says how many
// more there are.
func TestTrafficPolicyAncestorsTruncated(t *testing.T) {
	var docs []string
	docs = append(docs, tpBase)
	var parents []string
	for i := range 18 {
		docs = append(docs, fmt.Sprintf(`apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: g%02d}
spec:
  gatewayClassName: apoxy
  listeners: [{name: http, protocol: HTTP, port: %d}]
`, i, 9000+i))
		parents = append(parents, fmt.Sprintf("{name: g%02d}", i))
	}
	docs = append(docs, strings.Replace(tpRoute(""), "parentRefs: [{name: edge}]", "parentRefs: ["+strings.Join(parents, ", ")+"]", 1),
		tp("p", "2026-01-01T00:00:00Z", apiRef, "  timeouts: {request: 3s}"))
	_, report := tpTranslate(t, docs...)
	got := tpStatus(t, report, "p")
	if len(got) != 16 {
		t.Fatalf("%d ancestors listed, want 16", len(got))
	}
	for i, a := range got {
		if want := fmt.Sprintf("g%02d", i); a.Name != want {
			t.Errorf("ancestor %d is %s, want %s (sorted)", i, a.Name, want)
		}
	}
	if !strings.HasSuffix(got[15].Msg, "and 2 more ancestors not listed") || strings.Contains(got[14].Msg, "more ancestors") {
		t.Errorf("messages %q / %q, want the last to say 2 more", got[14].Msg, got[15].Msg)
	}
}

// Case 27 (translation part): PerRoute rules get a counter per route, Shared rules one
// counter wherever they apply, both in one Gateway policy. The data plane shares buckets by
// counter (internal/proxy TestRateLimitCountersPerRouteAndShared).
func TestTrafficPolicyCounterScopes(t *testing.T) {
	other := strings.NewReplacer("name: api", "name: other", "api.example.com", "other.example.com").Replace(tpRoute(""))
	gw := tp("gw", "2026-01-01T00:00:00Z", "[{group: gateway.apoxy.dev, kind: Gateway, name: edge}]",
		"  rateLimit: {rules: [{name: per-route, limit: {requests: 5, unit: Minute}}, {name: shared, counters: Shared, limit: {requests: 5, unit: Minute}}]}")
	snap, _ := tpTranslate(t, tpBase, tpRoute(""), other, gw)
	counters := func(r *ir.Route) map[string]string {
		m := map[string]string{}
		for _, rr := range r.RateLimit.Rules {
			m[rr.Name] = rr.Counter
		}
		return m
	}
	api, apiSearch, oth := counters(tpRouteAt(t, snap, 80, "api", "rule/0")), counters(tpRouteAt(t, snap, 80, "api", "rule/1")), counters(tpRouteAt(t, snap, 80, "other", "rule/0"))
	if api["per-route"] == oth["per-route"] || api["per-route"] != apiSearch["per-route"] {
		t.Errorf("PerRoute counters: api %q, api search %q, other %q; want one per route", api["per-route"], apiSearch["per-route"], oth["per-route"])
	}
	if api["shared"] != oth["shared"] || api["shared"] == api["per-route"] {
		t.Errorf("Shared counters: api %q, other %q; want one for both", api["shared"], oth["shared"])
	}
	// The same rule on :8080 counts in the same buckets as on :80.
	if c := counters(tpRouteAt(t, snap, 8080, "api", "rule/0")); c["per-route"] != api["per-route"] {
		t.Errorf("per-route counter on :8080 %q differs from :80's %q", c["per-route"], api["per-route"])
	}
}

// Case 35 (translation part): a rule's counter is named by its policy and name, not its
// limit: changing the limit keeps the counter (and so the counts), renaming the rule starts a
// new one. The data plane keeps a counter's buckets across snapshots
// (internal/proxy TestRateLimitCountsSurviveReload).
func TestTrafficPolicyCounterIdentity(t *testing.T) {
	counter := func(rule string) string {
		snap, _ := tpTranslate(t, tpBase, tpRoute(""), tp("p", "2026-01-01T00:00:00Z", apiRef, "  rateLimit: {rules: ["+rule+"]}"))
		return tpRouteAt(t, snap, 80, "api", "rule/0").RateLimit.Rules[0].Counter
	}
	five := counter("{name: login, limit: {requests: 5, unit: Minute}}")
	if ten := counter("{name: login, limit: {requests: 10, unit: Minute}}"); ten != five {
		t.Errorf("changing the limit changed the counter: %q -> %q", five, ten)
	}
	if renamed := counter("{name: signin, limit: {requests: 5, unit: Minute}}"); renamed == five {
		t.Errorf("renaming the rule kept the counter %q", renamed)
	}
}

// Case 62 (status part): an abort with grpcStatus on an HTTPRoute target (and httpStatus on a
// GRPCRoute target) is Invalid, and the fault is not applied.
func TestTrafficPolicyAbortStatusOfTheWrongProtocol(t *testing.T) {
	grpc := `apiVersion: gateway.apoxy.dev/v1
kind: GRPCRoute
metadata: {name: rpc}
spec:
  parentRefs: [{name: edge}]
  hostnames: [rpc.example.com]
  rules:
  - backendRefs: [{kind: Backend, name: be, port: 9000}]
`
	onHTTP := tp("grpc-on-http", "2026-01-01T00:00:00Z", apiRef, "  faultInjection: {abort: {grpcStatus: Unavailable}}")
	onGRPC := tp("http-on-grpc", "2026-01-01T00:00:00Z", "[{group: gateway.apoxy.dev, kind: GRPCRoute, name: rpc}]", "  faultInjection: {abort: {httpStatus: 503}}")
	rightGRPC := tp("grpc-on-grpc", "2026-01-01T00:00:00Z", "[{group: gateway.apoxy.dev, kind: GRPCRoute, name: rpc}]", "  faultInjection: {abort: {grpcStatus: Unavailable}}")
	snap, report := tpTranslate(t, tpBase, tpRoute(""), grpc, onHTTP, onGRPC)
	for _, p := range []string{"grpc-on-http", "http-on-grpc"} {
		if a := tpAccepted(t, report, p); a.Status != "False" || a.Reason != "Invalid" {
			t.Errorf("%s: %+v, want Invalid", p, a)
		}
	}
	if r := tpRouteAt(t, snap, 80, "api", "rule/0"); r.Fault != nil {
		t.Errorf("an Invalid policy's fault was applied: %+v", r.Fault)
	}
	snap, report = tpTranslate(t, tpBase, grpc, rightGRPC)
	if a := tpAccepted(t, report, "grpc-on-grpc"); a.Status != "True" {
		t.Errorf("grpc-on-grpc: %+v", a)
	}
	if r := tpRouteAt(t, snap, 80, "rpc", "rule/0"); r.Fault == nil || r.Fault.AbortGRPC != 14 || !r.GRPC {
		t.Errorf("GRPCRoute fault %+v (grpc %v), want abort with grpc-status 14", r.Fault, r.GRPC)
	}
}

// Rule E beats Rule D: the fields a Gateway Override sets win over the route rule's own
// timeouts and retry fields; the rule's fields the Override leaves unset still win.
func TestTrafficPolicyOverrideBeatsRouteOwnFields(t *testing.T) {
	gw := tp("gw", "2026-01-01T00:00:00Z", "[{group: gateway.apoxy.dev, kind: Gateway, name: edge}]",
		"  strategy: Override\n  timeouts: {request: 30s}\n  retry: {attempts: 3, retryOn: {statusCodes: [502]}}")
	snap, _ := tpTranslate(t, tpBase, tpRoute("    timeouts: {request: 5s, backendRequest: 2s}\n    retry: {attempts: 1, codes: [500], backoff: 7ms}"), gw)
	login := tpRouteAt(t, snap, 80, "api", "rule/0")
	if login.Timeouts.Request != ir.Duration(30*time.Second) || login.Timeouts.BackendRequest != ir.Duration(2*time.Second) {
		t.Errorf("timeouts %+v, want request 30s from the Override and backendRequest 2s from the rule", login.Timeouts)
	}
	// The retry block's backoff is defaulted (25ms) whenever the block is set, so the
	// Override's backoff wins too.
	if r := login.Retry; r == nil || r.Attempts != 3 || !slices.Equal(r.Codes, []int{502}) || r.Backoff != ir.Duration(25*time.Millisecond) {
		t.Errorf("retry %+v, want attempts 3, codes [502] and the defaulted backoff 25ms from the Override", r)
	}
	// Without Override the rule's own fields win (Rule D).
	snap, _ = tpTranslate(t, tpBase, tpRoute("    timeouts: {request: 5s}"),
		tp("gw", "2026-01-01T00:00:00Z", "[{group: gateway.apoxy.dev, kind: Gateway, name: edge}]", "  timeouts: {request: 30s}"))
	if r := tpRouteAt(t, snap, 80, "api", "rule/0"); r.Timeouts.Request != ir.Duration(5*time.Second) {
		t.Errorf("default strategy: request %v, want the rule's 5s", r.Timeouts.Request)
	}
}
