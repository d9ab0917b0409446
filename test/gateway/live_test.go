package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/edgetest"
)

const plainBackend = `
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: app}
spec:
  endpoints: [{fqdn: app.internal}]
`

// TestRouteChangesUnderLoad applies 100 route changes through the API while clients send
// requests continuously to a path every version serves: not one request may fail.
func TestRouteChangesUnderLoad(t *testing.T) {
	ln := serve(t, "127.0.0.3:0", nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %s", r.Header.Get("X-Version"))
	}))
	port := ln.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndexByte(port, ':')+1:]
	e := edgetest.Start(t, edgetest.Options{Hosts: map[string][]string{"app.internal": {"127.0.0.3"}}})
	e.Apply(plainBackend)
	routeVersion := func(i int) string {
		return fmt.Sprintf(`
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: app}
spec:
  parentRefs: [{name: default}]
  hostnames: [app.example.com]
  rules:
  - matches: [{path: {value: /extra-%d}}]
    backendRefs: [{kind: Backend, name: app, port: %s}]
  - matches: [{path: {value: /}}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-version, value: "%d"}]}}]
    backendRefs: [{kind: Backend, name: app, port: %s}]
`, i, port, i, port)
	}
	e.Apply(routeVersion(0))
	e.WaitFor("route accepted", e.RouteAccepted("app"))
	client := &http.Client{Timeout: 10 * time.Second}
	e.WaitFor("first request", func() error {
		req, _ := http.NewRequest("GET", "http://"+e.HTTPAddr+"/hello", nil)
		req.Host = "app.example.com"
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})

	var stop atomic.Bool
	var total, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	versions := map[string]bool{}
	for c := 0; c < 3; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				req, _ := http.NewRequest("GET", "http://"+e.HTTPAddr+"/hello", nil)
				req.Host = "app.example.com"
				resp, err := client.Do(req)
				total.Add(1)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				time.Sleep(time.Millisecond) // steady traffic, leaving CPU for the applies
				mu.Lock()
				if resp.StatusCode != 200 {
					failed.Add(1)
					failures = append(failures, fmt.Sprintf("%d %s", resp.StatusCode, b))
				} else {
					versions[string(b)] = true
				}
				mu.Unlock()
			}
		}()
	}
	for i := 1; i <= 100; i++ {
		e.Apply(routeVersion(i))
	}
	e.WaitFor("last version served", func() error {
		req, _ := http.NewRequest("GET", "http://"+e.HTTPAddr+"/hello", nil)
		req.Host = "app.example.com"
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok 100" {
			return fmt.Errorf("served %q", b)
		}
		return nil
	})
	stop.Store(true)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed during 100 route changes: %v", failed.Load(), total.Load(), failures[:min(5, len(failures))])
	}
	t.Logf("%d requests, 0 failed, %d route versions observed across 100 changes", total.Load(), len(versions))
}

