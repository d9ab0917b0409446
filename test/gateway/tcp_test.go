package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/edgetest"
)

// tcpEcho answers each line with "<name>: <line>" and half-closes after the client does.
func tcpEcho(t *testing.T, addr, name string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if line != "" {
						fmt.Fprintf(c, "%s: %s", name, line)
					}
					if err != nil {
						c.(*net.TCPConn).CloseWrite()
						return
					}
				}
			}()
		}
	}()
	return ln
}

// TestTCPRoute: a TCP listener splices connections to the TCPRoute's backends by weight, both
// ways, passing on the client's half-close; a route change applies to new connections.
func TestTCPRoute(t *testing.T) {
	a := tcpEcho(t, "127.0.0.35:0", "a")
	tcpEcho(t, "127.0.0.36:"+portOf(a), "b")
	e := edgetest.Start(t, edgetest.Options{})
	port := freeTCPPort(t)
	manifest := func(wa, wb int) string {
		return fmt.Sprintf(`
apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: l4}
spec:
  gatewayClassName: apoxy
  listeners: [{name: tcp, protocol: TCP, port: %d}]
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: a}
spec: {endpoints: [{ip: 127.0.0.35}]}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: b}
spec: {endpoints: [{ip: 127.0.0.36}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: TCPRoute
metadata: {name: echo}
spec:
  parentRefs: [{name: l4}]
  rules: [{backendRefs: [{kind: Backend, name: a, port: %s, weight: %d}, {kind: Backend, name: b, port: %s, weight: %d}]}]
`, port, portOf(a), wa, portOf(a), wb)
	}
	e.Apply(manifest(3, 1))
	e.WaitFor("route accepted", e.RouteKindAccepted("TCPRoute", "echo"))
	exchange := func() (string, error) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "one\ntwo\n")
		c.(*net.TCPConn).CloseWrite() // the backend sees EOF only if the half-close is passed on
		b, err := io.ReadAll(c)
		return string(b), err
	}
	e.WaitFor("TCP echo through the gateway", func() error {
		got, err := exchange()
		if err != nil {
			return err
		}
		if !strings.HasSuffix(got, ": one\n") && !strings.Contains(got, ": two\n") {
			return fmt.Errorf("got %q", got)
		}
		return nil
	})
	counts := map[string]int{}
	for range 200 {
		got, err := exchange()
		if err != nil {
			t.Fatal(err)
		}
		name, _, _ := strings.Cut(got, ":")
		if got != name+": one\n"+name+": two\n" {
			t.Fatalf("reply %q: want both lines from one backend", got)
		}
		counts[name]++
	}
	if counts["a"] < 120 || counts["a"] > 180 || counts["a"]+counts["b"] != 200 {
		t.Fatalf("weights 3:1 gave %v", counts)
	}
	// Route change: all new connections go to b.
	e.Apply(manifest(0, 1))
	e.WaitFor("weights moved to b", func() error {
		for range 20 {
			got, err := exchange()
			if err != nil {
				return err
			}
			if !strings.HasPrefix(got, "b: ") {
				return fmt.Errorf("still reaching %q", got)
			}
		}
		return nil
	})
}
