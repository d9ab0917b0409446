package gateway

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/edgetest"
)

// TestListenerSet: a ListenerSet adds a listener on its own port to a Gateway that admits
// ListenerSets; a route whose parent is the ListenerSet serves there (and not on the Gateway's
// own listener), the Gateway counts the set in status.attachedListenerSets, a set listener on a
// taken port is PortUnavailable, and deleting the ListenerSet closes its port.
func TestListenerSet(t *testing.T) {
	ln := echoServer(t, "127.0.0.14:0", "team-app", nil)
	e := edgetest.Start(t, edgetest.Options{})
	gwPort, setPort := freeTCPPort(t), freeTCPPort(t)
	e.Apply(fmt.Sprintf(`apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: platform}
spec:
  gatewayClassName: apoxy
  allowedListeners: {namespaces: {from: Same}}
  listeners: [{name: main, protocol: HTTP, port: %d}]
---
apiVersion: gateway.apoxy.dev/v1
kind: ListenerSet
metadata: {name: team}
spec:
  parentRef: {name: platform}
  listeners: [{name: app, protocol: HTTP, port: %d, hostname: app.example.com}]
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: team-app}
spec: {endpoints: [{ip: 127.0.0.14}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: team-app}
spec:
  parentRefs: [{kind: ListenerSet, name: team}]
  rules: [{backendRefs: [{kind: Backend, name: team-app, port: %s}]}]
`, gwPort, setPort, portOf(ln)))
	e.WaitFor("route accepted", e.RouteAccepted("team-app"))
	e.WaitFor("Gateway counts the ListenerSet", func() error {
		st := fmt.Sprint(e.Get("gateway.apoxy.dev/v1", "Gateway", "platform").Object["status"])
		if !strings.Contains(st, "attachedListenerSets:1") {
			return fmt.Errorf("status %s", st)
		}
		return nil
	})
	c := &http.Client{Timeout: 5 * time.Second}
	get := func(port int, host string) (int, string, error) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		var got echo
		_ = json.NewDecoder(resp.Body).Decode(&got)
		return resp.StatusCode, got.Backend, nil
	}
	e.WaitFor("served on the ListenerSet's port", func() error {
		code, backend, err := get(setPort, "app.example.com")
		if err != nil || code != 200 || backend != "team-app" {
			return fmt.Errorf("%d %q %v", code, backend, err)
		}
		return nil
	})
	if code, _, err := get(gwPort, "app.example.com"); err != nil || code != 404 {
		t.Errorf("Gateway's own listener: %d %v, want 404 (the route's parent is the ListenerSet)", code, err)
	}
	// A set listener whose port is taken says so in the ListenerSet's status.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	e.Apply(fmt.Sprintf(`apiVersion: gateway.apoxy.dev/v1
kind: ListenerSet
metadata: {name: team}
spec:
  parentRef: {name: platform}
  listeners:
  - {name: app, protocol: HTTP, port: %d, hostname: app.example.com}
  - {name: busy, protocol: HTTP, port: %d}
`, setPort, taken.Addr().(*net.TCPAddr).Port))
	e.WaitFor("PortUnavailable on the busy set listener", func() error {
		st := fmt.Sprint(e.Get("gateway.apoxy.dev/v1", "ListenerSet", "team").Object["status"])
		if !strings.Contains(st, "reason:PortUnavailable") {
			return fmt.Errorf("status %s", st)
		}
		return nil
	})
	e.Delete("gateway.apoxy.dev/v1", "ListenerSet", "team")
	e.WaitFor("ListenerSet's port closed", func() error {
		if _, _, err := get(setPort, "app.example.com"); err == nil {
			return fmt.Errorf("still serving")
		}
		return nil
	})
}
