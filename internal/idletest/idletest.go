// Package idletest measures what idle keep-alive clients cost a server running in the test's
// own process: it holds n connections open from a separate process (bench/idleconns, built
// once), each after one request, and reports how much the Go heap and stacks grew per
// connection. The HTTP/1.1 and HTTP/2 servers test their idle-memory budget with it.
package idletest

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// client builds bench/idleconns (once per test binary).
func client(t testing.TB) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "idleconns")
		if err != nil {
			buildErr = err
			return
		}
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		binary = filepath.Join(dir, "idleconns")
		cmd := exec.Command("go", "build", "-o", binary, "./bench/idleconns")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = err
			binary = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building bench/idleconns: %v\n%s", buildErr, binary)
	}
	return binary
}

// inUse is the memory the process's live objects and goroutine stacks hold, after a
// collection. (HeapAlloc, not HeapInuse: the spans that pools and freed stacks leave behind
// are the allocator's, and vary by ±0.5 MiB from run to run.)
func inUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}

// PerConn holds n idle clients against addr (HTTP/2 prior knowledge with h2) and returns the
// bytes of live Go heap and stack the server's process grew by per connection. settled, if not nil,
// is polled until it is true (the server has put every connection to rest) before the
// measurement, for up to 10 s.
func PerConn(t testing.TB, addr string, n int, h2 bool, settled func() bool) float64 {
	return perConn(t, addr, n, settled, "-h2="+strconv.FormatBool(h2))
}

// PerConnTLS is PerConn over TLS (ALPN h2 with h2, else http/1.1).
func PerConnTLS(t testing.TB, addr string, n int, h2 bool, settled func() bool) float64 {
	return perConn(t, addr, n, settled, "-h2="+strconv.FormatBool(h2), "-tls")
}

func perConn(t testing.TB, addr string, n int, settled func() bool, args ...string) float64 {
	bin := client(t)
	before := inUse()
	cmd := exec.Command(bin, append([]string{"-addr", addr, "-n", strconv.Itoa(n)}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		t.Fatalf("idleconns: %q, %v", line, err)
	}
	if settled != nil {
		// Under a loaded machine (CI runs packages in parallel, with -race) resting 2000
		// connections can take seconds; measuring before they all rest counts awake ones.
		deadline := time.Now().Add(30 * time.Second)
		for !settled() {
			if time.Now().After(deadline) {
				t.Fatalf("the %d idle connections did not all rest within 30 s", n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	after := inUse()
	return (float64(after) - float64(before)) / float64(n)
}

// Handler answers "ok" after growing its goroutine's stack the way a proxied request does (the
// chain of filters, the upstream client), so that a goroutine kept per idle connection would
// show in PerConn's measurement.
func Handler(w http.ResponseWriter, r *http.Request) {
	grow(64) // ~32 KiB of stack
	w.Header().Set("Content-Length", "2")
	io.WriteString(w, "ok")
}

//go:noinline
func grow(n int) int {
	var pad [512]byte
	pad[n%512] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return grow(n-1) + int(pad[n%512])
}
