package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/proxy"
)

// agentProc is one `apoxy tunnel run` process.
type agentProc struct {
	t                  testing.TB
	d                  *devServer
	node, name         string
	socks, dns, health string
	extra              []string
	cmd                *exec.Cmd
	log                *syncBuffer
	exited             chan error
}

// runAgent starts `apoxy tunnel run NODE --name NAME` against d, with its proxies and health
// endpoint on free loopback ports, and waits until it is ready (a session is up).
func (d *devServer) runAgent(t testing.TB, node, name string, extra ...string) *agentProc {
	t.Helper()
	a := &agentProc{t: t, d: d, node: node, name: name, socks: freePort(t), dns: freePort(t), health: freePort(t), extra: extra}
	a.start()
	t.Cleanup(a.kill9)
	return a
}

func (a *agentProc) start() {
	a.t.Helper()
	for attempt := 1; ; attempt++ {
		err := a.try()
		if err == nil {
			return
		}
		// freePort's ports are free when chosen, not reserved: another test's process may
		// take one first. The agent then exits at once; it gets other ports.
		if attempt < 3 && strings.Contains(a.log.String(), "address already in use") {
			a.t.Logf("agent %s: a port was taken meanwhile, trying others", a.name)
			a.socks, a.dns, a.health = freePort(a.t), freePort(a.t), freePort(a.t)
			continue
		}
		a.t.Fatalf("%v\n%s", err, a.log)
	}
}

// try starts the agent and waits for it to be ready.
func (a *agentProc) try() error {
	args := append([]string{"--config", a.d.config(), "tunnel", "run", a.node, "--name", a.name, "--no-tui",
		"--socks-addr", a.socks, "--dns-addr", a.dns, "--health-addr", a.health}, a.extra...)
	a.cmd = exec.Command(apoxyBin, args...)
	a.log = &syncBuffer{}
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	a.cmd.Env = append(os.Environ(), "HOME="+a.d.dataDir)
	if err := a.cmd.Start(); err != nil {
		return err
	}
	a.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(a.cmd, a.exited)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + a.health + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-a.exited:
			return fmt.Errorf("agent %s exited: %v", a.name, err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent %s not ready within 30s", a.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (a *agentProc) kill9() {
	if a.cmd.ProcessState != nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.exited
}

// stop sends SIGTERM (the agent drains) and waits.
func (a *agentProc) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(20 * time.Second):
		a.t.Errorf("agent %s did not stop within 20s of SIGTERM\n%s", a.name, a.log)
	}
}

