package proxy

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// BenchmarkServeHTTP is the handler chain for one request with no filters: route match,
// access log (to io.Discard), metrics and either a direct response or a forward over the
// cluster's HTTP/1.1 client to a loopback backend. ns/op and allocs/op are the gateway's
// own cost per request on top of the socket I/O.
func BenchmarkServeHTTP(b *testing.B) {
	var conns atomic.Int64
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(make([]byte, 128))
	}))
	backend.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	backend.Start()
	defer backend.Close()
	s := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AccessLog: io.Discard})
	defer s.Close()
	ip, p := "127.0.0.1", int32(backend.Listener.Addr().(*net.TCPAddr).Port)
	snap := &ir.Snapshot{
		Listeners: []*ir.Listener{{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolHTTP, VirtualHosts: []*ir.VirtualHost{{
			Hostname: "*", Routes: []*ir.Route{
				{Name: "direct", Match: ir.Match{PathType: ir.PathPrefix, Path: "/direct"}, DirectResponse: &ir.DirectResponse{StatusCode: 200, Body: "ok"}},
				// The filter chain's cost: header modifiers both ways and CORS, as in make bench.
				{Name: "filters", Match: ir.Match{PathType: ir.PathPrefix, Path: "/filters"}, Backends: []ir.WeightedBackend{{Backend: "b", Port: p, Weight: 1}},
					Filters: []ir.Filter{
						{Type: ir.FilterRequestHeaders, RequestHeaders: &ir.HeaderModifier{Set: []ir.HeaderPair{{Name: "X-Bench", Value: "1"}}, Remove: []string{"X-Drop"}}},
						{Type: ir.FilterResponseHeaders, ResponseHeaders: &ir.HeaderModifier{Set: []ir.HeaderPair{{Name: "X-Served-By", Value: "apoxy"}}}},
						{Type: ir.FilterCORS, CORS: &ir.CORS{AllowOrigins: []string{"https://app.example.com"}, AllowMethods: []string{"GET"}}},
					}},
				// Tracing at 1 % (most requests unsampled: the cost every request pays) and at 100 %.
				{Name: "trace1", Telemetry: "t1", Match: ir.Match{PathType: ir.PathPrefix, Path: "/trace1"}, Backends: []ir.WeightedBackend{{Backend: "b", Port: p, Weight: 1}}},
				{Name: "trace100", Telemetry: "t100", Match: ir.Match{PathType: ir.PathPrefix, Path: "/trace100"}, Backends: []ir.WeightedBackend{{Backend: "b", Port: p, Weight: 1}}},
				{Name: "upstream", Match: ir.Match{PathType: ir.PathPrefix, Path: "/"}, Backends: []ir.WeightedBackend{{Backend: "b", Port: p, Weight: 1}}},
			},
		}}}},
		Backends: []*ir.Backend{{Name: "b", Protocol: "plain", Endpoints: []ir.Endpoint{{IP: ip}}}},
		Telemetry: map[string]*ir.Telemetry{
			"t1":   {Project: "p", Gateway: "g", AccessLog: ir.AccessLog{SamplingRate: 100}, Tracing: &ir.Tracing{SamplingRate: 1, ParentBased: true, Propagation: []string{"tracecontext", "b3"}, ServiceName: "apoxy"}},
			"t100": {Project: "p", Gateway: "g", AccessLog: ir.AccessLog{SamplingRate: 100}, Tracing: &ir.Tracing{SamplingRate: 100, ParentBased: true, Propagation: []string{"tracecontext", "b3"}, ServiceName: "apoxy"}},
		},
	}
	if err := s.Apply("p", snap); err != nil {
		b.Fatal(err)
	}
	s.mu.Lock()
	sk := s.sockets["127.0.0.1:0"].(*httpSocket)
	s.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for _, path := range []string{"/direct", "/up", "/filters", "/trace1", "/trace100"} {
		b.Run(map[string]string{"/direct": "direct-response", "/up": "upstream", "/filters": "upstream-filters", "/trace1": "upstream-trace1", "/trace100": "upstream-trace100"}[path], func(b *testing.B) {
			req := httptest.NewRequest("GET", "http://api.example.com"+path, nil)
			req.RemoteAddr = "127.0.0.1:5000"
			for {
				w := httptest.NewRecorder()
				sk.ServeHTTP(w, req)
				if w.Code == 200 || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			// One request value serves every iteration, as the HTTP/1.1 server reuses one per
			// connection.
			r := new(http.Request)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w := httptest.NewRecorder()
				// The gateway edits the inbound header map in place, as it owns each request.
				*r = *req
				r.Header = http.Header{"User-Agent": {"bench"}, "Accept": {"*/*"}}
				sk.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(conns.Load())/float64(b.N), "dials/op")
		})
	}
}
