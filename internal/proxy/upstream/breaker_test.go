package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

func breakerCluster(t *testing.T, cb *ir.CircuitBreaker, endpoints ...string) *Cluster {
	t.Helper()
	b := &ir.Backend{Name: "p/ns/cb", Protocol: "plain", CircuitBreaker: cb}
	for _, ip := range endpoints {
		b.Endpoints = append(b.Endpoints, ir.Endpoint{IP: ip})
	}
	if len(endpoints) == 0 {
		b.Endpoints = staticEndpoints(2)
	}
	return testCluster(t, Options{}, b)
}

// admitConcurrently has n goroutines Admit at once and hold what they got until all have
// tried; it returns how many were admitted, then releases them.
func admitConcurrently(c *Cluster, n int, retry bool) int {
	var wg, tried sync.WaitGroup
	var admitted atomic.Int32
	hold := make(chan struct{})
	tried.Add(n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			adm, ok := c.Admit(retry)
			tried.Done()
			if !ok {
				return
			}
			admitted.Add(1)
			<-hold
			adm.Release()
		}()
	}
	tried.Wait()
	close(hold)
	wg.Wait()
	return int(admitted.Load())
}

// TestAdmitParallelRequests (design §5.48): beyond maxParallelRequests concurrent attempts are
// refused at once; released ones make room again.
func TestAdmitParallelRequests(t *testing.T) {
	c := breakerCluster(t, &ir.CircuitBreaker{MaxParallelRequests: 10})
	if got := admitConcurrently(c, 100, false); got != 10 {
		t.Fatalf("%d of 100 concurrent attempts admitted, want 10", got)
	}
	st := c.BreakerStats()
	if st.Requests != 0 || st.RequestOverflows != 90 {
		t.Fatalf("after release: %+v, want 0 in flight and 90 overflows", st)
	}
	if got := admitConcurrently(c, 10, false); got != 10 {
		t.Fatalf("after release %d of 10 admitted, want all", got)
	}
	// maxParallelRequests 1 with two slow requests: the second is refused at once.
	c = breakerCluster(t, &ir.CircuitBreaker{MaxParallelRequests: 1})
	first, ok := c.Admit(false)
	if !ok {
		t.Fatal("the first attempt was refused")
	}
	if _, ok := c.Admit(false); ok {
		t.Fatal("a second parallel attempt was admitted")
	}
	first.Release()
	if adm, ok := c.Admit(false); !ok {
		t.Fatal("refused after the first was released")
	} else {
		adm.Release()
	}
}

// TestAdmitParallelRetries: retries are capped on their own and count as requests too.
func TestAdmitParallelRetries(t *testing.T) {
	c := breakerCluster(t, &ir.CircuitBreaker{MaxParallelRetries: 2, MaxParallelRequests: 100})
	if got := admitConcurrently(c, 20, true); got != 2 {
		t.Fatalf("%d of 20 concurrent retries admitted, want 2", got)
	}
	r1, _ := c.Admit(true)
	r2, _ := c.Admit(true)
	if _, ok := c.Admit(true); ok {
		t.Fatal("a third parallel retry was admitted")
	}
	if adm, ok := c.Admit(false); !ok {
		t.Fatal("a first attempt was refused though only retries are at their limit")
	} else {
		adm.Release()
	}
	if st := c.BreakerStats(); st.Requests != 2 || st.Retries != 2 || st.RetryOverflows != 19 {
		t.Fatalf("stats %+v, want 2 requests, 2 retries, 19 retry overflows", st)
	}
	r1.Release()
	r2.Release()
	if st := c.BreakerStats(); st.Requests != 0 || st.Retries != 0 {
		t.Fatalf("stats after release %+v", st)
	}
}

// TestAdmitUnlimited (design §5.49): without a breaker, or with one whose limits are unset,
// 5,000 concurrent attempts are all admitted (no hidden default), without allocating.
func TestAdmitUnlimited(t *testing.T) {
	for _, cb := range []*ir.CircuitBreaker{nil, {}} {
		c := breakerCluster(t, cb)
		if got := admitConcurrently(c, 5000, false); got != 5000 {
			t.Errorf("breaker %+v: %d of 5000 admitted", cb, got)
		}
		if n := testing.AllocsPerRun(1000, func() {
			adm, _ := c.Admit(true)
			adm.Release()
		}); n != 0 {
			t.Errorf("breaker %+v: %.1f allocations per Admit/Release", cb, n)
		}
	}
}

// countingServer is an HTTP server that counts its connections and the requests that asked
// for the connection to close; /slow waits for release.
type countingServer struct {
	*httptest.Server
	conns, closeAsked atomic.Int32
	release           chan struct{}
	entered           chan struct{}
}

