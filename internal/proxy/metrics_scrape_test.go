package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"apoxy.dev/apoxy/internal/ir"
)

// TestScrapedBreakerState: while a backend with maxParallelRequests 1 holds a request, the
// scrape shows it in flight and its breaker open for requests (0 remaining); once it ends,
// closed again.
func TestScrapedBreakerState(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		fmt.Fprint(w, "ok")
	}))
	defer backend.Close()
	host, port, _ := net.SplitHostPort(backend.Listener.Addr().String())
	var p int
	fmt.Sscan(port, &p)
	s := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DrainTimeout: time.Second})
	t.Cleanup(s.Close)
	snap := &ir.Snapshot{
		Listeners: []*ir.Listener{{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolHTTP, VirtualHosts: []*ir.VirtualHost{{Hostname: "*",
			Routes: []*ir.Route{testRoute("r", "/", ir.WeightedBackend{Backend: "scrape/b", Port: int32(p), Weight: 1})}}}}},
		Backends: []*ir.Backend{{Name: "scrape/b", Protocol: "plain", Endpoints: []ir.Endpoint{{IP: host}}, CircuitBreaker: &ir.CircuitBreaker{MaxParallelRequests: 1}}},
	}
	if err := s.Apply("p", snap); err != nil {
		t.Fatal(err)
	}
	waitResolved(t, s, "scrape/b")
	gauge := func(name string, labels ...string) float64 {
		fams, err := MetricsGatherer().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() != name {
				continue
			}
		next:
			for _, m := range f.Metric {
				got := map[string]string{}
				for _, l := range m.Label {
					got[l.GetName()] = l.GetValue()
				}
				for i := 0; i+1 < len(labels); i += 2 {
					if got[labels[i]] != labels[i+1] {
						continue next
					}
				}
				return gaugeValue(m)
			}
		}
		return -1
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get("http://" + s.Addrs()["127.0.0.1:0"] + "/")
		if err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, func() bool { return gauge("apoxy_upstream_active_requests", "backend", "scrape/b") == 1 })
	if o, r := gauge("apoxy_upstream_circuit_breaker_open", "backend", "scrape/b", "resource", "requests"), gauge("apoxy_upstream_circuit_breaker_remaining", "backend", "scrape/b", "resource", "requests"); o != 1 || r != 0 {
		t.Errorf("with one request held: open %v remaining %v, want 1 and 0", o, r)
	}
	if c := gauge("apoxy_downstream_active_connections"); c < 1 {
		t.Errorf("active connections %v", c)
	}
	close(release)
	<-done
	waitFor(t, func() bool {
		return gauge("apoxy_upstream_circuit_breaker_open", "backend", "scrape/b", "resource", "requests") == 0 &&
			gauge("apoxy_upstream_circuit_breaker_remaining", "backend", "scrape/b", "resource", "requests") == 1
	})
}

func gaugeValue(m *dto.Metric) float64 {
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return -1
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