// TestHealthCheckRemovesAndRestoresEndpoint stops one of two endpoints: active TCP health
// checks take it out within interval x threshold, traffic keeps flowing on the other, and the
// endpoint returns once it answers again.
func TestHealthCheckRemovesAndRestoresEndpoint(t *testing.T) {
	handler := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
	}
	serve(t, "127.0.0.4:18765", nil, handler("a"))
	lnB := serve(t, "127.0.0.5:18765", nil, handler("b"))
	e := edgetest.Start(t, edgetest.Options{})
	e.Apply(`
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: pair}
spec:
  endpoints: [{ip: 127.0.0.4}, {ip: 127.0.0.5}]
  healthCheck: {tcp: {}, interval: 200ms, timeout: 100ms, unhealthyThreshold: 2, healthyThreshold: 1}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: pair}
spec:
  parentRefs: [{name: default}]
  hostnames: [pair.example.com]
  rules: [{backendRefs: [{kind: Backend, name: pair, port: 18765}]}]
`)
	e.WaitFor("route accepted", e.RouteAccepted("pair"))
	client := &http.Client{Timeout: 5 * time.Second}
	hit := func() (string, error) {
		req, _ := http.NewRequest("GET", "http://"+e.HTTPAddr+"/", nil)
		req.Host = "pair.example.com"
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("status %d %s", resp.StatusCode, b)
		}
		return string(b), nil
	}
	seen := func(n int) (map[string]int, error) {
		m := map[string]int{}
		for i := 0; i < n; i++ {
			who, err := hit()
			if err != nil {
				return m, err
			}
			m[who]++
		}
		return m, nil
	}
	e.WaitFor("both endpoints serve", func() error {
		m, err := seen(10)
		if err != nil || m["a"] == 0 || m["b"] == 0 {
			return fmt.Errorf("%v %v", m, err)
		}
		return nil
	})

	lnB.Close() // endpoint b stops accepting
	stopped := time.Now()
	e.WaitFor("b removed", func() error {
		m, err := seen(10)
		if err != nil {
			return err // every request must still succeed (retry on connection failure)
		}
		if m["b"] > 0 {
			return fmt.Errorf("b still picked: %v", m)
		}
		return nil
	})
	removedAfter := time.Since(stopped)
	if limit := 2*200*time.Millisecond + 600*time.Millisecond; removedAfter > limit {
		t.Errorf("endpoint removed after %v, want within interval x threshold (+ slack) %v", removedAfter, limit)
	}
	m, err := seen(20)
	if err != nil || m["a"] != 20 {
		t.Fatalf("traffic while b is down: %v %v", m, err)
	}
	e.WaitFor("backend status shows 1/2 healthy", func() error {
		st := fmt.Sprint(e.Get("core.apoxy.dev/v1alpha2", "Backend", "pair").Object["status"])
		if !strings.Contains(st, "1/2 endpoint addresses healthy") || !strings.Contains(st, "address:127.0.0.5 healthy:false") {
			return fmt.Errorf("status %s", st)
		}
		return nil
	})

	serve(t, "127.0.0.5:18765", nil, handler("b")) // b is back
	e.WaitFor("b restored", func() error {
		m, err := seen(10)
		if err != nil || m["b"] == 0 {
			return fmt.Errorf("%v %v", m, err)
		}
		return nil
	})
	t.Logf("endpoint removed %v after it stopped, and restored once healthy", removedAfter.Round(10*time.Millisecond))
}

// TestHTTPHealthCheck: an HTTP probe with expected statuses keeps an endpoint whose health path
// answers otherwise out of rotation.
func TestHTTPHealthCheck(t *testing.T) {
	handler := func(name string, health int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" {
				w.WriteHeader(health)
				return
			}
			io.WriteString(w, name)
		})
	}
	serve(t, "127.0.0.13:18766", nil, handler("good", http.StatusNoContent))
	serve(t, "127.0.0.14:18766", nil, handler("sick", http.StatusInternalServerError))
	e := edgetest.Start(t, edgetest.Options{})
	e.Apply(`
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: probed}
spec:
  endpoints: [{ip: 127.0.0.13}, {ip: 127.0.0.14}]
  healthCheck: {http: {path: /healthz, expectedStatuses: [204]}, interval: 100ms, timeout: 100ms, unhealthyThreshold: 1, healthyThreshold: 1}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: probed}
spec:
  parentRefs: [{name: default}]
  hostnames: [probed.example.com]
  rules: [{backendRefs: [{kind: Backend, name: probed, port: 18766}]}]
`)
	e.WaitFor("route accepted", e.RouteAccepted("probed"))
	client := &http.Client{Timeout: 5 * time.Second}
	e.WaitFor("only the healthy endpoint serves", func() error {
		for i := 0; i < 10; i++ {
			req, _ := http.NewRequest("GET", "http://"+e.HTTPAddr+"/", nil)
			req.Host = "probed.example.com"
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "good" {
				return fmt.Errorf("served by %q", b)
			}
		}
		return nil
	})
}
