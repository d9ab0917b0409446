package gateway

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/edgetest"
)

// udpEcho answers each datagram with "<name>: <datagram>".
func udpEcho(t *testing.T, addr, name string) *net.UDPConn {
	t.Helper()
	ua, _ := net.ResolveUDPAddr("udp", addr)
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		b := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDP(b)
			if err != nil {
				return
			}
			pc.WriteToUDP([]byte(name+": "+string(b[:n])), from)
		}
	}()
	return pc
}

// freeUDPPort returns a port number free for both UDP and TCP (the test binds both), taken
// below the kernel's ephemeral range so that no test's outgoing connection holds it.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := 20000 + rand.IntN(12000)
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		pc.Close()
		if err != nil {
			continue
		}
		ln.Close()
		return p
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// TestUDPRoute: a UDP listener relays datagrams per client address (a session keeps its
// backend) to the UDPRoute's backends by weight, answers come back to the client, and a TCP
// listener on the same port number coexists.
func TestUDPRoute(t *testing.T) {
	a := udpEcho(t, "127.0.0.37:0", "a")
	port := a.LocalAddr().(*net.UDPAddr).Port
	udpEcho(t, fmt.Sprintf("127.0.0.38:%d", port), "b")
	tcpBackend := tcpEcho(t, "127.0.0.39:0", "tcp")
	e := edgetest.Start(t, edgetest.Options{})
	gwPort := freeUDPPort(t)
	manifest := func(wa, wb int) string {
		return fmt.Sprintf(`
apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: dns}
spec:
  gatewayClassName: apoxy
  listeners:
  - {name: udp, protocol: UDP, port: %d}
  - {name: tcp, protocol: TCP, port: %d}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: a}
spec: {endpoints: [{ip: 127.0.0.37}]}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: b}
spec: {endpoints: [{ip: 127.0.0.38}]}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: t}
spec: {endpoints: [{ip: 127.0.0.39}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: UDPRoute
metadata: {name: echo}
spec:
  parentRefs: [{name: dns, sectionName: udp}]
  rules: [{backendRefs: [{kind: Backend, name: a, port: %d, weight: %d}, {kind: Backend, name: b, port: %d, weight: %d}]}]
---
apiVersion: gateway.apoxy.dev/v1
kind: TCPRoute
metadata: {name: echo-tcp}
spec:
  parentRefs: [{name: dns, sectionName: tcp}]
  rules: [{backendRefs: [{kind: Backend, name: t, port: %s}]}]
`, gwPort, gwPort, port, wa, port, wb, portOf(tcpBackend))
	}
	e.Apply(manifest(1, 1))
	e.WaitFor("route accepted", e.RouteKindAccepted("UDPRoute", "echo"))
	// session sends three datagrams from one client socket and returns the backends that answered.
	session := func() ([]string, error) {
		c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", gwPort))
		if err != nil {
			return nil, err
		}
		defer c.Close()
		var from []string
		b := make([]byte, 2048)
		for i := range 3 {
			msg := fmt.Sprintf("ping-%d", i)
			c.Write([]byte(msg))
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, err := c.Read(b)
			if err != nil {
				return nil, err
			}
			name, rest, _ := strings.Cut(string(b[:n]), ": ")
			if rest != msg {
				return nil, fmt.Errorf("answer %q to %q", b[:n], msg)
			}
			from = append(from, name)
		}
		return from, nil
	}
	e.WaitFor("UDP echo through the gateway", func() error { _, err := session(); return err })
	counts := map[string]int{}
	for range 60 {
		from, err := session()
		if err != nil {
			t.Fatal(err)
		}
		if from[0] != from[1] || from[1] != from[2] {
			t.Fatalf("one client's datagrams reached %v: a session must keep its backend", from)
		}
		counts[from[0]]++
	}
	if counts["a"] < 12 || counts["b"] < 12 {
		t.Fatalf("weights 1:1 gave %v", counts)
	}
	// The TCP listener on the same port number serves its own route.
	e.WaitFor("TCP route accepted", e.RouteKindAccepted("TCPRoute", "echo-tcp"))
	e.WaitFor("TCP on the UDP listener's port", func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", gwPort), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprint(c, "hello\n")
		c.(*net.TCPConn).CloseWrite()
		got, _ := io.ReadAll(c)
		if string(got) != "tcp: hello\n" {
			return fmt.Errorf("got %q", got)
		}
		return nil
	})
	// New sessions follow a route change.
	e.Apply(manifest(0, 1))
	e.WaitFor("new sessions go to b", func() error {
		for range 10 {
			from, err := session()
			if err != nil {
				return err
			}
			if from[0] != "b" {
				return fmt.Errorf("reached %v", from)
			}
		}
		return nil
	})
}
