package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/apiserver"
	"apoxy.dev/apoxy/internal/edgetest"
	"apoxy.dev/apoxy/internal/proxy/ratelimit"
)

// functionReady returns nil once an EdgeFunction's Ready condition is True with the live
// revision it reports.
func functionReady(e *edgetest.Env, name string) func() error {
	return func() error {
		st, reason, msg, live := functionStatus(e, name, "Ready")
		if st != "True" || live == "" {
			return fmt.Errorf("Ready %s %s %q live %q", st, reason, msg, live)
		}
		return nil
	}
}

// functionStatus returns an EdgeFunction's condition of a type and its live revision.
func functionStatus(e *edgetest.Env, name, typ string) (status, reason, message, live string) {
	u := e.Get("extensions.apoxy.dev/v1alpha2", "EdgeFunction", name)
	if u == nil {
		return "", "", "not found", ""
	}
	st, _ := u.Object["status"].(map[string]any)
	live, _ = st["liveRevision"].(string)
	conds, _ := st["conditions"].([]any)
	for _, c := range conds {
		m := c.(map[string]any)
		if m["type"] == typ {
			return fmt.Sprint(m["status"]), fmt.Sprint(m["reason"]), fmt.Sprint(m["message"]), live
		}
	}
	return "", "", "no " + typ + " condition", live
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b)
}

func send(t *testing.T, e *edgetest.Env, host, path string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+e.HTTPAddr+path, nil)
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	return resp.StatusCode, body(t, resp)
}

