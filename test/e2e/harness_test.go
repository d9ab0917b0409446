// Package e2e runs the real apoxy binary (`apoxy dev`) as a separate process and drives it the
// way users do: with the apoxy CLI and with the real kubectl binary.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var apoxyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "apoxy-e2e-bin")
	if err != nil {
		panic(err)
	}
	apoxyBin = filepath.Join(dir, "apoxy")
	build := exec.Command("go", "build", "-o", apoxyBin, "apoxy.dev/apoxy/cmd/apoxy")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build apoxy:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// devServer is one `apoxy dev` process.
type devServer struct {
	t         testing.TB
	dataDir   string
	apiAddr   string
	adminAddr string
	httpAddr  string
	httpsAddr string
	cmd       *exec.Cmd
	log       *syncBuffer
	// nofile, when set, runs the server under that open-file limit (prlimit).
	nofile int
	// tunnelAddr is the tunnel endpoint's address (default 127.0.0.1:0).
	tunnelAddr string
	exited     chan error
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDev starts `apoxy dev` on free ports with dataDir (fresh if empty) and waits for /readyz.
func startDev(t testing.TB, dataDir string) *devServer {
	t.Helper()
	return startDevLimited(t, dataDir, 0)
}

// startDevLimited is startDev under an open-file limit (0: none).
func startDevLimited(t testing.TB, dataDir string, nofile int) *devServer {
	t.Helper()
	d := newDevServer(t, dataDir)
	d.nofile = nofile
	d.start()
	t.Cleanup(d.stop)
	return d
}

// newDevServer is a devServer on free ports, not started.
func newDevServer(t testing.TB, dataDir string) *devServer {
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	return &devServer{t: t, dataDir: dataDir, apiAddr: freePort(t), adminAddr: freePort(t), log: &syncBuffer{}, exited: make(chan error, 1)}
}

func (d *devServer) start() {
	d.t.Helper()
	if d.httpAddr == "" {
		d.httpAddr = freePort(d.t)
	}
	_, httpPort, _ := net.SplitHostPort(d.httpAddr)
	if d.httpsAddr == "" {
		d.httpsAddr = freePort(d.t)
	}
	_, httpsPort, _ := net.SplitHostPort(d.httpsAddr)
	if d.tunnelAddr == "" {
		d.tunnelAddr = "127.0.0.1:0"
	}
	args := []string{"dev", "--data-dir", d.dataDir, "--api-addr", d.apiAddr, "--admin-addr", d.adminAddr,
		"--http-port", httpPort, "--https-port", httpsPort, "--dns-addr", "127.0.0.1:0", "--tunnel-addr", d.tunnelAddr}
	d.cmd = exec.Command(apoxyBin, args...)
	if d.nofile > 0 {
		lim := fmt.Sprintf("--nofile=%d:%d", d.nofile, d.nofile)
		d.cmd = exec.Command("prlimit", append([]string{lim, apoxyBin}, args...)...)
	}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.Env = append(os.Environ(), "HOME="+d.dataDir)
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(d.cmd, d.exited)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + d.adminAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-d.exited:
			d.t.Fatalf("apoxy dev exited: %v\n%s", err, d.log)
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("apoxy dev not ready after 60s\n%s", d.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (d *devServer) stop() {
	if d.cmd == nil || d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		d.t.Errorf("apoxy dev did not stop within 20s of SIGTERM\n%s", d.log)
	}
}

// kill9 kills the process without any chance to clean up.
func (d *devServer) kill9() {
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
}

func (d *devServer) kubeconfig() string { return filepath.Join(d.dataDir, "kubeconfig") }
func (d *devServer) config() string     { return filepath.Join(d.dataDir, "config.yaml") }

// result is a finished command.
type result struct {
	stdout, stderr string
	err            error
}

func (r result) String() string {
	return fmt.Sprintf("err=%v\nstdout:\n%s\nstderr:\n%s", r.err, r.stdout, r.stderr)
}

func run(t testing.TB, stdin string, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	err := cmd.Run()
	return result{stdout: out.String(), stderr: errb.String(), err: err}
}

// kubectl runs the real kubectl against the server's kubeconfig.
func (d *devServer) kubectl(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	return run(t, stdin, []string{"HOME=" + d.dataDir}, "kubectl", append([]string{"--kubeconfig", d.kubeconfig()}, args...)...)
}

// apoxy runs the apoxy CLI with the server's CLI config.
func (d *devServer) apoxy(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	return run(t, stdin, []string{"HOME=" + d.dataDir}, apoxyBin, append([]string{"--config", d.config()}, args...)...)
}

// must fails the test unless the command succeeded.
func must(t testing.TB, r result) result {
	t.Helper()
	if r.err != nil {
		t.Fatalf("command failed: %s", r)
	}
	return r
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe to read while the process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
