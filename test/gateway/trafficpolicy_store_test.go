package gateway

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/edgetest"
)

// Design §4.2: a Global limit per API key on the default Gateway's https listener, counted in
// the Redis that the project's Proxy names (with a password from a Secret), shared by two
// gateway processes; the http listener is not limited; the policy's Healthy condition follows
// the store down (fail open: requests pass) and back up.
func TestTrafficPolicyGlobalLimitInProxyStore(t *testing.T) {
	redis := edgetest.StartRedisServer(t, "--requirepass", "s3cr3t")
	ln := echoServer(t, "127.0.0.10:0", "api", nil)
	hosts := map[string][]string{"api.internal.example.com": {"127.0.0.10"}}
	doc := example(t, "4.2-api-quota.yaml", portOf(ln))
	doc = strings.Replace(doc, "redis: {address: 127.0.0.1:6379}", "redis: {address: "+redis.Addr+", passwordSecretRef: {name: redis}}", 1)
	// A limit a test can reach in one window: 5 per hour per key.
	doc = strings.Replace(doc, "limit: {requests: 600, unit: Minute}", "limit: {requests: 5, unit: Hour}", 1)
	doc += `---
apiVersion: v1
kind: Secret
metadata: {name: redis}
stringData: {password: s3cr3t}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: api}
spec: {endpoints: [{fqdn: api.internal.example.com}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{name: default}]
  hostnames: [api.example.com]
  rules:
  - backendRefs: [{group: core.apoxy.dev, kind: Backend, name: api, port: ` + portOf(ln) + `}]
`
	var envs []*edgetest.Env
	for range 2 {
		e := edgetest.Start(t, edgetest.Options{Hosts: hosts}) // no --redis: the Proxy's store only
		e.Apply(doc)
		e.WaitFor("policy in force and its store healthy", func() error {
			if st, reason, msg := policyCondition(e, "api-quota", "Accepted"); st != "True" {
				return fmt.Errorf("Accepted %s %s %q", st, reason, msg)
			}
			if st, reason, msg := policyCondition(e, "api-quota", "Healthy"); st != "True" {
				return fmt.Errorf("Healthy %s %s %q", st, reason, msg)
			}
			return nil
		})
		envs = append(envs, e)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	https := func(e *edgetest.Env, key string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+e.TLSAddr+"/", nil)
		req.Host = "api.example.com"
		if key != "" {
			req.Header.Set("X-Api-Key", key)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	ok := 0
	var last *http.Response
	hour := time.Now().UTC().Truncate(time.Hour)
	for i := range 12 {
		if last = https(envs[i%2], "k1"); last.StatusCode == 200 {
			ok++
		}
	}
	// Exactly 5, unless an hour boundary fell inside the loop (then one window's more).
	if crossed := !time.Now().UTC().Truncate(time.Hour).Equal(hour); ok != 5 && !(crossed && ok <= 10) {
		t.Errorf("%d of 12 requests with one key passed two gateways sharing a limit of 5", ok)
	}
	if last.StatusCode != 429 || last.Header.Get("RateLimit-Policy") == "" || last.Header.Get("Retry-After") == "" {
		t.Errorf("over the limit: %d %v; want 429 with IETF draft headers", last.StatusCode, last.Header)
	}
	if r := https(envs[0], "k2"); r.StatusCode != 200 {
		t.Errorf("another key: %d; want its own bucket", r.StatusCode)
	}
	for i := range 6 { // the policy targets the https listener only
		if r := request(t, envs[i%2], "GET", "api.example.com", "/", "X-Api-Key", "k1"); r.StatusCode != 200 {
			t.Fatalf("http listener: %d; want no limit there", r.StatusCode)
		}
	}

	// Redis goes away: FailOpen lets requests pass, and Healthy says so.
	redis.Stop()
	for i := range 4 {
		if r := https(envs[i%2], "k1"); r.StatusCode != 200 {
			t.Errorf("store down, fail open: %d", r.StatusCode)
		}
	}
	for _, e := range envs {
		e.WaitFor("Healthy=False", func() error {
			st, reason, msg := policyCondition(e, "api-quota", "Healthy")
			if st != "False" || reason != "RateLimitStoreUnavailable" || !strings.Contains(msg, "fail open") {
				return fmt.Errorf("Healthy %s %s %q", st, reason, msg)
			}
			return nil
		})
	}
	redis.Start() // empty: the counts went with it
	for _, e := range envs {
		e.WaitFor("Healthy=True again", func() error {
			if st, reason, msg := policyCondition(e, "api-quota", "Healthy"); st != "True" {
				return fmt.Errorf("Healthy %s %s %q", st, reason, msg)
			}
			return nil
		})
	}
	if r := https(envs[1], "k1"); r.StatusCode != 200 || r.Header.Get("RateLimit") == "" {
		t.Errorf("store back: %d %v; want counted again", r.StatusCode, r.Header)
	}
}
