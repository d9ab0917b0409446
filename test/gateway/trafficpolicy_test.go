package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
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
	return kindCondition(e, "TrafficPolicy", name, typ)
}

// kindCondition returns a policy's first ancestor's condition of a type.
func kindCondition(e *edgetest.Env, kind, name, typ string) (status, reason, message string) {
	p := e.Get("policy.apoxy.dev/v1alpha1", kind, name)
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
// untouched); a second policy on the same target is Conflicted, naming the older one; a
// Global rule without a store is Invalid.
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
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: global-no-store}
spec:
  targetRefs: [{group: gateway.apoxy.dev, kind: Gateway, name: default}]
  rateLimit:
    rules: [{name: g, scope: Global, limit: {requests: 1, unit: Second}}]
`)
	e.WaitFor("statuses", func() error {
		if st, reason, msg := policyCondition(e, "newer", "Accepted"); st != "False" || reason != "Conflicted" || !strings.Contains(msg, "default/login-throttle") {
			return fmt.Errorf("newer: %s %s %q", st, reason, msg)
		}
		if st, reason, msg := policyCondition(e, "lost", "Accepted"); st != "False" || reason != "TargetNotFound" || !strings.Contains(msg, "nope") {
			return fmt.Errorf("lost: %s %s %q", st, reason, msg)
		}
		if st, reason, msg := policyCondition(e, "global-no-store", "Accepted"); st != "False" || reason != "Invalid" || !strings.Contains(msg, "--redis") {
			return fmt.Errorf("global-no-store: %s %s %q", st, reason, msg)
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
// one real Redis let 10 requests through together, not 10 each. The policy fails closed, so a
// store error (a loaded CI machine can time Redis out) rejects rather than lets through: never
// more than 10 pass, and every one of the first 10 that did not pass saw a store error.
func TestTrafficPolicyGlobalLimitAcrossProcesses(t *testing.T) {
	addr := edgetest.StartRedis(t)
	ln := echoServer(t, "127.0.0.9:0", "api", nil)
	hosts := map[string][]string{"shop.internal.example.com": {"127.0.0.9"}}
	var envs []*edgetest.Env
	var logs [2]lockedBuffer
	for i := range 2 {
		envs = append(envs, edgetest.Start(t, edgetest.Options{Hosts: hosts, AccessLog: &logs[i], RateLimitStore: ratelimit.NewRedis(ratelimit.RedisOptions{Address: addr})}))
	}
	doc := example(t, "4.1-login-throttle.yaml", portOf(ln))
	doc = strings.Replace(doc, "      shadow: true", "      scope: Global", 1)
	doc = strings.Replace(doc, "limit: {requests: 5, unit: Minute}", "limit: {requests: 10, unit: Day}", 1)
	doc = strings.Replace(doc, "  rateLimit:\n", "  rateLimit:\n    failureMode: FailClosed\n", 1)
	for _, e := range envs {
		e.Apply(doc)
		// The controller applies a snapshot before it writes status: once the policy is
		// Accepted, its limit is in force (the route alone may be served a moment earlier).
		e.WaitFor("policy in force", func() error {
			if st, reason, msg := policyCondition(e, "login-throttle", "Accepted"); st != "True" {
				return fmt.Errorf("Accepted %s %s %q", st, reason, msg)
			}
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
	for _, e := range envs {
		e.P.Proxy.FlushAccessLog()
	}
	storeErrors := strings.Count(logs[0].String(), `"ratelimit":"store_error"`) + strings.Count(logs[1].String(), `"ratelimit":"store_error"`)
	if ok > 10 || ok+storeErrors < 10 {
		t.Errorf("%d of 30 requests passed through two gateways sharing a limit of 10 (%d store errors)", ok, storeErrors)
	}
}

// Design §4.8 with issue 13's fault drill: one of three endpoints answers 503 to 30 % of
// requests, one refuses connections; behind the example's retries, circuit breaker and
// outlier detection, at least 99.9 % of 3000 requests succeed and the ejection shows.
func TestTrafficPolicyFlakyBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("3000 requests")
	}
	ln := echoServer(t, "127.0.0.11:0", "good", nil)
	port := portOf(ln)
	var n atomic.Int64
	serve(t, "127.0.0.12:"+port, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 < 3 {
			w.WriteHeader(503)
			return
		}
		w.Write([]byte("ok"))
	}))
	// 127.0.0.13 has nothing listening: connections are refused.
	var accessLog lockedBuffer
	e := edgetest.Start(t, edgetest.Options{AccessLog: &accessLog, Hosts: map[string][]string{"orders.internal.example.com": {"127.0.0.11", "127.0.0.12", "127.0.0.13"}}})
	// The example's ejection (30 s, swept every 5 s) shortened to 1 s, swept every 500 ms: the
	// run sees ejections lapse and endpoints come back many times under load.
	doc := example(t, "4.8-orders-resilience.yaml", port)
	doc = strings.Replace(doc, "interval: 5s", "interval: 500ms", 1)
	doc = strings.Replace(doc, "baseEjectionTime: 30s", "baseEjectionTime: 1s", 1)
	e.Apply(doc)
	// The route may be served a moment before its policy: wait for the policy's cluster.
	e.WaitFor("policy in force", func() error {
		for _, c := range e.P.Proxy.Clusters() {
			if strings.Contains(c.Spec().Name, "orders@policy/") && len(c.Addresses()) == 3 {
				return nil
			}
		}
		return fmt.Errorf("no policy cluster yet")
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 15 * time.Second}
	// With the ejection shortened, 6000 requests see it lapse several times. Before retries
	// of refused connections were spared the budget, a lapse that let the 503 endpoint take
	// the only ejection slot (50 % of 3) left the refusing one in the pick set, and its retries
	// beyond the 20 % budget failed: ~14-17 % of requests (URX,UF).
	const total = 6000
	var good atomic.Int64
	var mu sync.Mutex
	codes := map[int]int{}
	work := make(chan struct{}, total)
	for range total {
		work <- struct{}{}
	}
	close(work)
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range work {
				req, _ := http.NewRequest("GET", "http://"+e.HTTPAddr+"/", nil)
				req.Host = "orders.example.com"
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					good.Add(1)
				} else {
					mu.Lock()
					codes[resp.StatusCode]++
					mu.Unlock()
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
	rate := float64(good.Load()) / total
	t.Logf("%d/%d succeeded (%.4f); failures by status %v", good.Load(), total, rate, codes)
	{
		flags := map[string]int{}
		for _, line := range strings.Split(accessLog.String(), "\n") {
			if i := strings.Index(line, `"response_flags":"`); i >= 0 && !strings.Contains(line, `"status":200`) {
				f, _, _ := strings.Cut(line[i+18:], `"`)
				flags[f]++
			}
		}
		t.Logf("failed requests' response flags %v", flags)
	}
	if rate < 0.999 {
		t.Errorf("success rate %.4f, want >= 0.999", rate)
	}
	var ejected bool
	for _, c := range e.P.Proxy.Clusters() {
		if ej, _ := c.OutlierStats(); ej > 0 {
			ejected = true
		}
	}
	if !ejected {
		t.Error("no endpoint was ejected")
	}
}

