package gateway

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"apoxy.dev/apoxy/internal/edgetest"
)

// TestTakenPortIsAListenerCondition: a Gateway listener whose port another process holds is
// reported (Accepted=False, PortUnavailable) while the Gateway's other listeners serve, and it
// starts serving once the port is free.
func TestTakenPortIsAListenerCondition(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := taken.Addr().(*net.TCPAddr).Port
	ln := echoServer(t, "127.0.0.10:0", "main", nil)
	e := edgetest.Start(t, edgetest.Options{})
	e.Apply(fmt.Sprintf(`
apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: extra}
spec:
  gatewayClassName: apoxy
  listeners:
  - {name: taken, protocol: HTTP, port: %d}
`+mainBackendAndRoute(ln, "default", "extra"), port))
	e.WaitFor("listener reports the taken port", func() error {
		st := fmt.Sprint(e.Get("gateway.apoxy.dev/v1", "Gateway", "extra").Object["status"])
		if !strings.Contains(st, "reason:PortUnavailable") {
			return fmt.Errorf("status %s", st)
		}
		return nil
	})
	// The default Gateway serves meanwhile.
	e.WaitFor("default gateway serves", func() error {
		if err := getOK("http://" + e.HTTPAddr + "/"); err != nil {
			return err
		}
		return nil
	})
	taken.Close()
	e.WaitFor("listener binds once the port is free", func() error {
		if err := getOK(fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil {
			return err
		}
		st := fmt.Sprint(e.Get("gateway.apoxy.dev/v1", "Gateway", "extra").Object["status"])
		if strings.Contains(st, "PortUnavailable") {
			return fmt.Errorf("status still %s", st)
		}
		return nil
	})
}

// TestUnusableAddressIsReported: a spec address on no interface of this machine (TEST-NET-1)
// makes the Gateway Programmed=False with reason AddressNotUsable and is left out of
// status.addresses, while the Gateway's usable address serves.
func TestUnusableAddressIsReported(t *testing.T) {
	ln := echoServer(t, "127.0.0.10:0", "main", nil)
	e := edgetest.Start(t, edgetest.Options{})
	port := freeTCPPort(t)
	e.Apply(fmt.Sprintf(`
apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: static}
spec:
  gatewayClassName: apoxy
  addresses: [{value: 192.0.2.1}, {value: 127.0.0.21}]
  listeners:
  - {name: http, protocol: HTTP, port: %d}
`+mainBackendAndRoute(ln, "static"), port))
	e.WaitFor("gateway reports the unusable address", func() error {
		st := e.Get("gateway.apoxy.dev/v1", "Gateway", "static").Object["status"]
		s := fmt.Sprint(st)
		if !strings.Contains(s, "reason:AddressNotUsable") || !strings.Contains(s, "192.0.2.1 is not assigned") {
			return fmt.Errorf("status %s", s)
		}
		if strings.Contains(fmt.Sprint(st.(map[string]any)["addresses"]), "192.0.2.1") {
			return fmt.Errorf("status.addresses lists the unusable address: %s", s)
		}
		return nil
	})
	e.WaitFor("usable address serves", func() error {
		if err := getOK(fmt.Sprintf("http://127.0.0.21:%d/", port)); err != nil {
			return err
		}
		return nil
	})
}

// mainBackendAndRoute is YAML for Backend "main" (the echo server ln) and an HTTPRoute
// sending everything to it from the named Gateways.
func mainBackendAndRoute(ln net.Listener, gateways ...string) string {
	var refs []string
	for _, g := range gateways {
		refs = append(refs, "{name: "+g+"}")
	}
	return fmt.Sprintf(`---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: main}
spec: {endpoints: [{ip: 127.0.0.10}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: main}
spec:
  parentRefs: [%s]
  rules: [{backendRefs: [{kind: Backend, name: main, port: %s}]}]
`, strings.Join(refs, ", "), portOf(ln))
}

// getOK returns nil when GET url answers 200.
func getOK(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return nil
}

// TestTakenPortOnPoolAddress: a bind failure is matched to the Gateway through the address
// the pool gave it (not the server's bind address), so it is reported on that Gateway.
func TestTakenPortOnPoolAddress(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.32:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	e := edgetest.Start(t, edgetest.Options{AddressPool: []string{"127.0.0.31", "127.0.0.32"}})
	e.WaitFor("default gateway takes the first pool address", func() error {
		if st := fmt.Sprint(e.Get("gateway.apoxy.dev/v1", "Gateway", "default").Object["status"]); !strings.Contains(st, "127.0.0.31") {
			return fmt.Errorf("status %s", st)
		}
		return nil
	})
	e.Apply(fmt.Sprintf(`
apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: pooled}
spec:
  gatewayClassName: apoxy
  listeners:
  - {name: taken, protocol: HTTP, port: %d}
`, port))
	e.WaitFor("listener on the pool address reports the taken port", func() error {
		st := fmt.Sprint(e.Get("gateway.apoxy.dev/v1", "Gateway", "pooled").Object["status"])
		if !strings.Contains(st, "127.0.0.32") || !strings.Contains(st, "reason:PortUnavailable") {
			return fmt.Errorf("status %s", st)
		}
		return nil
	})
}