// The seed's auth-check, applied unchanged, as an ExtensionRef filter: 401 without an
// Authorization header, the backend's answer with one; the access line names the revision.
func TestEdgeFunctionSeedFilter(t *testing.T) {
	ln := echoServer(t, "127.0.0.21:0", "app", nil)
	var accessLog lockedBuffer
	e := edgetest.Start(t, edgetest.Options{AccessLog: &accessLog})
	seed, err := os.ReadFile("../../docs/examples/seed/edgefunction.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e.Apply(string(seed))
	e.Apply(`
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: app}
spec:
  endpoints: [{ip: 127.0.0.21}]
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: app}
spec:
  parentRefs: [{name: default}]
  hostnames: [app.example.com]
  rules:
  - filters:
    - type: ExtensionRef
      extensionRef: {group: extensions.apoxy.dev, kind: EdgeFunction, name: auth-check}
    backendRefs: [{group: core.apoxy.dev, kind: Backend, name: app, port: ` + portOf(ln) + `}]
`)
	e.WaitFor("auth-check ready", functionReady(e, "auth-check"))
	e.WaitFor("route accepted", e.RouteAccepted("app"))
	e.WaitFor("401 without Authorization", func() error {
		if code, b := send(t, e, "app.example.com", "/"); code != 401 || b != "Unauthorized" {
			return fmt.Errorf("%d %q", code, b)
		}
		return nil
	})
	code, b := send(t, e, "app.example.com", "/x", "Authorization", "Bearer t")
	if code != 200 || !strings.Contains(b, `"backend":"app"`) || !strings.Contains(b, `"Authorization":["Bearer t"]`) {
		t.Fatalf("with Authorization: %d %s", code, b)
	}
	_, _, _, live := functionStatus(e, "auth-check", "Ready")
	if !strings.HasPrefix(live, "auth-check-") {
		t.Fatalf("live revision %q", live)
	}
	rev := e.Get("extensions.apoxy.dev/v1alpha2", "EdgeFunctionRevision", live)
	if rev == nil {
		t.Fatalf("revision %s not found", live)
	}
	if st := rev.Object["status"].(map[string]any); st["phase"] != "Ready" || !strings.HasPrefix(fmt.Sprint(st["artifact"].(map[string]any)["digest"]), "sha256:") {
		t.Fatalf("revision status %v", st)
	}
	e.WaitFor("the access line naming the revision", func() error { // lines are written asynchronously
		if !strings.Contains(accessLog.String(), `"function":"default/auth-check@`+live+`"`) {
			return fmt.Errorf("no line names it:\n%s", accessLog.String())
		}
		return nil
	})
}

// A JavaScript function as a backend; a change that does not compile fails its build with
// the compiler's message (file:line:column) and the previous revision keeps serving; a fixed
// change then serves.
func TestEdgeFunctionBackendAndFailedBuild(t *testing.T) {
	e := edgetest.Start(t, edgetest.Options{})
	fn := func(code string) string {
		return `
apiVersion: extensions.apoxy.dev/v1alpha2
kind: EdgeFunction
metadata: {name: hello}
spec:
  template:
    mode: backend
    code:
      jsSource:
        entrypoint: index.ts
        assets:
          files:
          - path: index.ts
            content: |
` + indent(code, "              ")
	}
	e.Apply(fn(`export default {
  async fetch(request: Request, env: any): Promise<Response> {
    const u = new URL(request.url);
    return Response.json({ v: 1, path: u.pathname });
  },
};`) + `
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: hello}
spec:
  parentRefs: [{name: default}]
  hostnames: [hello.example.com]
  rules:
  - backendRefs: [{group: extensions.apoxy.dev, kind: EdgeFunction, name: hello}]
`)
	e.WaitFor("hello ready", functionReady(e, "hello"))
	e.WaitFor("v1 answers", func() error {
		if code, b := send(t, e, "hello.example.com", "/a"); code != 200 || b != `{"v":1,"path":"/a"}` {
			return fmt.Errorf("%d %q", code, b)
		}
		return nil
	})
	_, _, _, v1 := functionStatus(e, "hello", "Ready")

	e.Apply(fn(`export default {
  async fetch(request: Request): Promise<Response> {
    return new Response("v2" +;
  },
};`))
	e.WaitFor("build failure reported", func() error {
		st, reason, msg, live := functionStatus(e, "hello", "Built")
		if st != "False" || reason != "BuildFailed" || !strings.Contains(msg, "index.ts:3:") {
			return fmt.Errorf("Built %s %s %q", st, reason, msg)
		}
		if live != v1 {
			return fmt.Errorf("live %q, want %q kept", live, v1)
		}
		return nil
	})
	if code, b := send(t, e, "hello.example.com", "/b"); code != 200 || b != `{"v":1,"path":"/b"}` {
		t.Fatalf("after a failed build: %d %q, want v1 serving", code, b)
	}

	e.Apply(fn(`export default {
  async fetch(request: Request): Promise<Response> {
    return new Response("v3", { headers: { "x-version": "3" } });
  },
};`))
	e.WaitFor("v3 answers", func() error {
		if code, b := send(t, e, "hello.example.com", "/c"); code != 200 || b != "v3" {
			return fmt.Errorf("%d %q", code, b)
		}
		return nil
	})
	if st, _, msg, live := functionStatus(e, "hello", "Built"); st != "True" || live == v1 {
		t.Fatalf("after the fix: Built %s %q live %s", st, msg, live)
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// Two gateway replicas given one Redis (--redis) share their functions' KV: a counter
// function's visits count across both.
func TestEdgeFunctionKVSharedByReplicas(t *testing.T) {
	addr := edgetest.StartRedis(t)
	counter := `
apiVersion: extensions.apoxy.dev/v1alpha2
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
                  await env.KV.put("visits", String(n), { expirationTtl: 3600 });
                  return new Response("visit " + n);
                }
              };
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: counter}
spec:
  parentRefs: [{name: default}]
  hostnames: [counter.example.com]
  rules:
  - backendRefs: [{group: extensions.apoxy.dev, kind: EdgeFunction, name: counter}]
`
	var envs []*edgetest.Env
	for range 2 {
		e := edgetest.Start(t, edgetest.Options{RateLimitStore: ratelimit.NewRedis(ratelimit.RedisOptions{Address: addr})})
		e.Apply(counter)
		e.WaitFor("counter ready", functionReady(e, "counter"))
		e.WaitFor("route accepted", e.RouteAccepted("counter"))
		envs = append(envs, e)
	}
	// Until both serve the function, a request may meet the rule's 500.
	for _, e := range envs {
		e.WaitFor("function serves", func() error {
			if code, _ := send(t, e, "counter.example.com", "/warm"); code != 200 {
				return fmt.Errorf("status %d", code)
			}
			return nil
		})
	}
	_, first := send(t, envs[0], "counter.example.com", "/")
	var n int
	fmt.Sscanf(first, "visit %d", &n)
	for i, e := range []*edgetest.Env{envs[1], envs[0], envs[1]} {
		want := fmt.Sprintf("visit %d", n+i+1)
		if code, b := send(t, e, "counter.example.com", "/"); code != 200 || b != want {
			t.Fatalf("replica %d: %d %q, want %q (the replicas do not share KV)", i%2, code, b, want)
		}
	}
}

// Two replicas with no store of their own (each would keep KV in its own SQLite file) serve
// a Gateway whose Proxy names a Redis (spec.rateLimit.redis): the function's KV is there,
// shared, and `apoxy kv` (the project API's KV handler) reads the same keys.
func TestEdgeFunctionKVInProxyRedis(t *testing.T) {
	addr := edgetest.StartRedis(t)
	var envs []*edgetest.Env
	var ports []int
	for range 2 {
		e := edgetest.Start(t, edgetest.Options{})
		port := freeTCPPort(t)
		e.Apply(fmt.Sprintf(`
apiVersion: core.apoxy.dev/v1alpha2
kind: Proxy
metadata: {name: shared}
spec:
  rateLimit:
    redis: {address: %q}
---
apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: kv}
spec:
  gatewayClassName: apoxy
  infrastructure: {parametersRef: {group: core.apoxy.dev, kind: Proxy, name: shared}}
  listeners: [{name: http, protocol: HTTP, port: %d}]
---
apiVersion: extensions.apoxy.dev/v1alpha2
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
                  return new Response("visit " + n);
                }
              };
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: counter}
spec:
  parentRefs: [{name: kv}]
  rules:
  - backendRefs: [{group: extensions.apoxy.dev, kind: EdgeFunction, name: counter}]
`, addr, port))
		e.WaitFor("counter ready", functionReady(e, "counter"))
		e.WaitFor("route accepted", e.RouteAccepted("counter"))
		envs, ports = append(envs, e), append(ports, port)
	}
	get := func(i int) (int, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", ports[i]))
		if err != nil {
			return 0, err.Error()
		}
		return resp.StatusCode, body(t, resp)
	}
	for i := range envs {
		envs[i].WaitFor("function serves", func() error {
			if code, b := get(i); code != 200 {
				return fmt.Errorf("status %d %s", code, b)
			}
			return nil
		})
	}
	_, first := get(0)
	var n int
	fmt.Sscanf(first, "visit %d", &n)
	for i, r := range []int{1, 0, 1} {
		want := fmt.Sprintf("visit %d", n+i+1)
		if code, b := get(r); code != 200 || b != want {
			t.Fatalf("replica %d: %d %q, want %q (KV is not in the Proxy's Redis)", r, code, b, want)
		}
	}
	// The project API's KV handler (what `apoxy kv get` calls) reads the Proxy's Redis too.
	rec := httptest.NewRecorder()
	envs[0].P.KVHandler(apiserver.DefaultProject).ServeHTTP(rec, httptest.NewRequest("GET", "/functions/kv?function=default/counter&key=visits", nil))
	if want := fmt.Sprint(n + 3); rec.Code != 200 || rec.Body.String() != want {
		t.Fatalf("kv get: %d %q, want %s", rec.Code, rec.Body.String(), want)
	}
}

// A backend function's streamed body reaches the client chunk by chunk, over HTTP/1.1
// (chunked) and h2c; new Response(request.body) echoes each part of a request body before
// the client sends the next (full duplex); a stream that fails midway breaks the client's
// response off instead of ending it as if whole, and the access line says why.
func TestEdgeFunctionStreaming(t *testing.T) {
	var accessLog lockedBuffer
	e := edgetest.Start(t, edgetest.Options{AccessLog: &accessLog})
	e.Apply(`
apiVersion: extensions.apoxy.dev/v1alpha2
kind: EdgeFunction
metadata: {name: stream}
spec:
  template:
    mode: backend
    code:
      jsSource:
        entrypoint: index.js
        assets:
          files:
          - path: index.js
            content: |
              export default {
                async fetch(req) {
                  const path = new URL(req.url).pathname;
                  if (req.method === "POST") return new Response(req.body);
                  const { readable, writable } = new TransformStream();
                  const w = writable.getWriter();
                  (async () => {
                    for (let i = 1; i <= 3; i++) {
                      await w.write("tick " + i + "\n");
                      await new Promise((r) => setTimeout(r, 150));
                    }
                    if (path === "/fail") await w.abort(new Error("the source went away"));
                    else await w.close();
                  })();
                  return new Response(readable, { headers: { "content-type": "text/event-stream" } });
                },
              };
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: stream}
spec:
  parentRefs: [{name: default}]
  hostnames: [stream.example.com]
  rules:
  - backendRefs: [{group: extensions.apoxy.dev, kind: EdgeFunction, name: stream}]
`)
	e.WaitFor("stream ready", functionReady(e, "stream"))
	e.WaitFor("route accepted", e.RouteAccepted("stream"))
	h1 := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	h2cT := &http.Transport{Protocols: new(http.Protocols), DisableCompression: true}
	h2cT.Protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: h2cT}
	for name, c := range map[string]*http.Client{"HTTP/1.1": h1, "h2c": h2c} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+e.HTTPAddr+"/", nil)
			req.Host = "stream.example.com"
			start := time.Now()
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ContentLength != -1 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("head: length %d, %v", resp.ContentLength, resp.Header)
			}
			line := make([]byte, 7)
			if _, err := io.ReadFull(resp.Body, line); err != nil || string(line) != "tick 1\n" {
				t.Fatalf("first chunk %q %v", line, err)
			}
			if d := time.Since(start); d > 250*time.Millisecond {
				t.Fatalf("first chunk after %s: the body was held back", d)
			}
			rest, err := io.ReadAll(resp.Body)
			if err != nil || string(rest) != "tick 2\ntick 3\n" {
				t.Fatalf("rest %q %v", rest, err)
			}

			// Full duplex: each part comes back before the next is sent.
			pr, pw := io.Pipe()
			req, _ = http.NewRequest("POST", "http://"+e.HTTPAddr+"/echo", pr)
			req.Host = "stream.example.com"
			type answer struct {
				resp *http.Response
				err  error
			}
			got := make(chan answer, 1)
			go func() {
				resp, err := c.Do(req)
				got <- answer{resp, err}
			}()
			pw.Write([]byte("ping 1"))
			var a answer
			select {
			case a = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("no response head while the request body is open")
			}
			if a.err != nil {
				t.Fatal(a.err)
			}
			buf := make([]byte, 6)
			for _, part := range []string{"ping 1", "ping 2"} {
				if part != "ping 1" {
					pw.Write([]byte(part))
				}
				if _, err := io.ReadFull(a.resp.Body, buf); err != nil || string(buf) != part {
					t.Fatalf("echo of %q: %q %v", part, buf, err)
				}
			}
			pw.Close()
			if b, err := io.ReadAll(a.resp.Body); err != nil || len(b) != 0 {
				t.Fatalf("echo end: %q %v", b, err)
			}
			a.resp.Body.Close()

			// A stream that fails midway: the client sees its body broken off.
			req, _ = http.NewRequest("GET", "http://"+e.HTTPAddr+"/fail", nil)
			req.Host = "stream.example.com"
			resp, err = c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil || string(b) != "tick 1\ntick 2\ntick 3\n" {
				t.Fatalf("failed stream: %q, error %v; want the three ticks then an error", b, err)
			}
		})
	}
	e.WaitFor("the access line of the failed stream", func() error {
		if !strings.Contains(accessLog.String(), "the source went away") {
			return fmt.Errorf("no line says why:\n%s", accessLog.String())
		}
		return nil
	})
}