// socksGet fetches url through the agent's SOCKS5 proxy.
func (a *agentProc) socksGet(url string) (string, error) {
	d, err := proxy.SOCKS5("tcp", a.socks, nil, proxy.Direct)
	if err != nil {
		return "", err
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: d.(proxy.ContextDialer).DialContext}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

const tunnelManifest = `apiVersion: core.apoxy.dev/v1alpha
kind: TunnelNode
metadata:
  name: office-link
spec:
  egressGateway:
    enabled: %v
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata:
  name: office
spec:
  endpoints:
  - fqdn: office-link.tun.apoxy.net
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata:
  name: office
spec:
  parentRefs:
  - name: default
  hostnames: ["office.example.com"]
  rules:
  - backendRefs:
    - kind: Backend
      name: office
      port: %s
`

// Real processes: `apoxy dev` and `apoxy tunnel run` agents (user mode, unprivileged). An
// HTTPRoute → Backend(fqdn office-link.tun.apoxy.net) reaches a service on the agents'
// 127.0.0.1; SOCKS5 from an agent reaches a gateway-side service while the node's egress is
// on and is refused once it is off; an agent killed with SIGKILL and started again serves
// again without anyone acting; with two agents, killing one under load fails no request
// (the gateway resets connections through the gone agent and retries them through the other);
// `apoxy tunnel token rotate` ends the agents' sessions and they reconnect with the new token.
func TestTunnelAgents(t *testing.T) {
	d := startDev(t, "")
	behind := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "behind the tunnel") }))
	defer behind.Close()
	gwSide := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "gateway side") }))
	defer gwSide.Close()
	_, port, _ := net.SplitHostPort(behind.Listener.Addr().String())
	dir := t.TempDir()
	must(t, d.apoxy(t, "", "apply", "-f", writeFile(t, dir, "t.yaml", fmt.Sprintf(tunnelManifest, true, port))))

	a1 := d.runAgent(t, "office-link", "a1")
	client := &http.Client{Timeout: 10 * time.Second}
	getRoute := func() (string, error) {
		req, _ := http.NewRequest("GET", "http://"+d.httpAddr+"/", nil)
		req.Host = "office.example.com"
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		return string(b), nil
	}
	waitFor(t, func() bool { body, _ := getRoute(); return body == "behind the tunnel" })
	checkTunnelUDP(t, d, dir)
	out := must(t, d.apoxy(t, "", "tunnel", "list", "-o", "wide")).stdout
	if !strings.Contains(out, "a1") {
		t.Errorf("tunnel list does not show the agent:\n%s", out)
	}

	// SOCKS5 from the agent: the gateway-side service with egress, refused without.
	if body, err := a1.socksGet(gwSide.URL); err != nil || body != "gateway side" {
		t.Fatalf("SOCKS5 with egress: %q %v\n%s", body, err, a1.log)
	}
	if body, err := a1.socksGet("http://office-link.tun.apoxy.net:" + port + "/"); err != nil || body != "behind the tunnel" {
		t.Errorf("SOCKS5 to the node's name: %q %v", body, err)
	}
	must(t, d.apoxy(t, "", "apply", "-f", writeFile(t, dir, "t.yaml", fmt.Sprintf(tunnelManifest, false, port))))
	waitFor(t, func() bool { _, err := a1.socksGet(gwSide.URL); return err != nil })

	// Killed and started again: the route recovers by itself.
	a1.kill9()
	killed := time.Now()
	a1.start()
	waitFor(t, func() bool { body, _ := getRoute(); return body == "behind the tunnel" })
	t.Logf("served again %s after SIGKILL and restart", time.Since(killed).Round(time.Millisecond))

	// Two agents: kill one under load.
	a2 := d.runAgent(t, "office-link", "a2")
	waitFor(t, func() bool {
		out := must(t, d.apoxy(t, "", "tunnel", "get", "office-link", "-o", "yaml")).stdout
		return strings.Contains(out, "name: a1") && strings.Contains(out, "name: a2")
	})
	var failed, served atomic.Int32
	var wg sync.WaitGroup
	ctx, stopLoad := context.WithCancel(context.Background())
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := getRoute(); err != nil {
					failed.Add(1)
					t.Logf("under failover: %v", err)
				} else {
					served.Add(1)
				}
			}
		}()
	}
	time.Sleep(time.Second)
	a2.kill9()
	time.Sleep(8 * time.Second) // past the gone session's 6 s idle timeout
	stopLoad()
	wg.Wait()
	t.Logf("killing one of two agents under load: %d served, %d failed", served.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d requests failed when one of two agents was killed", failed.Load())
	}

	// Rotation ends the sessions; the agent fetches the new token and reconnects.
	must(t, d.apoxy(t, "", "tunnel", "token", "rotate", "office-link"))
	waitFor(t, func() bool { return strings.Contains(a1.log.String(), "token was rotated") })
	waitFor(t, func() bool { body, _ := getRoute(); return body == "behind the tunnel" })

	a1.stop()
	if !strings.Contains(d.log.String(), "agent disconnected") {
		t.Errorf("the server did not log the agent leaving")
	}
}

// checkTunnelUDP: a UDPRoute → Backend(fqdn office-link.tun.apoxy.net) reaches a UDP service
// on the agent's 127.0.0.1, and its answers come back to the client.
func checkTunnelUDP(t *testing.T, d *devServer, dir string) {
	t.Helper()
	echo, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(append([]byte("udp behind the tunnel: "), buf[:n]...), from)
		}
	}()
	probe, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gwPort := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	must(t, d.apoxy(t, "", "apply", "-f", writeFile(t, dir, "udp.yaml", fmt.Sprintf(`apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: udp}
spec:
  gatewayClassName: apoxy
  listeners:
  - {name: udp, protocol: UDP, port: %d}
---
apiVersion: gateway.apoxy.dev/v1
kind: UDPRoute
metadata: {name: office-udp}
spec:
  parentRefs: [{name: udp, sectionName: udp}]
  rules: [{backendRefs: [{kind: Backend, name: office, port: %d}]}]
`, gwPort, echo.LocalAddr().(*net.UDPAddr).Port))))
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", gwPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2048)
	waitFor(t, func() bool {
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Read(buf)
		return err == nil && string(buf[:n]) == "udp behind the tunnel: ping"
	})
}
