package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// floodRSSBound is the most `apoxy dev` may hold while 3000 idle connections and 300 heads
// just under the 60 KiB limit sit on it (an idle server is ~130 MiB; before the fix, 300 idle
// connections that had sent 1 MiB heads took 1.4 GB).
const floodRSSBound = 256 << 20

// TestConnectionFloodKeepsAPIAlive runs `apoxy dev` under a 1024 open-file limit, as the probe
// did, and floods its HTTP port: 300 keep-alive connections that each sent a 59 KiB head and
// then idle, 300 heads over the limit, and 3000 connections that send nothing. The API and
// /readyz answer throughout (the data plane's connection budget leaves them descriptors; before,
// 1100 idle connections made both unreachable), RSS stays under floodRSSBound (idle connections
// give their head buffers back), the refused heads get 431, and the gateway serves once the
// flood ends (findings F8, F9).
func TestConnectionFloodKeepsAPIAlive(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	d := startDevLimited(t, "", 1024)
	api := d.dynamic(t)
	probe := func(when string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := api.List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("%s: API: %v", when, err)
		}
		c := http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + d.adminAddr + "/readyz")
		if err != nil {
			t.Fatalf("%s: /readyz: %v", when, err)
		}
		resp.Body.Close()
	}
	probe("before the flood")

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	big := "GET / HTTP/1.1\r\nHost: flood.test\r\nX-Pad: " + strings.Repeat("p", 59<<10) + "\r\n\r\n"
	kept := 0
	for range 300 {
		c, err := net.Dial("tcp", d.httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, big); err != nil {
			continue
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			continue // refused: over the connection budget
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			kept++
		}
		c.SetDeadline(time.Time{})
	}
	if kept < 200 {
		t.Fatalf("only %d of 300 heads under the limit were answered", kept)
	}
	tooBig := "GET / HTTP/1.1\r\nHost: flood.test\r\nX-Pad: " + strings.Repeat("p", 1<<20) + "\r\n\r\n"
	refused := 0
	for i := range 300 {
		c, err := net.Dial("tcp", d.httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go io.WriteString(c, tooBig)
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil && resp.StatusCode == http.StatusRequestHeaderFieldsTooLarge {
			refused++
		}
		c.Close()
		if i == 150 {
			probe("during oversized heads")
		}
	}
	if refused < 250 {
		t.Fatalf("only %d of 300 oversized heads were answered 431", refused)
	}
	for i := range 3000 {
		c, err := net.Dial("tcp", d.httpAddr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if i%1000 == 999 {
			probe(fmt.Sprintf("with %d idle connections", i+1))
		}
	}
	time.Sleep(2 * time.Second)
	probe("after the flood arrived")
	rss := vmRSS(t, d.cmd.Process.Pid)
	t.Logf("RSS with the flood on: %d MiB (bound %d MiB)", rss>>20, floodRSSBound>>20)
	if rss > floodRSSBound {
		t.Fatalf("RSS %d MiB over the bound %d MiB", rss>>20, floodRSSBound>>20)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + d.httpAddr + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not serving after the flood: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	probe("after the flood")
}

// vmRSS reads a process's resident set size (the child under prlimit is the server itself:
// prlimit execs it).
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
