package proxy

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"apoxy.dev/apoxy/internal/ir"
)

// TestFlakyBackendBehindRetriesAndOutlierDetection is issue 13's fault drill: one endpoint
// answers 503 to 30 % of requests, one refuses connections, one is fine. Behind retries on
// gateway errors and outlier detection, at least 99.9 % of 10k requests succeed, and the
// ejections show in the metrics.
func TestFlakyBackendBehindRetriesAndOutlierDetection(t *testing.T) {
	if testing.Short() {
		t.Skip("10k requests")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	flaky := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rand.IntN(100) < 30 {
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, "ok")
	})
	go http.Serve(ln, ok)
	ln2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
	if err != nil {
		t.Skipf("127.0.0.2:%d: %v", port, err)
	}
	go http.Serve(ln2, flaky)
	defer ln.Close()
	defer ln2.Close()
	// 127.0.0.3 has nothing listening: connections are refused.

	s := New(Options{DrainTimeout: time.Second})
	t.Cleanup(s.Close)
	rt := testRoute("flaky", "/", ir.WeightedBackend{Backend: "ns/flaky", Port: int32(port), Weight: 1})
	rt.Retry = &ir.Retry{Attempts: 3, Codes: []int{503}, Conditions: []string{"ConnectFailure", "GatewayError"}, Backoff: ir.Duration(time.Millisecond)}
	snap := &ir.Snapshot{
		Listeners: []*ir.Listener{{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolHTTP,
			VirtualHosts: []*ir.VirtualHost{{Hostname: "*", Routes: []*ir.Route{rt}}}}},
		Backends: []*ir.Backend{{Name: "ns/flaky", Protocol: "plain",
			Endpoints:    []ir.Endpoint{{IP: "127.0.0.1"}, {IP: "127.0.0.2"}, {IP: "127.0.0.3"}},
			LoadBalancer: &ir.LoadBalancer{Type: "RoundRobin"},
			Outlier: &ir.OutlierDetection{Consecutive5xx: 3, Interval: ir.Duration(time.Second), BaseEjectionTime: ir.Duration(30 * time.Second),
				MaxEjectionTime: ir.Duration(time.Minute), MaxEjectionPercent: 67}}},
	}
	if err := s.Apply("p", snap); err != nil {
		t.Fatal(err)
	}
	waitResolved(t, s, "ns/flaky")
	base := "http://" + s.Addrs()["127.0.0.1:0"] + "/"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
	const total = 10000
	var good atomic.Int64
	var wg sync.WaitGroup
	work := make(chan struct{}, total)
	for range total {
		work <- struct{}{}
	}
	close(work)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				resp, err := client.Get(base)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					good.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	rate := float64(good.Load()) / total
	t.Logf("%d/%d succeeded (%.4f); ejections %v", good.Load(), total, rate, testutil.ToFloat64(s.metrics.ejections.WithLabelValues("ns/flaky")))
	if rate < 0.999 {
		t.Errorf("success rate %.4f, want >= 0.999", rate)
	}
	if testutil.ToFloat64(s.metrics.ejections.WithLabelValues("ns/flaky")) < 1 {
		t.Error("no ejection counted")
	}
}
