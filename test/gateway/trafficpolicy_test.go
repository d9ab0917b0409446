package gateway

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"apoxy.dev/apoxy/internal/edgetest"
	"apoxy.dev/apoxy/internal/proxy/ratelimit"
)

// example reads a design example (docs/examples/policy) with its FQDN backends' port
// replaced by the test backend's.
func example(t *testing.T, name, port string) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/examples/policy/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "port: 8080", "port: "+port)
}

// policyCondition returns a TrafficPolicy's first ancestor's condition of a type.
func policyCondition(e *edgetest.Env, name, typ string) (status, reason, message string) {
	p := e.Get("policy.apoxy.dev/v1alpha1", "TrafficPolicy", name)
	ancestors, _, _ := unstructured.NestedSlice(p.Object, "status", "ancestors")
	for _, a := range ancestors {
		conds, _, _ := unstructured.NestedSlice(a.(map[string]any), "conditions")
		for _, c := range conds {
			m := c.(map[string]any)
			if m["type"] == typ {
				return fmt.Sprint(m["status"]), fmt.Sprint(m["reason"]), fmt.Sprint(m["message"])
			}
		}
	}
	return "", "", ""
}

func request(t *testing.T, e *edgetest.Env, method, host, path string, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+e.HTTPAddr+path, nil)
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	resp.Body.Close()
	return resp
}

// Design §4.1: a per-client-IP limit on one route rule, shadow first, then enforced.
func TestTrafficPolicyLoginThrottle(t *testing.T) {
	ln := echoServer(t, "127.0.0.9:0", "shop", nil)
	e := edgetest.Start(t, edgetest.Options{Hosts: map[string][]string{"shop.internal.example.com": {"127.0.0.9"}}})
	doc := example(t, "4.1-login-throttle.yaml", portOf(ln))
	e.Apply(doc)
	e.WaitFor("policy accepted", func() error {
		if st, reason, msg := policyCondition(e, "login-throttle", "Accepted"); st != "True" {
			return fmt.Errorf("Accepted %s %s %q", st, reason, msg)
		}
		return nil
	})
	e.WaitFor("route served", func() error {
		if r := request(t, e, "GET", "shop.example.com", "/"); r.StatusCode != 200 {
			return fmt.Errorf("%d", r.StatusCode)
		}
		return nil
	})
	// Shadow: nothing is rejected and no rate-limit header is sent.
	for i := range 8 {
		if r := request(t, e, "POST", "shop.example.com", "/login"); r.StatusCode != 200 || r.Header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("shadow request %d: %d %v", i+1, r.StatusCode, r.Header)
		}
	}
	// Enforced (the shadow line deleted): this window already holds 8 requests.
	e.Apply(strings.Replace(doc, "shadow: true", "shadow: false", 1))
	e.WaitFor("limit enforced", func() error {
		if r := request(t, e, "POST", "shop.example.com", "/login"); r.StatusCode != 429 {
			return fmt.Errorf("POST /login: %d", r.StatusCode)
		}
		return nil
	})
	r := request(t, e, "POST", "shop.example.com", "/login")
	if r.StatusCode != 429 || r.Header.Get("Retry-After") == "" || r.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("over the limit: %d %v", r.StatusCode, r.Header)
	}
	// The other rule of the route is not limited.
	for range 10 {
		if r := request(t, e, "GET", "shop.example.com", "/catalog"); r.StatusCode != 200 {
			t.Fatalf("catalog: %d", r.StatusCode)
		}
	}
}

