package ratelimit

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// startRedis runs a real redis-server on a free loopback port for the test.
func startRedis(t *testing.T) (addr string, stop func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("APOXY_REQUIRE_REDIS") != "" {
			t.Fatal("redis-server is not installed (apt-get install -y redis-server)")
		}
		t.Skip("redis-server is not installed (apt-get install -y redis-server); .ci/run installs it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	t.Cleanup(stop)
	return addr, stop
}

// Two stores on one Redis (two gateway processes) count together, keys expire with their
// window, and a Redis outage is an error (the failure mode decides) until it comes back.
func TestRedisSharedCounts(t *testing.T) {
	addr, stop := startRedis(t)
	a, b := NewRedis(RedisOptions{Address: addr}), NewRedis(RedisOptions{Address: addr})
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	keys := []string{"proj/default/p/per-ip/k1/100", "proj/default/p/other/k1/100"}
	ttls := []time.Duration{time.Second, time.Minute}
	for i := 1; i <= 3; i++ {
		s := a
		if i%2 == 0 {
			s = b
		}
		n, err := s.Hit(ctx, keys, ttls)
		if err != nil || n[0] != uint32(i) || n[1] != uint32(i) {
			t.Fatalf("hit %d: %v %v", i, n, err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // the first key's window (1 s) ends
	n, err := b.Hit(ctx, keys, ttls)
	if err != nil || n[0] != 1 || n[1] != 4 {
		t.Fatalf("after expiry: %v %v", n, err)
	}
	if a.Healthy() != nil {
		t.Errorf("healthy store reports %v", a.Healthy())
	}
	stop()
	if _, err := a.Hit(ctx, keys, ttls); err == nil {
		t.Fatal("a stopped Redis counted")
	}
	if a.Healthy() == nil {
		t.Error("Healthy does not report the outage")
	}
	start := time.Now()
	if _, err := a.Hit(ctx, keys, ttls); err != ErrStoreBackoff || time.Since(start) > 10*time.Millisecond {
		t.Errorf("during the backoff: %v after %v", err, time.Since(start))
	}
}
