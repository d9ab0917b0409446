package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// observeRoutes applies a Backend on a local echo server, a route to it and a route that
// answers 503, and waits until both serve.
func observeRoutes(t *testing.T, d *devServer) {
	t.Helper()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	t.Cleanup(echo.Close)
	host, port, _ := net.SplitHostPort(echo.Listener.Addr().String())
	must(t, d.apoxy(t, fmt.Sprintf(`apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: echo}
spec: {endpoints: [{ip: %s}]}
---
apiVersion: extensions.apoxy.dev/v1alpha2
kind: DirectResponse
metadata: {name: down}
spec: {statusCode: 503}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{name: default}]
  hostnames: [obs.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /down}}]
    filters: [{type: ExtensionRef, extensionRef: {group: extensions.apoxy.dev, kind: DirectResponse, name: down}}]
  - backendRefs: [{kind: Backend, name: echo, port: %s}]
`, host, port), "apply", "-f", "-"))
	waitFor(t, func() bool { return request(t, d, "/") == 200 && request(t, d, "/down") == 503 })
}

func request(t *testing.T, d *devServer, path string) int {
	req, _ := http.NewRequest("GET", "http://"+d.httpAddr+path, nil)
	req.Host = "obs.example.com"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestLogsAndTop drives `apoxy logs` (kept lines, filters, JSON, follow) and `apoxy top` in
// plain mode against a running server with real traffic.
func TestLogsAndTop(t *testing.T) {
	d := startDev(t, "")
	observeRoutes(t, d)
	for range 10 {
		request(t, d, "/users")
	}
	request(t, d, "/down")

	out := must(t, d.apoxy(t, "", "logs", "--tail", "3")).stdout
	if n := strings.Count(out, "\n"); n != 3 || !strings.Contains(out, `"path":"/down"`) {
		t.Errorf("apoxy logs --tail 3: %d lines\n%s", n, out)
	}
	out = must(t, d.apoxy(t, "", "logs", "--status", "5xx")).stdout
	if strings.Count(out, `"status":503`) < 2 || strings.Contains(out, `"status":200`) {
		t.Errorf("apoxy logs --status 5xx:\n%s", out)
	}
	out = must(t, d.apoxy(t, "", "logs", "-o", "json", "--route", "api/rule/1", "--since", "1m")).stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 10 {
		t.Errorf("apoxy logs --route api/rule/1: %d lines\n%s", len(lines), out)
	}
	for _, l := range lines {
		var obj map[string]any
		if err := json.Unmarshal([]byte(l), &obj); err != nil || obj["status"] != 200.0 {
			t.Fatalf("-o json line %q: %v", l, err)
		}
	}
	if r := d.apoxy(t, "", "logs", "--status", "6xx"); r.err == nil || !strings.Contains(r.stderr, "status") {
		t.Errorf("a bad --status: %v %s", r.err, r.stderr)
	}

	// Follow: a request made after the command started shows up within a second.
	cmd := exec.Command(apoxyBin, "--config", d.config(), "logs", "-f", "--tail", "1")
	cmd.Env = append(os.Environ(), "HOME="+d.dataDir)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	rd := bufio.NewReader(stdout)
	if _, err := rd.ReadString('\n'); err != nil { // the kept line
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() { l, _ := rd.ReadString('\n'); got <- l }()
	time.Sleep(200 * time.Millisecond)
	request(t, d, "/followed")
	select {
	case l := <-got:
		if !strings.Contains(l, `"path":"/followed"`) {
			t.Errorf("followed line: %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("apoxy logs -f printed nothing for a new request")
	}

	// top --plain: two refreshes a second apart while traffic flows; the second shows rates.
	var stop atomic.Bool
	defer stop.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			request(t, d, "/users")
			time.Sleep(5 * time.Millisecond)
		}
	}()
	out = must(t, d.apoxy(t, "", "top", "--plain", "--iterations", "2")).stdout
	stop.Store(true)
	<-done
	tables := strings.Split(strings.TrimSpace(out), "\n\n")
	if len(tables) != 2 {
		t.Fatalf("apoxy top --plain --iterations 2 printed %d tables:\n%s", len(tables), out)
	}
	row := regexp.MustCompile(`(?m)^\s*([0-9.]+)\s+([0-9.]+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)\s+httproute/default/api/rule/1\s+default/default\s*$`).FindStringSubmatch(tables[1])
	if row == nil {
		t.Fatalf("no row for the route in:\n%s", tables[1])
	}
	if row[1] == "0.0" || row[5] == "-" {
		t.Errorf("route row without rate or p99: %q\n%s", row[0], out)
	}

	// The default Proxy's own text format: refused with the operator when wrong, then applied
	// to the project's lines.
	proxy := "apiVersion: core.apoxy.dev/v1alpha2\nkind: Proxy\nmetadata: {name: default}\nspec:\n  telemetry:\n    accessLogs: {format: '%s'}\n"
	r := d.apoxy(t, fmt.Sprintf(proxy, "%REQ(:METHOD)% %REQ_HEADERS%"), "apply", "-f", "-")
	if r.err == nil || !strings.Contains(r.stderr, "spec.telemetry.accessLogs.format") || !strings.Contains(r.stderr, "%REQ_HEADERS%") {
		t.Errorf("a bad format: %v\n%s", r.err, r.stderr)
	}
	must(t, d.apoxy(t, fmt.Sprintf(proxy, "%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %ROUTE_NAME%"), "apply", "-f", "-"))
	waitFor(t, func() bool {
		request(t, d, "/formatted?x=1")
		out := must(t, d.apoxy(t, "", "logs", "--tail", "1")).stdout
		return out == "GET /formatted?x=1 200 default/httproute/default/api/rule/1/match/0\n"
	})
}

// TestTopInATerminal runs `apoxy top` full-screen in a real terminal (tmux) and reads the
// screen: the header, and the route's row with a request rate while traffic flows.
func TestTopInATerminal(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("APOXY_REQUIRE_TMUX") != "" {
			t.Fatal("tmux is required (APOXY_REQUIRE_TMUX)")
		}
		t.Skip("tmux not installed")
	}
	d := startDev(t, "")
	observeRoutes(t, d)
	session := fmt.Sprintf("apoxy-top-%d", os.Getpid())
	sock := "-L" + session
	cmdline := fmt.Sprintf("HOME=%s %s --config %s top --interval 500ms", d.dataDir, apoxyBin, d.config())
	if out, err := exec.Command("tmux", sock, "new-session", "-d", "-s", session, "-x", "160", "-y", "40", cmdline).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	defer exec.Command("tmux", sock, "kill-server").Run()
	var stop atomic.Bool
	defer stop.Store(true)
	go func() {
		for !stop.Load() {
			request(t, d, "/users")
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var screen string
	waitFor(t, func() bool {
		out, _ := exec.Command("tmux", sock, "capture-pane", "-p", "-t", session).Output()
		screen = string(out)
		m := regexp.MustCompile(`(?m)^\s*([0-9.]+)\s+[0-9.]+\s+\S+\s+\S+\s+(\S+)\s+\d+\s+httproute/default/api/rule/1`).FindStringSubmatch(screen)
		return strings.Contains(screen, "apoxy top") && strings.Contains(screen, "project default") && m != nil && m[1] != "0.0" && m[2] != "-"
	})
	t.Logf("screen:\n%s", screen)
	exec.Command("tmux", sock, "send-keys", "-t", session, "q").Run()
	waitFor(t, func() bool {
		return exec.Command("tmux", sock, "has-session", "-t", session).Run() != nil
	})
}
