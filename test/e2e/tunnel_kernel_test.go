package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// netnsPeer is a network namespace joined to this one by a veth pair: hostIP here, peerIP
// there.
type netnsPeer struct {
	name           string
	hostIP, peerIP string
}

// newNetns makes a network namespace with a veth link to this one, removed when the test
// ends; it skips the test, saying why, where namespaces cannot be made (not root).
func newNetns(t *testing.T) *netnsPeer {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("APOXY_REQUIRE_NETNS") != "" {
		skip = t.Fatalf // CI runs as root: a namespace it cannot make is a failure
	}
	if os.Geteuid() != 0 {
		skip("kernel mode needs a network namespace and CAP_NET_ADMIN: run as root (CI does)")
	}
	n := &netnsPeer{name: fmt.Sprintf("apx%d", os.Getpid()%100000), hostIP: "10.231.0.1", peerIP: "10.231.0.2"}
	host, peer := n.name+"h", n.name+"p"
	for _, args := range [][]string{
		{"netns", "add", n.name},
		{"link", "add", host, "type", "veth", "peer", "name", peer, "netns", n.name},
		{"addr", "add", n.hostIP + "/30", "dev", host},
		{"link", "set", host, "up"},
		{"-n", n.name, "addr", "add", n.peerIP + "/30", "dev", peer},
		{"-n", n.name, "link", "set", peer, "up"},
		{"-n", n.name, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			exec.Command("ip", "netns", "del", n.name).Run()
			skip("cannot make a network namespace here (ip %s: %v: %s)", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", host).Run()
		exec.Command("ip", "netns", "del", n.name).Run()
	})
	return n
}

// listen opens a TCP listener inside the namespace (the socket stays there; it is served
// from here).
func (n *netnsPeer) listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(n.name)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	l, lerr := net.Listen("tcp", addr)
	if err := netns.Set(orig); err != nil {
		panic(err) // this thread must not go back to the scheduler in the other namespace
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	return l
}

// Kernel mode, for real: `apoxy tunnel run --mode kernel` inside a network namespace (its own
// TUN device, address and route; the gateway reached over a veth link) and a service there
// listening on [::]; an HTTPRoute → Backend(fqdn office-link.tun.apoxy.net) reaches it, as
// QUIC streams (the default) and as packets through the TUN device (--packets).
func TestTunnelKernelMode(t *testing.T) {
	for _, packets := range []bool{false, true} {
		t.Run(map[bool]string{false: "streams", true: "packets"}[packets], func(t *testing.T) { testKernelMode(t, packets) })
	}
}

func testKernelMode(t *testing.T, packets bool) {
	n := newNetns(t)
	d := newDevServer(t, "")
	_, tport, _ := net.SplitHostPort(freePort(t))
	d.tunnelAddr = net.JoinHostPort(n.hostIP, tport)
	d.start()
	t.Cleanup(d.stop)

	svc := n.listen(t, "[::]:0")
	go http.Serve(svc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "kernel mode, from "+r.RemoteAddr) }))
	defer svc.Close()
	_, port, _ := net.SplitHostPort(svc.Addr().String())
	dir := t.TempDir()
	must(t, d.apoxy(t, "", "apply", "-f", writeFile(t, dir, "t.yaml", fmt.Sprintf(tunnelManifest, false, port))))
	var token string
	waitFor(t, func() bool {
		token = strings.TrimSpace(must(t, d.apoxy(t, "", "tunnel", "get", "office-link", "-o", "jsonpath={.status.credentials.token}")).stdout)
		return token != ""
	})

	// In the namespace the API is not reachable: the token and endpoint are given.
	agentLog := &syncBuffer{}
	cmd := exec.Command("ip", "netns", "exec", n.name, apoxyBin, "--config", d.config(), "tunnel", "run", "office-link",
		"--mode", "kernel", "--name", "k1", "--token", token, "--endpoint", d.tunnelAddr, "--no-tui",
		"--health-addr", "127.0.0.1:9180", "--dns-addr", "127.0.0.1:8053", fmt.Sprintf("--packets=%v", packets))
	cmd.Stdout, cmd.Stderr = agentLog, agentLog
	cmd.Env = append(os.Environ(), "HOME="+d.dataDir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()

	client := &http.Client{Timeout: 5 * time.Second}
	get := func() string {
		req, _ := http.NewRequest("GET", "http://"+d.httpAddr+"/", nil)
		req.Host = "office.example.com"
		resp, err := client.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for body := get(); !strings.HasPrefix(body, "kernel mode"); body = get() {
		if time.Now().After(deadline) {
			t.Fatalf("the route did not reach the kernel-mode agent's service: %q\nagent:\n%s\nserver:\n%s", body, agentLog, d.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := exec.Command("ip", "-n", n.name, "-6", "addr", "show", "dev", "apoxy0").CombinedOutput()
	if !strings.Contains(string(out), "inet6 fd") || !strings.Contains(string(out), "/96") {
		t.Errorf("apoxy0 in the namespace:\n%s", out)
	}
	rx0 := tunRXPackets(t, n.name)
	for range 50 {
		if body := get(); !strings.HasPrefix(body, "kernel mode") {
			t.Fatalf("through the kernel-mode agent: %q", body)
		}
	}
	// Packets cross the TUN device (several per request); streams do not.
	if rx := tunRXPackets(t, n.name) - rx0; packets != (rx >= 50) {
		t.Errorf("--packets=%v: apoxy0 received %d packets during 50 requests", packets, rx)
	}
	t.Logf("%s; agent log:\n%s", get(), agentLog)
}

// tunRXPackets is how many packets apoxy0 in namespace ns has received.
func tunRXPackets(t *testing.T, ns string) int {
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/sys/class/net/apoxy0/statistics/rx_packets").Output()
	if err != nil {
		t.Fatalf("apoxy0 statistics: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