// Design §4.9: a Maglev hash on a cookie the gateway sets; the cookie keeps a client on one
// endpoint.
func TestTrafficPolicyStickyCookie(t *testing.T) {
	ln := echoServer(t, "127.0.0.11:0", "a", nil)
	port := portOf(ln)
	echoServer(t, "127.0.0.12:"+port, "b", nil)
	echoServer(t, "127.0.0.13:"+port, "c", nil)
	e := edgetest.Start(t, edgetest.Options{Hosts: map[string][]string{"cart.internal.example.com": {"127.0.0.11", "127.0.0.12", "127.0.0.13"}}})
	e.Apply(example(t, "4.9-cart-sticky.yaml", port))
	var cookie string
	e.WaitFor("affinity cookie set", func() error {
		r := request(t, e, "GET", "cart.example.com", "/")
		for _, c := range r.Cookies() {
			if c.Name == "cart-affinity" {
				if !c.Secure || c.SameSite != http.SameSiteLaxMode || c.MaxAge != 3600 || c.Path != "/" {
					return fmt.Errorf("cookie attributes %+v", c)
				}
				cookie = c.Name + "=" + c.Value
				return nil
			}
		}
		return fmt.Errorf("no cookie in %v", r.Header)
	})
	servedBy := map[string]int{}
	for range 30 {
		b, _ := servedByCookie(t, e, cookie)
		servedBy[b]++
	}
	if len(servedBy) != 1 {
		t.Errorf("one cookie was served by %v", servedBy)
	}
	// Without the cookie, requests spread (and each gets a cookie of its own).
	spread := map[string]int{}
	for range 60 {
		b, _ := servedByCookie(t, e, "")
		spread[b]++
	}
	if len(spread) < 2 {
		t.Errorf("requests without a cookie all went to %v", spread)
	}
}

func servedByCookie(t *testing.T, e *edgetest.Env, cookie string) (string, int) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+e.HTTPAddr+"/", nil)
	req.Host = "cart.example.com"
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ech echo
	json.NewDecoder(resp.Body).Decode(&ech)
	return ech.Backend, resp.StatusCode
}

// lockedBuffer is an io.Writer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Design §4.11: the Gateway's defaults apply to every rule; the upload rule's policy replaces
// the Gateway's per-ip rule by name (2/s instead of 50/s) for that rule only.
func TestTrafficPolicyGatewayDefaultsAndRuleOverride(t *testing.T) {
	ln := echoServer(t, "127.0.0.9:0", "app", nil)
	e := edgetest.Start(t, edgetest.Options{Hosts: map[string][]string{"app.internal.example.com": {"127.0.0.9"}}})
	e.Apply(example(t, "4.11-gateway-defaults.yaml", portOf(ln)))
	e.WaitFor("upload limited by its own rule", func() error {
		if r := request(t, e, "POST", "app.example.com", "/upload"); r.Header.Get("X-RateLimit-Limit") != "2" {
			return fmt.Errorf("POST /upload: %d limit %q", r.StatusCode, r.Header.Get("X-RateLimit-Limit"))
		}
		return nil
	})
	// Five requests within a second span at most two one-second windows, so one holds three.
	limited := 0
	for range 5 {
		if r := request(t, e, "POST", "app.example.com", "/upload"); r.StatusCode == 429 {
			limited++
		}
	}
	if limited == 0 {
		t.Error("the upload rule's 2/s limit never answered 429")
	}
	for _, path := range []string{"/", "/healthz"} {
		for range 10 {
			if r := request(t, e, "GET", "app.example.com", path); r.StatusCode != 200 || r.Header.Get("X-RateLimit-Limit") != "50" {
				t.Fatalf("GET %s: %d limit %q (the Gateway's 50/s)", path, r.StatusCode, r.Header.Get("X-RateLimit-Limit"))
			}
		}
	}
}
