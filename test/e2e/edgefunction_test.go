package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// An edge function's life with the real binary and CLI: the seed's auth-check applied with
// `apoxy apply` answers 401; a counter function keeps its count in env.KV, which `apoxy kv`
// reads and writes; its console.log lines show in `apoxy logs --function`; `apoxy get
// edgefunctions` and `apoxy edgefunction revisions` show the live revision.
func TestEdgeFunctionCLI(t *testing.T) {
	d := startDev(t, "")
	must(t, d.apoxy(t, "", "apply", "-f", seed(t, "edgefunction.yaml")))
	must(t, d.apoxy(t, `apiVersion: extensions.apoxy.dev/v1alpha2
kind: EdgeFunction
metadata: {name: counter}
spec:
  template:
    mode: backend
    code:
      jsSource:
        assets:
          files:
          - path: index.js
            content: |
              export default {
                async fetch(request, env) {
                  const n = parseInt((await env.KV.get("visits")) || "0") + 1;
                  await env.KV.put("visits", String(n));
                  console.log("visit", n);
                  return new Response("visit " + n);
                }
              };
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: fns}
spec:
  parentRefs: [{name: default}]
  hostnames: [fns.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /private}}]
    filters: [{type: ExtensionRef, extensionRef: {group: extensions.apoxy.dev, kind: EdgeFunction, name: auth-check}}]
    backendRefs: [{group: extensions.apoxy.dev, kind: EdgeFunction, name: counter}]
  - backendRefs: [{group: extensions.apoxy.dev, kind: EdgeFunction, name: counter}]
`, "apply", "-f", "-"))
	get := func(path string, hdr ...string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+d.httpAddr+path, nil)
		req.Host = "fns.example.com"
		if len(hdr) == 2 {
			req.Header.Set(hdr[0], hdr[1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	waitFor(t, func() bool {
		out := d.apoxy(t, "", "get", "edgefunctions").stdout
		return strings.Count(out, "True") >= 2 && strings.Contains(out, "counter-") && strings.Contains(out, "auth-check-")
	})
	// ResolvedRefs turns True once both functions' live revisions are in the data plane.
	waitFor(t, func() bool {
		return d.apoxy(t, "", "get", "httproute", "fns", "-o", `jsonpath={.status.parents[0].conditions[?(@.type=="ResolvedRefs")].status}`).stdout == "True"
	})
	waitFor(t, func() bool { code, _ := get("/private"); return code == 401 })
	if code, b := get("/private", "Authorization", "Bearer x"); code != 200 || !strings.HasPrefix(b, "visit ") {
		t.Fatalf("through auth-check with a token: %d %q", code, b)
	}
	if code, b := get("/"); code != 200 || b != "visit 2" {
		t.Fatalf("second visit: %d %q", code, b)
	}
	if out := must(t, d.apoxy(t, "", "kv", "get", "counter", "visits")).stdout; out != "2" {
		t.Errorf("apoxy kv get: %q, want 2", out)
	}
	must(t, d.apoxy(t, "", "kv", "put", "counter", "visits", "41"))
	if code, b := get("/"); code != 200 || b != "visit 42" {
		t.Errorf("after apoxy kv put 41: %d %q, want visit 42", code, b)
	}
	must(t, d.apoxy(t, "", "kv", "put", "counter", "note", "-", "--ttl", "1h", "--metadata", `{"by":"test"}`))
	out := must(t, d.apoxy(t, "", "kv", "list", "counter")).stdout
	if !strings.Contains(out, "note") || !strings.Contains(out, `{"by":"test"}`) || !strings.Contains(out, "visits") {
		t.Errorf("apoxy kv list:\n%s", out)
	}
	must(t, d.apoxy(t, "", "kv", "delete", "counter", "note"))
	if r := d.apoxy(t, "", "kv", "get", "counter", "note"); r.err == nil || !strings.Contains(r.stderr, "not found") {
		t.Errorf("apoxy kv get after delete: %v %q", r.err, r.stderr)
	}
	// The seed's auth-check has its own namespace: it does not see counter's keys.
	if r := d.apoxy(t, "", "kv", "get", "auth-check", "visits"); r.err == nil {
		t.Errorf("auth-check's namespace holds counter's key")
	}
	waitFor(t, func() bool {
		out := d.apoxy(t, "", "logs", "--function", "counter").stdout
		return strings.Contains(out, `"message":"visit 42"`) && strings.Contains(out, `"function":"default/counter@counter-`)
	})
	out = must(t, d.apoxy(t, "", "edgefunction", "revisions", "counter")).stdout
	if !strings.Contains(out, "Ready") || !strings.Contains(out, "live") || !strings.Contains(out, "js") {
		t.Errorf("apoxy edgefunction revisions:\n%s", out)
	}
}