// Status: a policy on a missing target is Accepted=False TargetNotFound (and traffic is
// untouched); a second policy on the same target is Conflicted, naming the older one.
func TestTrafficPolicyStatus(t *testing.T) {
	ln := echoServer(t, "127.0.0.9:0", "shop", nil)
	e := edgetest.Start(t, edgetest.Options{Hosts: map[string][]string{"shop.internal.example.com": {"127.0.0.9"}}})
	e.Apply(example(t, "4.1-login-throttle.yaml", portOf(ln)) + `
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: newer}
spec:
  targetRefs: [{group: gateway.apoxy.dev, kind: HTTPRoute, name: shop, sectionName: login}]
  timeouts: {request: 5s}
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: lost}
spec:
  targetRefs: [{group: gateway.apoxy.dev, kind: HTTPRoute, name: nope}]
  timeouts: {request: 5s}
`)
	e.WaitFor("statuses", func() error {
		if st, reason, msg := policyCondition(e, "newer", "Accepted"); st != "False" || reason != "Conflicted" || !strings.Contains(msg, "default/login-throttle") {
			return fmt.Errorf("newer: %s %s %q", st, reason, msg)
		}
		if st, reason, msg := policyCondition(e, "lost", "Accepted"); st != "False" || reason != "TargetNotFound" || !strings.Contains(msg, "nope") {
			return fmt.Errorf("lost: %s %s %q", st, reason, msg)
		}
		return nil
	})
}

// Design §4.10, faster: only requests with the chaos header are aborted.
func TestTrafficPolicyFaultInjection(t *testing.T) {
	var hits atomic.Int64
	ln := echoServer(t, "127.0.0.9:0", "checkout", &hits)
	e := edgetest.Start(t, edgetest.Options{Hosts: map[string][]string{"checkout.internal.example.com": {"127.0.0.9"}}})
	doc := example(t, "4.10-checkout-chaos.yaml", portOf(ln))
	doc = strings.Replace(doc, "abort: {httpStatus: 503, fraction: {numerator: 5, denominator: 1000}}", "abort: {httpStatus: 503, percent: 100}", 1)
	doc = strings.Replace(doc, "delay: {fixedDelay: 1500ms, percent: 20}", "delay: {fixedDelay: 50ms, percent: 100}", 1)
	e.Apply(doc)
	e.WaitFor("fault injected", func() error {
		if r := request(t, e, "GET", "checkout.example.com", "/", "X-Chaos", "on"); r.StatusCode != 503 {
			return fmt.Errorf("with the header: %d", r.StatusCode)
		}
		return nil
	})
	before := hits.Load()
	start := time.Now()
	if r := request(t, e, "GET", "checkout.example.com", "/", "X-Chaos", "on"); r.StatusCode != 503 || time.Since(start) < 50*time.Millisecond {
		t.Errorf("abort after the delay: %d in %v", r.StatusCode, time.Since(start))
	}
	if hits.Load() != before {
		t.Error("an aborted request reached the backend")
	}
	for range 5 {
		if r := request(t, e, "GET", "checkout.example.com", "/"); r.StatusCode != 200 {
			t.Fatalf("without the header: %d", r.StatusCode)
		}
	}
}

// A Global limit is one limit for every gateway process sharing the Redis: two products on
// one real Redis let 10 requests through together, not 10 each.
func TestTrafficPolicyGlobalLimitAcrossProcesses(t *testing.T) {
	addr := edgetest.StartRedis(t)
	ln := echoServer(t, "127.0.0.9:0", "api", nil)
	hosts := map[string][]string{"shop.internal.example.com": {"127.0.0.9"}}
	var envs []*edgetest.Env
	for range 2 {
		envs = append(envs, edgetest.Start(t, edgetest.Options{Hosts: hosts, RateLimitStore: ratelimit.NewRedis(ratelimit.RedisOptions{Address: addr})}))
	}
	doc := example(t, "4.1-login-throttle.yaml", portOf(ln))
	doc = strings.Replace(doc, "      shadow: true", "      scope: Global", 1)
	doc = strings.Replace(doc, "limit: {requests: 5, unit: Minute}", "limit: {requests: 10, unit: Day}", 1)
	for _, e := range envs {
		e.Apply(doc)
		e.WaitFor("route served", func() error {
			if r := request(t, e, "GET", "shop.example.com", "/"); r.StatusCode != 200 {
				return fmt.Errorf("%d", r.StatusCode)
			}
			return nil
		})
	}
	ok := 0
	for i := range 30 {
		if r := request(t, envs[i%2], "POST", "shop.example.com", "/login"); r.StatusCode == 200 {
			ok++
		}
	}
	if ok != 10 {
		t.Errorf("%d of 30 requests passed through two gateways sharing a limit of 10", ok)
	}
}
