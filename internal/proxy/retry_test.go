package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

func TestRetryPolicyDecisions(t *testing.T) {
	p := newRetryPolicy(&ir.Retry{Attempts: 2, Codes: []int{429}, Conditions: []string{"ConnectFailure", "GatewayError"}})
	for _, tc := range []struct {
		method string
		code   int
		want   bool
	}{
		{"GET", 503, true}, {"GET", 502, true}, {"GET", 500, false}, {"GET", 429, true}, {"GET", 404, false},
		{"POST", 503, false}, // not idempotent, and it reached the backend
	} {
		if got := p.retryStatus(tc.method, tc.code); got != tc.want {
			t.Errorf("%s %d: retry %v, want %v", tc.method, tc.code, got, tc.want)
		}
	}
	dial := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	if f := classify(dial, false); f != failConnect || !p.retryError("POST", f) {
		t.Errorf("a POST that never reached the backend is retried: class %v", f)
	}
	if f := classify(errors.New("connection reset by peer"), false); f != failReset || p.retryError("GET", f) {
		t.Errorf("Reset is not among the conditions: class %v", f)
	}
	if f := classify(errors.New("x"), true); f != failTimeout || !p.retryError("GET", f) {
		t.Errorf("GatewayError covers per-try timeouts: class %v", f)
	}
	// The platform default: connection failures, one retry.
	if defaultRetry.attempts != 1 || !defaultRetry.retryError("GET", failReset) || defaultRetry.retryStatus("GET", 503) {
		t.Error("default policy changed")
	}
	// Full jitter stays under the cap.
	b := newRetryPolicy(&ir.Retry{Attempts: 5, Backoff: ir.Duration(25 * time.Millisecond)})
	for i := range 10 {
		if d := b.backoff(i); d < 0 || d > 250*time.Millisecond {
			t.Fatalf("backoff(%d) = %v", i, d)
		}
	}
}

func TestRetryBudget(t *testing.T) {
	b := &retryBudget{percent: 20, interval: 10 * time.Second, minRetries: 2, minInterval: time.Second}
	now := time.Now()
	for range 10 {
		b.request(now)
	}
	allowed := 0
	for range 10 {
		if b.allow(now) {
			allowed++
		}
	}
	// 2 from the minimum rate, then 20 % of 10 requests = 2 in all (the minimum ones count).
	if allowed != 2 {
		t.Errorf("allowed %d retries for 10 requests", allowed)
	}
	if !b.allow(now.Add(1100 * time.Millisecond)) {
		t.Error("the minimum rate refills every interval")
	}
}

// A backend failing the first tries with 503 is retried with the body replayed; a POST is
// not retried on a status, and the retries' exhaustion is flagged URX.
func TestRetriesReplayBodies(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.HasSuffix(r.URL.Path, "/always") || n.Add(1)%3 != 0 {
			w.WriteHeader(503)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	var logs logBuffer
	s := New(Options{AccessLog: &logs, DrainTimeout: time.Second})
	t.Cleanup(s.Close)
	rt := testRoute("r", "/", ir.WeightedBackend{Backend: "b", Port: int32(atoiT(t, port)), Weight: 1})
	rt.Retry = &ir.Retry{Attempts: 2, Codes: []int{503}, Conditions: []string{"ConnectFailure"}, Methods: []string{"GET", "PUT"}}
	snap := &ir.Snapshot{
		Listeners: []*ir.Listener{{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolHTTP,
			VirtualHosts: []*ir.VirtualHost{{Hostname: "*", Routes: []*ir.Route{rt}}}}},
		Backends: []*ir.Backend{{Name: "b", Protocol: "plain", Endpoints: []ir.Endpoint{{IP: "127.0.0.1"}}}},
	}
	if err := s.Apply("p", snap); err != nil {
		t.Fatal(err)
	}
	waitResolved(t, s, "b")
	base := "http://" + s.Addrs()["127.0.0.1:0"]
	req, _ := http.NewRequest("PUT", base+"/x", strings.NewReader("payload"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "payload" {
		t.Errorf("PUT after two 503s: %d %q", resp.StatusCode, body)
	}
	before := n.Load()
	resp, err = http.Post(base+"/y", "text/plain", strings.NewReader("p"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := n.Load() - before; got != 1 {
		t.Errorf("a POST answered 503 was tried %d times, want 1", got)
	}
	resp, err = http.Get(base + "/always")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s.accessLog.Flush()
	if resp.StatusCode != 503 || !strings.Contains(logs.b.String(), `"response_flags":"URX"`) {
		t.Errorf("exhausted retries: %d, log %s", resp.StatusCode, logs.b.String())
	}
}

func atoiT(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
