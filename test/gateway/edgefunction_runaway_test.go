package gateway

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/edgetest"
)

// Runaway code (a loop, a memory hog, a promise that never settles) is stopped within its
// timeout (1 s), and code that throws or returns garbage fails only its own request, while other
// routes (a Backend, and a healthy function) serve under concurrent load with no error.
func TestEdgeFunctionRunaway(t *testing.T) {
	ln := echoServer(t, "127.0.0.23:0", "app", nil)
	var accessLog lockedBuffer
	e := edgetest.Start(t, edgetest.Options{AccessLog: &accessLog})
	fn := func(name, body string) string {
		return `---
apiVersion: extensions.apoxy.dev/v1alpha2
kind: EdgeFunction
metadata: {name: ` + name + `}
spec:
  template:
    mode: backend
    runtime: {timeout: 1s}
    code:
      jsSource:
        assets:
          files:
          - path: index.js
            content: |
              export default { async fetch(request, env, ctx) { ` + body + ` } };
`
	}
	bad := map[string]string{
		"loop":    `for (;;) {}`,
		"memhog":  `const keep = []; for (;;) keep.push("x".repeat(1 << 20) + Math.random());`,
		"never":   `await new Promise(() => {}); return new Response("x");`,
		"pending": `await new Promise((r) => setTimeout(r, 60000)); return new Response("x");`,
		"throws":  `throw new Error("boom");`,
		"garbage": `return 42;`,
	}
	docs := fn("healthy", `return new Response("ok " + new URL(request.url).pathname);`)
	route := `---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: fns}
spec:
  parentRefs: [{name: default}]
  hostnames: [fns.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /app}}]
    backendRefs: [{group: core.apoxy.dev, kind: Backend, name: app, port: ` + portOf(ln) + `}]
  - matches: [{path: {type: PathPrefix, value: /healthy}}]
    backendRefs: [{group: extensions.apoxy.dev, kind: EdgeFunction, name: healthy}]
`
	for name, body := range bad {
		docs += fn(name, body)
		route += "  - matches: [{path: {type: PathPrefix, value: /" + name + "}}]\n    backendRefs: [{group: extensions.apoxy.dev, kind: EdgeFunction, name: " + name + "}]\n"
	}
	e.Apply(docs + route + `---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: app}
spec:
  endpoints: [{ip: 127.0.0.23}]
`)
	for _, name := range []string{"healthy", "loop", "memhog", "never", "pending", "throws", "garbage"} {
		e.WaitFor(name+" ready", functionReady(e, name))
	}
	// ResolvedRefs turns True once every function's live revision is in the data plane (the
	// status is written after the configuration is applied).
	e.WaitFor("route accepted", e.RouteAccepted("fns"))
	e.WaitFor("healthy serves", func() error {
		if code, b := send(t, e, "fns.example.com", "/healthy"); code != 200 || b != "ok /healthy" {
			return fmt.Errorf("%d %q", code, b)
		}
		return nil
	})

	var ok, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := []string{"/app/x", "/healthy"}[i%2]
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, b := send(t, e, "fns.example.com", path)
				if code != 200 || (path == "/healthy" && b != "ok /healthy") {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: %d %q", path, code, b))
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		}()
	}
	// One function at a time, three requests each, the memory hog last: a hog's VM can burn a
	// core past its answer until the engine notices its interrupt, which on a starved -race
	// machine would slow the loading of the others' VMs past their timeout.
	for _, c := range []struct {
		name string
		code int
	}{{"never", 500}, {"throws", 500}, {"garbage", 500}, {"pending", 503}, {"loop", 503}, {"memhog", 503}} {
		var bwg sync.WaitGroup
		for range 3 {
			bwg.Add(1)
			go func() {
				defer bwg.Done()
				start := time.Now()
				got, _ := send(t, e, "fns.example.com", "/"+c.name)
				took := time.Since(start)
				if got != c.code {
					t.Errorf("%s: status %d, want %d", c.name, got, c.code)
				}
				if took > 3*time.Second {
					t.Errorf("%s: answered after %v; the timeout is 1s", c.name, took)
				}
			}()
		}
		bwg.Wait()
	}
	if t.Failed() {
		for _, l := range strings.Split(accessLog.String(), "\n") {
			if strings.Contains(l, "function_error") {
				t.Log(l)
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("other routes: %d ok, %d failed while runaway functions ran", ok.Load(), failed.Load())
	if failed.Load() != 0 || ok.Load() < 20 {
		t.Fatalf("other routes: %d ok, %d failed: %v", ok.Load(), failed.Load(), failures[:min(5, len(failures))])
	}
	e.WaitFor("errors in the access log", func() error {
		l := accessLog.String()
		for _, s := range []string{`"function":"default/loop@`, `"function_error":"function: timed out`, `boom`} {
			if !strings.Contains(l, s) {
				return fmt.Errorf("no %q in the access log", s)
			}
		}
		return nil
	})
}