func newCountingServer(t *testing.T) *countingServer {
	s := &countingServer{release: make(chan struct{}), entered: make(chan struct{}, 16)}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Close {
			s.closeAsked.Add(1)
		}
		if r.URL.Path == "/slow" {
			s.entered <- struct{}{}
			<-s.release
		}
		io.WriteString(w, "ok")
	}))
	startCounting(t, s.Server, &s.conns)
	return s
}

func (s *countingServer) ip() string {
	return netip.MustParseAddrPort(s.Listener.Addr().String()).Addr().String()
}

func roundTrip(ctx context.Context, rt http.RoundTripper, url string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestMaxRequestsPerConnection: the HTTP/1.1 client closes a connection after N requests,
// telling the upstream on the last one.
func TestMaxRequestsPerConnection(t *testing.T) {
	srv := newCountingServer(t)
	c := breakerCluster(t, &ir.CircuitBreaker{MaxRequestsPerConnection: 2}, srv.ip())
	for i := range 5 {
		if body, err := roundTrip(context.Background(), c.Client(), srv.URL+"/"); err != nil || body != "ok" {
			t.Fatalf("request %d: %q %v", i, body, err)
		}
	}
	if n := srv.conns.Load(); n != 3 {
		t.Errorf("%d connections for 5 sequential requests at 2 per connection, want 3", n)
	}
	if n := srv.closeAsked.Load(); n != 2 {
		t.Errorf("%d requests said Connection: close, want 2 (the second on each full connection)", n)
	}
	waitUntil(t, time.Second, func() bool { return c.BreakerStats().Connections == 1 })
}

// TestMaxConnectionsAndPending: at maxConnections a request waits for a connection (pending);
// beyond maxPendingRequests it is refused at once with ErrOverloaded; a pending request takes
// the connection when it is returned, and gives up at its deadline. The transport (upgrades)
// is refused a connection over the limit; health probes are not counted.
func TestMaxConnectionsAndPending(t *testing.T) {
	srv := newCountingServer(t)
	c := breakerCluster(t, &ir.CircuitBreaker{MaxConnections: 1, MaxPendingRequests: 1}, srv.ip())
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { _, err := roundTrip(ctx, c.Client(), srv.URL+"/slow"); first <- err }()
	<-srv.entered // the only connection is busy
	second := make(chan error, 1)
	go func() { _, err := roundTrip(ctx, c.Client(), srv.URL+"/"); second <- err }()
	waitUntil(t, 2*time.Second, func() bool { return c.BreakerStats().Pending == 1 })
	start := time.Now()
	if _, err := roundTrip(ctx, c.Client(), srv.URL+"/"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("a request beyond maxPendingRequests: %v, want ErrOverloaded", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("the refusal took %v, want at once", d)
	}
	if _, err := roundTrip(ctx, c.Transport(), srv.URL+"/"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("a transport connection beyond maxConnections: %v, want ErrOverloaded", err)
	}
	srv.release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatalf("the pending request: %v", err)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections opened, want 1 (the pending request reused the first's)", n)
	}
	st := c.BreakerStats()
	if st.Connections != 1 || st.Pending != 0 || st.PendingOverflows != 1 || st.ConnectionOverflows != 1 {
		t.Errorf("stats %+v", st)
	}

	// A pending request gives up at its deadline.
	go func() { _, err := roundTrip(ctx, c.Client(), srv.URL+"/slow"); first <- err }()
	<-srv.entered
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := roundTrip(dctx, c.Client(), srv.URL+"/"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a pending request past its deadline: %v, want DeadlineExceeded", err)
	}
	srv.release <- struct{}{}
	<-first

	// Health probes do not go through the limited transport.
	if c.probeTransport == c.transport {
		t.Error("health probes share the limited transport")
	}
}

// TestMaxConnectionsAcrossEndpoints: at the connection limit, a request for another endpoint
// closes an idle connection to make room instead of waiting.
func TestMaxConnectionsAcrossEndpoints(t *testing.T) {
	a, b := newCountingServer(t), newCountingServer(t)
	c := breakerCluster(t, &ir.CircuitBreaker{MaxConnections: 1, MaxPendingRequests: 1}, a.ip())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range []*countingServer{a, b, a} {
		if _, err := roundTrip(ctx, c.Client(), srv.URL+"/"); err != nil {
			t.Fatal(err)
		}
		if n := c.BreakerStats().Connections; n != 1 {
			t.Fatalf("%d connections open, want 1", n)
		}
	}
	if a.conns.Load() != 2 || b.conns.Load() != 1 {
		t.Errorf("connections a %d b %d, want 2 and 1", a.conns.Load(), b.conns.Load())
	}
}
