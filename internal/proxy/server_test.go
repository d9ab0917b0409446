package proxy

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

func testServer(t *testing.T) *Server {
	t.Helper()
	s := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DrainTimeout: time.Second})
	t.Cleanup(s.Close)
	return s
}

// echoBackend answers with the request's method, host, path and selected headers.
func echoBackend(t *testing.T, name string) (*httptest.Server, string, int32) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Backend", name)
		fmt.Fprintf(w, "%s %s %s %s xff=%s proto=%s fwdhost=%s reqid=%v xset=%s %s",
			name, r.Method, r.Host, r.URL.RequestURI(), r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"),
			r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Request-Id") != "", r.Header.Get("X-Set"), strings.Repeat("x", 200))
	}))
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	var p int
	fmt.Sscan(port, &p)
	return srv, host, int32(p)
}

func testRoute(name, path string, backends ...ir.WeightedBackend) *ir.Route {
	return &ir.Route{Name: name, Match: ir.Match{PathType: ir.PathPrefix, Path: path}, Backends: backends,
		Timeouts: ir.Timeouts{Request: ir.Duration(10 * time.Second)},
		Filters:  []ir.Filter{{Type: ir.FilterCompression, Compression: &ir.Compression{Algorithms: []string{"gzip"}, MinContentLength: 128}}}}
}

func get(t *testing.T, url, host string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var body []byte
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(zr)
	} else {
		body, _ = io.ReadAll(resp.Body)
	}
	return resp.StatusCode, resp.Header, string(body)
}

func TestApplyServesAndSwaps(t *testing.T) {
	s := testServer(t)
	_, ip, port := echoBackend(t, "one")
	_, ip2, port2 := echoBackend(t, "two")
	snap := func(version string, paths ...string) *ir.Snapshot {
		vh := &ir.VirtualHost{Hostname: "api.example.com"}
		for _, p := range paths {
			vh.Routes = append(vh.Routes, testRoute("r"+p, p, ir.WeightedBackend{Backend: "ns/one", Port: port, Weight: 1}))
		}
		vh.Routes = append(vh.Routes, testRoute("r2", "/two", ir.WeightedBackend{Backend: "ns/two", Port: port2, Weight: 1}))
		return &ir.Snapshot{
			Listeners: []*ir.Listener{{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolHTTP, VirtualHosts: []*ir.VirtualHost{vh}}},
			Backends:  []*ir.Backend{{Name: "ns/one", Protocol: "plain", Endpoints: []ir.Endpoint{{IP: ip}}}, {Name: "ns/two", Protocol: "plain", Endpoints: []ir.Endpoint{{IP: ip2}}}},
		}
	}
	s1 := snap("1", "/v1")
	if err := s.Apply("p", s1); err != nil {
		t.Fatal(err)
	}
	addr := "http://" + s.Addrs()["127.0.0.1:0"]
	waitResolved(t, s, "ns/one", "ns/two")

	code, hdr, body := get(t, addr+"/v1/users?x=1", "api.example.com:8080", "Accept-Encoding", "gzip")
	if code != 200 || !strings.HasPrefix(body, "one GET api.example.com:8080 /v1/users?x=1 xff=127.0.0.1 proto=http fwdhost=api.example.com:8080 reqid=true") {
		t.Fatalf("GET /v1/users: %d %q", code, body)
	}
	if hdr.Get("Content-Encoding") != "gzip" || hdr.Get("X-Backend") != "one" {
		t.Errorf("response headers: %v", hdr)
	}
	if code, _, _ := get(t, addr+"/v2", "api.example.com"); code != 404 {
		t.Errorf("unrouted path: %d, want 404", code)
	}
	if code, _, _ := get(t, addr+"/v1", "other.example.com"); code != 404 {
		t.Errorf("unknown host: %d, want 404", code)
	}
	// Swap in a config that adds /v2; the socket stays the same.
	if err := s.Apply("p", snap("2", "/v1", "/v2")); err != nil {
		t.Fatal(err)
	}
	if got := "http://" + s.Addrs()["127.0.0.1:0"]; got != addr {
		t.Fatalf("socket changed across swap: %s -> %s", addr, got)
	}
	if code, _, body := get(t, addr+"/v2/x", "api.example.com"); code != 200 || !strings.HasPrefix(body, "one GET") {
		t.Errorf("after swap: %d %q", code, body)
	}
	if code, _, body := get(t, addr+"/two", "api.example.com"); code != 200 || !strings.HasPrefix(body, "two GET") {
		t.Errorf("second backend: %d %q", code, body)
	}
	// An invalid snapshot is rejected and the old one keeps serving.
	bad := snap("3", "/v1")
	bad.Listeners[0].VirtualHosts[0].Routes[0].Match.PathType = "Bogus"
	if err := s.Apply("p", bad); err == nil {
		t.Fatal("invalid snapshot applied")
	}
	if code, _, _ := get(t, addr+"/v2/x", "api.example.com"); code != 200 {
		t.Errorf("after rejected apply: %d", code)
	}
}

func waitResolved(t *testing.T, s *Server, names ...string) {
	t.Helper()
	for _, n := range names {
		c := s.Cluster(n)
		if c == nil {
			t.Fatalf("no cluster %s", n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.WaitResolved(ctx)
		cancel()
	}
}

// TestSwapUnderLoad applies 100 snapshots while clients send requests continuously: no request
// may fail.
func TestSwapUnderLoad(t *testing.T) {
	s := testServer(t)
	_, ip, port := echoBackend(t, "one")
	mk := func(i int) *ir.Snapshot {
		vh := &ir.VirtualHost{Hostname: "*", Routes: []*ir.Route{
			testRoute(fmt.Sprintf("extra-%d", i), fmt.Sprintf("/extra/%d", i), ir.WeightedBackend{Backend: "ns/one", Port: port, Weight: 1}),
			testRoute("main", "/", ir.WeightedBackend{Backend: "ns/one", Port: port, Weight: 1}),
		}}
		return &ir.Snapshot{
			Listeners: []*ir.Listener{{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolHTTP, VirtualHosts: []*ir.VirtualHost{vh}}},
			Backends:  []*ir.Backend{{Name: "ns/one", Protocol: "plain", Endpoints: []ir.Endpoint{{IP: ip}}}},
		}
	}
	if err := s.Apply("p", mk(0)); err != nil {
		t.Fatal(err)
	}
	waitResolved(t, s, "ns/one")
	addr := "http://" + s.Addrs()["127.0.0.1:0"]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	total := 0
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(addr + "/hello")
				mu.Lock()
				total++
				if err != nil {
					failures = append(failures, err.Error())
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						failures = append(failures, resp.Status)
					}
				}
				mu.Unlock()
			}
		}()
	}
	for i := 1; i <= 100; i++ {
		if err := s.Apply("p", mk(i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed during 100 swaps: %v", len(failures), total, failures[:min(5, len(failures))])
	}
	t.Logf("%d requests, 0 failures across 100 swaps", total)
}
