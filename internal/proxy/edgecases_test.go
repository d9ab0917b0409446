package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/ratelimit"
)

// TrafficPolicy edge cases of the policy API design §5 exercised with real HTTP traffic
// through the data plane (proxy.New + Apply, real backends on loopback). Each test names its
// case numbers; docs/testing-trafficpolicy.md maps every case to its test.

// edgeServer applies one listener whose virtual hosts serve the given routes (host -> routes;
// "*" for any) and returns the proxy's base URL, the server and its access log.
func edgeServer(t *testing.T, opts Options, hosts map[string][]*ir.Route, backends ...*ir.Backend) (string, *Server, *logBuffer) {
	t.Helper()
	var logs logBuffer
	opts.AccessLog = &logs
	opts.DrainTimeout = time.Second
	s := New(opts)
	t.Cleanup(s.Close)
	l := &ir.Listener{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolHTTP}
	var names []string
	for h, rs := range hosts {
		if h != "*" {
			l.VirtualHosts = append(l.VirtualHosts, &ir.VirtualHost{Hostname: h, Routes: rs})
		}
	}
	if rs, ok := hosts["*"]; ok {
		l.VirtualHosts = append(l.VirtualHosts, &ir.VirtualHost{Hostname: "*", Routes: rs})
	}
	for _, b := range backends {
		names = append(names, b.Name)
	}
	if err := s.Apply("p", &ir.Snapshot{Listeners: []*ir.Listener{l}, Backends: backends}); err != nil {
		t.Fatal(err)
	}
	waitResolved(t, s, names...)
	return "http://" + s.Addrs()["127.0.0.1:0"], s, &logs
}

// plainRoute is a route to backend b at port, without the test route's compression filter.
func plainRoute(name, path, backend string, port int) *ir.Route {
	rt := testRoute(name, path, ir.WeightedBackend{Backend: backend, Port: int32(port), Weight: 1})
	rt.Filters = nil
	return rt
}

func backendAt(name string, ips ...string) *ir.Backend {
	b := &ir.Backend{Name: name, Protocol: "plain"}
	for _, ip := range ips {
		b.Endpoints = append(b.Endpoints, ir.Endpoint{IP: ip})
	}
	return b
}

// serveOn serves h on addr ("127.0.0.2:port"); it skips the test when the address cannot be
// bound (a machine without the whole 127/8 on loopback).
func serveOn(t *testing.T, addr string, h http.Handler) int {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// counted is a backend handler that counts its requests and answers with fn.
type counted struct {
	n  atomic.Int64
	fn func(w http.ResponseWriter, r *http.Request)
}

func (c *counted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.fn(w, r)
}

// do sends a request and returns its status, head and body, and how long it took.
func do(t *testing.T, method, url, host string, body io.Reader, hdr ...string) (int, http.Header, string, time.Duration) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), time.Since(start)
}

// Case 27 (data-plane part): rules whose counter is per route count each route apart; a
// Shared rule's one counter counts every route using it.
func TestRateLimitCountersPerRouteAndShared(t *testing.T) {
	be := &counted{fn: func(w http.ResponseWriter, r *http.Request) {}}
	port := serveOn(t, "127.0.0.1:0", be)
	rule := func(name, counter, method string) ir.RateLimitRule {
		return ir.RateLimitRule{Name: name, Policy: "default/gw", Counter: counter, Requests: 2, Window: ir.Duration(time.Hour),
			Match: &ir.RequestMatch{Methods: []string{method}}}
	}
	route := func(name string) *ir.Route {
		rt := plainRoute(name, "/"+name, "b", port)
		// GETs count per route, POSTs in the one Shared counter, as translate names them.
		rt.RateLimit = &ir.RateLimit{Headers: "XRateLimit", StatusCode: 429, Rules: []ir.RateLimitRule{
			rule("per-route", "p/default/gw/per-route/HTTPRoute/default/"+name, "GET"),
			rule("shared", "p/default/gw/shared", "POST"),
		}}
		return rt
	}
	base, _, _ := edgeServer(t, Options{}, map[string][]*ir.Route{"*": {route("a"), route("b")}}, backendAt("b", "127.0.0.1"))
	codes := func(method string, paths ...string) []int {
		var out []int
		for _, p := range paths {
			c, _, _, _ := do(t, method, base+p, "", nil)
			out = append(out, c)
		}
		return out
	}
	if got := codes("GET", "/a", "/a", "/a", "/b", "/b", "/b"); fmt.Sprint(got) != "[200 200 429 200 200 429]" {
		t.Errorf("per-route GETs /a×3 /b×3: %v, want each route its own 2", got)
	}
	if got := codes("POST", "/a", "/b", "/a", "/b"); fmt.Sprint(got) != "[200 200 429 429]" {
		t.Errorf("shared POSTs /a /b /a /b: %v, want 2 in all", got)
	}
}

// Case 29 with a real Redis: FailOpen passes and FailClosed answers 503 while the store is
// down; counting resumes when it is back.
func TestRateLimitRedisDown(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("APOXY_REQUIRE_REDIS") != "" {
			t.Fatal("redis-server is not installed")
		}
		t.Skip("redis-server is not installed (.ci/run installs it)")
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	startRedis := func() *exec.Cmd {
		_, p, _ := net.SplitHostPort(addr)
		cmd := exec.Command(bin, "--port", p, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				return cmd
			}
			if time.Now().After(deadline) {
				t.Fatal("redis-server did not start")
			}
		}
	}
	redis := startRedis()
	t.Cleanup(func() { redis.Process.Kill(); redis.Wait() })
	store := ratelimit.NewRedis(ratelimit.RedisOptions{Address: addr})
	t.Cleanup(func() { store.Close() })

	be := &counted{fn: func(w http.ResponseWriter, r *http.Request) {}}
	port := serveOn(t, "127.0.0.1:0", be)
	route := func(name string, closed bool) *ir.Route {
		rt := plainRoute(name, "/"+name, "b", port)
		rt.RateLimit = &ir.RateLimit{Headers: "XRateLimit", StatusCode: 429, FailClosed: closed, Rules: []ir.RateLimitRule{
			{Name: "g", Policy: "default/p", Counter: "p/default/p/g/" + name, Requests: 100, Window: ir.Duration(time.Hour), Global: true}}}
		return rt
	}
	base, s, logs := edgeServer(t, Options{RateLimitStore: store}, map[string][]*ir.Route{"*": {route("open", false), route("closed", true)}}, backendAt("b", "127.0.0.1"))
	for _, p := range []string{"/open", "/closed"} {
		if c, h, _, _ := do(t, "GET", base+p, "", nil); c != 200 || h.Get("X-RateLimit-Remaining") != "99" {
			t.Fatalf("%s with Redis up: %d remaining %q", p, c, h.Get("X-RateLimit-Remaining"))
		}
	}
	redis.Process.Kill()
	redis.Wait()
	if c, _, _, _ := do(t, "GET", base+"/open", "", nil); c != 200 {
		t.Errorf("FailOpen with Redis down: %d, want 200", c)
	}
	c, h, _, took := do(t, "GET", base+"/closed", "", nil)
	if c != 503 || h.Get("Retry-After") == "" || took > 3*time.Second {
		t.Errorf("FailClosed with Redis down: %d %v after %v, want 503 with Retry-After at once", c, h, took)
	}
	s.FlushAccessLog()
	if !strings.Contains(logs.b.String(), `"ratelimit":"store_error"`) {
		t.Errorf("access log lacks store_error: %s", logs.b.String())
	}
	redis = startRedis()
	deadline := time.Now().Add(10 * time.Second) // the store backs off before it retries
	for {
		c, h, _, _ := do(t, "GET", base+"/closed", "", nil)
		if c == 200 && h.Get("X-RateLimit-Limit") == "100" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis back: still %d", c)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Case 34: a client IP rule counts the peer unless the peer is a trusted proxy; then the
// client is the nearest untrusted X-Forwarded-For hop. A spoofed header from an untrusted
// client changes nothing.
func TestRateLimitClientIPFromTrustedForwarders(t *testing.T) {
	be := &counted{fn: func(w http.ResponseWriter, r *http.Request) {}}
	port := serveOn(t, "127.0.0.1:0", be)
	rt := plainRoute("r", "/", "b", port)
	rt.RateLimit = &ir.RateLimit{Headers: "XRateLimit", StatusCode: 429, Rules: []ir.RateLimitRule{{Name: "per-ip", Policy: "default/p",
		Counter: "c", Requests: 1, Window: ir.Duration(time.Hour), CountBy: []ir.KeyPart{{Kind: ir.KeyClientIP, IPv4PrefixLength: 32, IPv6PrefixLength: 64}}}}}
	codes := func(base string, xffs ...string) string {
		var out []string
		for _, xff := range xffs {
			c, _, _, _ := do(t, "GET", base+"/", "", nil, "X-Forwarded-For", xff)
			out = append(out, strconv.Itoa(c))
		}
		return strings.Join(out, " ")
	}
	untrusted, _, _ := edgeServer(t, Options{}, map[string][]*ir.Route{"*": {rt}}, backendAt("b", "127.0.0.1"))
	if got := codes(untrusted, "192.0.2.1", "192.0.2.2"); got != "200 429" {
		t.Errorf("untrusted peer with spoofed X-Forwarded-For: %s, want 200 429 (one client: the peer)", got)
	}
	trusted, _, _ := edgeServer(t, Options{Requests: RequestPolicy{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}},
		map[string][]*ir.Route{"*": {rt}}, backendAt("b", "127.0.0.1"))
	// Two clients behind the trusted proxy, then the first again through a second trusted hop.
	if got := codes(trusted, "192.0.2.1", "192.0.2.2", "192.0.2.1, 127.0.0.9", "198.51.100.7, 192.0.2.2"); got != "200 200 429 429" {
		t.Errorf("trusted proxy: %s, want 200 200 429 429 (clients 192.0.2.1, 192.0.2.2, 192.0.2.1, 192.0.2.2)", got)
	}
}

// Case 35 (data-plane part): a new snapshot keeps the buckets of an unchanged counter, also
// when the rule's limit changes; a renamed rule (a new counter) starts afresh.
func TestRateLimitCountsSurviveReload(t *testing.T) {
	be := &counted{fn: func(w http.ResponseWriter, r *http.Request) {}}
	port := serveOn(t, "127.0.0.1:0", be)
	s := New(Options{DrainTimeout: time.Second})
	t.Cleanup(s.Close)
	apply := func(counter string, limit uint32) {
		rt := plainRoute("r", "/", "b", port)
		rt.RateLimit = &ir.RateLimit{Headers: "XRateLimit", StatusCode: 429, Rules: []ir.RateLimitRule{{Name: counter, Policy: "default/p",
			Counter: "p/default/p/" + counter + "/HTTPRoute/default/r", Requests: limit, Window: ir.Duration(time.Hour)}}}
		snap := &ir.Snapshot{Listeners: []*ir.Listener{{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolHTTP,
			VirtualHosts: []*ir.VirtualHost{{Hostname: "*", Routes: []*ir.Route{rt}}}}}, Backends: []*ir.Backend{backendAt("b", "127.0.0.1")}}
		if err := s.Apply("p", snap); err != nil {
			t.Fatal(err)
		}
		waitResolved(t, s, "b")
	}
	codes := func(n int) string {
		var out []string
		for range n {
			c, _, _, _ := do(t, "GET", "http://"+s.Addrs()["127.0.0.1:0"]+"/", "", nil)
			out = append(out, strconv.Itoa(c))
		}
		return strings.Join(out, " ")
	}
	apply("login", 3)
	if got := codes(4); got != "200 200 200 429" {
		t.Fatalf("limit 3: %s", got)
	}
	apply("login", 5) // the limit raised: the 4 counted so far stay
	if got := codes(2); got != "200 429" {
		t.Errorf("limit raised to 5 after 4 requests: %s, want 200 429 (counts kept)", got)
	}
	apply("signin", 5) // renamed: a new counter
	if got := codes(1); got != "200" {
		t.Errorf("renamed rule: %s, want a fresh count", got)
	}
}

// Case 36: a rate-limit rule's match.path sees the same normalised path as route matching:
// for every spelling, the rule limits the request exactly when the router sends it to the
// /login route (prefix and regular expression alike).
func TestRateLimitPathMatchUsesRoutingNormalisation(t *testing.T) {
	be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Host) })
	port := serveOn(t, "127.0.0.1:0", be)
	denyOn := func(m ir.PathMatch) *ir.Route {
		rt := plainRoute("all", "/", "b", port)
		rt.RateLimit = &ir.RateLimit{Headers: "None", StatusCode: 429, Rules: []ir.RateLimitRule{{Name: "deny", Policy: "default/p",
			Counter: "deny/" + m.Value, Requests: 0, Window: ir.Duration(time.Second), Match: &ir.RequestMatch{Path: &m}}}}
		return rt
	}
	routed := func(m ir.Match) []*ir.Route {
		login := plainRoute("login", "/", "b", port)
		login.Match = m
		login.DirectResponse, login.Backends = &ir.DirectResponse{StatusCode: 299}, nil
		return []*ir.Route{login, plainRoute("root", "/", "b", port)}
	}
	const re = "/login(/.*)?"
	base, _, _ := edgeServer(t, Options{}, map[string][]*ir.Route{
		"prefix-routes.test": routed(ir.Match{PathType: ir.PathPrefix, Path: "/login"}),
		"prefix-limits.test": {denyOn(ir.PathMatch{Type: ir.PathPrefix, Value: "/login"})},
		"regex-routes.test":  routed(ir.Match{PathType: ir.PathRegularExpression, Path: re}),
		"regex-limits.test":  {denyOn(ir.PathMatch{Type: ir.PathRegularExpression, Value: re})},
	}, backendAt("b", "127.0.0.1"))
	addr := strings.TrimPrefix(base, "http://")
	for _, kind := range []string{"prefix", "regex"} {
		matched := 0
		for _, target := range []string{"/login", "/login/", "/LOGIN", "/login;x", "/login/;x", "/%6Cogin", "/a/../login", "//login",
			"/./login/x", "/login%2Fx", "/login%2fx", "/loginx", "/log%69n/a", "/login?x=1", "/%2E%2E/login"} {
			rcode, _, _ := rawGetHost(t, addr, kind+"-routes.test", target)
			lcode, _, _ := rawGetHost(t, addr, kind+"-limits.test", target)
			toLogin, limited := rcode == 299, lcode == 429
			if toLogin {
				matched++
			}
			if toLogin != limited || (rcode == 400) != (lcode == 400) {
				t.Errorf("%s %q: router answered %d (login route: %v), rate limiter %d (matched: %v)", kind, target, rcode, toLogin, lcode, limited)
			}
		}
		if matched < 4 {
			t.Errorf("%s: only %d spellings reached the login route; the test lost its point", kind, matched)
		}
	}
}

// rawGetHost sends target as given over HTTP/1.1 to host.
func rawGetHost(t *testing.T, addr, host, target string) (int, http.Header, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// Cases 37 and 46: two endpoints, one refusing connections (or blackholing them, with a
// connect timeout): every request, POST included, is retried on the other endpoint and
// succeeds; a blackholed connect is given up at the connect timeout. A POST answered 503 is
// not retried under the default retry methods.
func TestConnectFailuresRetryOnAnotherEndpoint(t *testing.T) {
	good := &counted{fn: func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/503" {
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, "ok")
	}}
	port := serveOn(t, "127.0.0.1:0", good)
	blackholed := blackholeOn(t, fmt.Sprintf("127.0.0.2:%d", port))
	// The policy defaults as translate writes them (retry: {}): attempts 2 on ConnectFailure and
	// RefusedStream, status 503, idempotent methods.
	policyRetry := &ir.Retry{Attempts: 2, Codes: []int{503}, Conditions: []string{"ConnectFailure", "RefusedStream"},
		Methods: []string{"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}}
	for _, tc := range []struct {
		name      string
		second    string // the bad endpoint: 127.0.0.3 refuses, 127.0.0.2 blackholes
		blackhole bool
	}{{"refused", "127.0.0.3", false}, {"blackhole", "127.0.0.2", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.blackhole && !blackholed {
				t.Skip("no blackhole listener")
			}
			rt := plainRoute("r", "/", "b", port)
			rt.Retry = policyRetry
			b := backendAt("b", "127.0.0.1", tc.second)
			b.LoadBalancer = &ir.LoadBalancer{Type: "RoundRobin"}
			b.ConnectTimeout = ir.Duration(300 * time.Millisecond)
			base, _, _ := edgeServer(t, Options{}, map[string][]*ir.Route{"*": {rt}}, b)
			before := good.n.Load()
			slow := 0
			for i := range 8 {
				method := []string{"GET", "POST"}[i%2]
				c, _, body, took := do(t, method, base+"/x", "", strings.NewReader("payload"))
				if c != 200 || body != "ok" {
					t.Fatalf("%s %d: %d %q, want a retry on the good endpoint", method, i, c, body)
				}
				if took > 250*time.Millisecond {
					slow++
					if !tc.blackhole || took > 2*time.Second {
						t.Errorf("%s %d took %v", method, i, took)
					}
				}
			}
			if got := good.n.Load() - before; got != 8 {
				t.Errorf("the good endpoint served %d of 8", got)
			}
			if tc.blackhole && slow == 0 {
				t.Error("no request was sent to the blackholed endpoint first (round robin over two)")
			}
			// A POST answered 503 reached the backend: not retried.
			before = good.n.Load()
			for range 4 {
				if c, _, _, _ := do(t, "POST", base+"/503", "", strings.NewReader("p")); c != 503 && c != 502 && c != 504 {
					t.Fatalf("POST /503: %d", c)
				}
			}
			if got := good.n.Load() - before; got != 4 {
				t.Errorf("4 POSTs answered 503 reached the backend %d times, want 4 (no retry)", got)
			}
		})
	}
	t.Run("blackhole alone fails in time", func(t *testing.T) {
		if !blackholed {
			t.Skip("no blackhole listener")
		}
		rt := plainRoute("r", "/", "b", port)
		rt.Retry = &ir.Retry{Attempts: 0}
		b := backendAt("b", "127.0.0.2")
		b.ConnectTimeout = ir.Duration(300 * time.Millisecond)
		base, s, logs := edgeServer(t, Options{}, map[string][]*ir.Route{"*": {rt}}, b)
		c, _, _, took := do(t, "GET", base+"/", "", nil)
		if c != http.StatusBadGateway || took < 250*time.Millisecond || took > 2*time.Second {
			t.Errorf("blackholed endpoint: %d after %v, want 502 at ~300ms", c, took)
		}
		s.FlushAccessLog()
		if !strings.Contains(logs.b.String(), `"response_flags":"UF"`) {
			t.Errorf("access log lacks UF: %s", logs.b.String())
		}
	})
}

// blackholeOn makes addr a TCP blackhole: a listener with a backlog of 0 that never accepts,
// its accept queue filled, so the kernel drops further SYNs and connects hang (what a
// non-routable address does; this machine has only loopback).
func blackholeOn(t *testing.T, addr string) bool {
	t.Helper()
	ap := netip.MustParseAddrPort(addr)
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return false
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}) != nil || syscall.Listen(fd, 0) != nil {
		return false
	}
	for range 4 {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err == nil {
		c.Close()
		return false // still accepting connections: not a blackhole here
	}
	return true
}

// Cases 38 and 39: statusCodes [503] alone retries a 503; attempts 2 means at most three
// upstream requests, counted at the backend, flagged URX.
func TestRetryAttemptsCountAtTheBackend(t *testing.T) {
	be := &counted{fn: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }}
	port := serveOn(t, "127.0.0.1:0", be)
	rt := plainRoute("r", "/", "b", port)
	rt.Retry = &ir.Retry{Attempts: 2, Codes: []int{503}, Conditions: []string{"ConnectFailure"}}
	base, s, logs := edgeServer(t, Options{}, map[string][]*ir.Route{"*": {rt}}, backendAt("b", "127.0.0.1"))
	if c, _, _, _ := do(t, "GET", base+"/", "", nil); c != 503 {
		t.Fatalf("status %d", c)
	}
	if n := be.n.Load(); n != 3 {
		t.Errorf("attempts 2 sent %d upstream requests, want 3", n)
	}
	s.FlushAccessLog()
	if !strings.Contains(logs.b.String(), `"response_flags":"URX"`) {
		t.Errorf("access log lacks URX: %s", logs.b.String())
	}
}

// Case 40: the request timeout cuts the retries short: the client gets 504 at the deadline,
// not after the last attempt.
func TestRequestTimeoutCutsRetriesShort(t *testing.T) {
	be := &counted{fn: func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(300 * time.Millisecond):
		case <-r.Context().Done():
		}
		w.WriteHeader(503)
	}}
	port := serveOn(t, "127.0.0.1:0", be)
	rt := plainRoute("r", "/", "b", port)
	rt.Retry = &ir.Retry{Attempts: 10, Codes: []int{503}, Conditions: []string{"ConnectFailure"}, Backoff: ir.Duration(time.Millisecond)}
	rt.Timeouts.Request = ir.Duration(time.Second)
	base, _, _ := edgeServer(t, Options{}, map[string][]*ir.Route{"*": {rt}}, backendAt("b", "127.0.0.1"))
	c, _, _, took := do(t, "GET", base+"/", "", nil)
	if c != http.StatusGatewayTimeout || took < 900*time.Millisecond || took > 1800*time.Millisecond {
		t.Errorf("%d after %v, want 504 at the 1s deadline (11 attempts would take 3.3s)", c, took)
	}
	if n := be.n.Load(); n > 5 {
		t.Errorf("%d attempts within a 1s request timeout of 300ms attempts", n)
	}
}

// Case 42: backoff is exponential with full jitter: every wait is within [0, min(maxInterval,
// baseInterval × 2^i)], and the waits spread over that range (mean about half of it, some in
// its top tenth). Checked over 4,000 samples per attempt with 6σ bounds. The design's "≥
// baseInterval" does not hold under full jitter (design §2.3): see the doc.
func TestRetryBackoffDistribution(t *testing.T) {
	base, maxI := 25*time.Millisecond, 250*time.Millisecond
	p := newRetryPolicy(&ir.Retry{Attempts: 10, Backoff: ir.Duration(base), MaxBackoff: ir.Duration(maxI)})
	const n = 4000
	for i := range 6 {
		ceil := min(maxI, base<<i)
		var sum float64
		top := 0
		for range n {
			d := p.backoff(i)
			if d < 0 || d > ceil {
				t.Fatalf("backoff(%d) = %v, outside [0, %v]", i, d, ceil)
			}
			sum += float64(d)
			if d > ceil*9/10 {
				top++
			}
		}
		mean := sum / n / float64(ceil)
		// Uniform on [0,1]: σ of the mean is 0.289/√4000 = 0.0046; 6σ ≈ 0.03.
		if mean < 0.47 || mean > 0.53 {
			t.Errorf("backoff(%d): mean %.3f of the ceiling %v, want 0.5 ± 0.03", i, mean, ceil)
		}
		if top < 250 { // expected 400, σ ≈ 19
			t.Errorf("backoff(%d): %d of %d waits in the top tenth, want about 400", i, top, n)
		}
	}
	// Without maxInterval set, the cap is 10 × base.
	q := newRetryPolicy(&ir.Retry{Attempts: 10, Backoff: ir.Duration(base)})
	for range n {
		if d := q.backoff(20); d > 10*base {
			t.Fatalf("default cap: backoff %v over %v", d, 10*base)
		}
	}
}

// Case 43: under a full outage, retries stay within the budget: at most percent of the
// requests plus the minimum retry rate, counted at the backend.
func TestRetryBudgetUnderFullOutage(t *testing.T) {
	be := &counted{fn: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }}
	port := serveOn(t, "127.0.0.1:0", be)
	rt := plainRoute("r", "/", "b", port)
	rt.Retry = &ir.Retry{Attempts: 3, Codes: []int{503}, Conditions: []string{"ConnectFailure"},
		Budget: &ir.RetryBudget{Percent: 20, Interval: ir.Duration(time.Minute), MinRetries: 5, MinInterval: ir.Duration(time.Minute)}}
	base, _, _ := edgeServer(t, Options{}, map[string][]*ir.Route{"*": {rt}}, backendAt("b", "127.0.0.1"))
	const requests = 100
	for range requests {
		if c, _, _, _ := do(t, "GET", base+"/", "", nil); c != 503 {
			t.Fatalf("status %d", c)
		}
	}
	retries := be.n.Load() - requests
	t.Logf("%d requests, %d retries (budget 20%% = 20, minimum 5; unbounded would be %d)", requests, retries, 3*requests)
	if retries > 25 || retries < 5 {
		t.Errorf("%d retries for %d requests in a full outage, want at most max(20%%, 5) (+5 slack) and at least the minimum 5", retries, requests)
	}
}

// A connection refused by one endpoint is retried on an untried one without drawing on the
// retry budget: the request never reached a backend, so the retry spreads it rather than
// amplifying it. With the budget spent (0 %, no minimum), every request still succeeds though
// the refusing endpoint gets its share of first picks; a 503 is not retried.
func TestRetryBudgetSparesConnectFailures(t *testing.T) {
	be := &counted{fn: func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(503)
		}
	}}
	port := serveOn(t, "127.0.0.41:0", be)
	// 127.0.0.42 has nothing listening on port: connections are refused.
	rt := plainRoute("r", "/", "b", port)
	rt.Retry = &ir.Retry{Attempts: 2, Codes: []int{503}, Conditions: []string{"ConnectFailure"},
		Budget: &ir.RetryBudget{Percent: 0, Interval: ir.Duration(time.Minute), MinRetries: 0, MinInterval: ir.Duration(time.Minute)}}
	base, _, _ := edgeServer(t, Options{}, map[string][]*ir.Route{"*": {rt}}, backendAt("b", "127.0.0.41", "127.0.0.42"))
	const requests = 50
	for range requests {
		if c, _, _, _ := do(t, "GET", base+"/", "", nil); c != 200 {
			t.Fatalf("status %d: a refused connection was not retried on the other endpoint", c)
		}
	}
	if n := be.n.Load(); n != requests {
		t.Fatalf("backend saw %d requests, want %d", n, requests)
	}
	if c, _, _, _ := do(t, "GET", base+"/fail", "", nil); c != 503 {
		t.Fatalf("status %d, want the 503 unretried", c)
	}
	if n := be.n.Load(); n != requests+1 {
		t.Errorf("backend saw %d requests after a 503 with the budget spent, want %d (no retry)", n, requests+1)
	}
}

// Case 44: a body larger than the replay buffer is streamed once and not retried; a small
// one is replayed byte for byte on every attempt.
func TestRetryBodyReplayLimit(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	be := &counted{fn: func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		n := len(bodies)
		mu.Unlock()
		if r.URL.Path == "/always" || n%3 != 0 {
			w.WriteHeader(503)
			return
		}
		w.Write(b[:min(len(b), 16)])
	}}
	port := serveOn(t, "127.0.0.1:0", be)
	rt := plainRoute("r", "/", "b", port)
	rt.Retry = &ir.Retry{Attempts: 2, Codes: []int{503}, Conditions: []string{"ConnectFailure"}, Methods: []string{"PUT"}}
	base, _, _ := edgeServer(t, Options{}, map[string][]*ir.Route{"*": {rt}}, backendAt("b", "127.0.0.1"))
	small := make([]byte, 4096)
	rand.Read(small)
	if c, _, _, _ := do(t, "PUT", base+"/small", "", bytes.NewReader(small)); c != 200 {
		t.Errorf("small body: %d after retries", c)
	}
	mu.Lock()
	if len(bodies) != 3 {
		t.Errorf("small body sent %d times, want 3", len(bodies))
	}
	for i, b := range bodies {
		if !bytes.Equal(b, small) {
			t.Errorf("attempt %d carried %d bytes differing from the client's %d", i+1, len(b), len(small))
		}
	}
	bodies = nil
	mu.Unlock()
	large := make([]byte, maxReplayBody+1)
	rand.Read(large)
	if c, _, _, _ := do(t, "PUT", base+"/always", "", bytes.NewReader(large)); c != 503 {
		t.Errorf("large body: %d", c)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 || !bytes.Equal(bodies[0], large) {
		t.Errorf("a body over the replay buffer was sent %d times, want once, whole", len(bodies))
	}
}

// Case 45: timeouts.request bounds only the wait for the response head: a stream (h2c and
// HTTP/1.1) and an upgraded connection outlive it.
func TestRequestTimeoutDoesNotEndStreams(t *testing.T) {
	for _, proto := range []string{"plain", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			port := streamBackend(t, proto == "h2c", 100*time.Millisecond, 10) // 1 s of ticks
			base, _, _ := timeoutServer(t, proto, port, func(r *ir.Route, _ *ir.Backend) {
				r.Timeouts.Request = ir.Duration(300 * time.Millisecond)
			})
			body, err, took := readStream(t, base+"/")
			if err != nil || strings.Count(body, "tick") != 10 || took < 900*time.Millisecond {
				t.Errorf("stream under a 300ms request timeout: %d ticks, err %v after %v; want all 10", strings.Count(body, "tick"), err, took)
			}
		})
	}
	t.Run("upgrade", func(t *testing.T) {
		echo := serveOn(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			brw.Flush()
			io.Copy(conn, brw)
		}))
		base, _, _ := timeoutServer(t, "plain", echo, func(r *ir.Route, _ *ir.Backend) {
			r.Timeouts.Request = ir.Duration(300 * time.Millisecond)
		})
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		br := bufio.NewReader(c)
		if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		for i := range 8 { // 1.2 s, four times the request timeout
			fmt.Fprintf(c, "ping%d\n", i)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if line, err := br.ReadString('\n'); err != nil || line != fmt.Sprintf("ping%d\n", i) {
				t.Fatalf("echo %d after %v: %q %v", i, time.Duration(i)*150*time.Millisecond, line, err)
			}
			time.Sleep(150 * time.Millisecond)
		}
	})
}

// Cases 47 and 48: maxParallelRequests 1 with two concurrent slow requests: the second gets
// 503 with x-apoxy-overloaded at once and is not retried though 503 is a retried code; rate
// limiter (429) and fault (503) answers of the gateway are not retried either: the backend
// never sees them.
func TestGatewayRejectionsAreNotRetried(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	be := &counted{fn: func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
	}}
	port := serveOn(t, "127.0.0.1:0", be)
	retry := &ir.Retry{Attempts: 3, Codes: []int{429, 503}, Conditions: []string{"ConnectFailure", "GatewayError"}, Backoff: ir.Duration(time.Millisecond)}
	breaker := plainRoute("breaker", "/", "b", port)
	breaker.Retry = retry
	limited := plainRoute("limited", "/limited", "b", port)
	limited.Retry = retry
	limited.RateLimit = &ir.RateLimit{Headers: "XRateLimit", StatusCode: 429, Rules: []ir.RateLimitRule{{Name: "deny", Counter: "deny", Requests: 0, Window: ir.Duration(time.Second)}}}
	faulted := plainRoute("faulted", "/faulted", "b", port)
	faulted.Retry = retry
	faulted.Fault = &ir.FaultInjection{AbortStatus: 503, AbortPercent: 100}
	b := backendAt("b", "127.0.0.1")
	b.CircuitBreaker = &ir.CircuitBreaker{MaxParallelRequests: 1}
	base, s, logs := edgeServer(t, Options{}, map[string][]*ir.Route{"*": {limited, faulted, breaker}}, b)

	done := make(chan int)
	go func() {
		req, _ := http.NewRequest("GET", base+"/slow", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-entered
	c, h, _, took := do(t, "GET", base+"/slow", "", nil)
	if c != 503 || h.Get("X-Apoxy-Overloaded") != "true" || took > 500*time.Millisecond {
		t.Errorf("second concurrent request: %d overloaded %q after %v, want 503 x-apoxy-overloaded at once", c, h.Get("X-Apoxy-Overloaded"), took)
	}
	close(release)
	if c := <-done; c != 200 {
		t.Errorf("the first slow request: %d", c)
	}
	if n := be.n.Load(); n != 1 {
		t.Errorf("the backend saw %d requests, want 1 (the overloaded one is never sent nor retried)", n)
	}
	for _, p := range []string{"/limited", "/faulted"} {
		if c, _, _, _ := do(t, "GET", base+p, "", nil); c != map[string]int{"/limited": 429, "/faulted": 503}[p] {
			t.Errorf("%s: %d", p, c)
		}
	}
	if n := be.n.Load(); n != 1 {
		t.Errorf("the backend saw %d requests after the gateway's own 429 and 503, want still 1", n)
	}
	s.FlushAccessLog()
	for _, flag := range []string{`"response_flags":"UO"`, `"response_flags":"RL"`, `"response_flags":"FI"`} {
		if !strings.Contains(logs.b.String(), flag) {
			t.Errorf("access log lacks %s", flag)
		}
	}
	if strings.Contains(logs.b.String(), "URX") {
		t.Errorf("a gateway rejection was retried: %s", logs.b.String())
	}
}

// Case 50: two route rules reaching one Backend under different breakers (translate gives
// each its own cluster variant) have independent counters: one rule at its limit does not
// limit the other.
func TestBreakersOfTwoRulesAreIndependent(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	be := &counted{fn: func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/slow") {
			entered <- struct{}{}
			<-release
		}
	}}
	port := serveOn(t, "127.0.0.1:0", be)
	one, two := backendAt("be@policy/one", "127.0.0.1"), backendAt("be@policy/two", "127.0.0.1")
	one.CircuitBreaker = &ir.CircuitBreaker{MaxParallelRequests: 1}
	two.CircuitBreaker = &ir.CircuitBreaker{MaxParallelRequests: 1}
	base, _, _ := edgeServer(t, Options{}, map[string][]*ir.Route{"*": {plainRoute("a", "/a", one.Name, port), plainRoute("b", "/b", two.Name, port)}}, one, two)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.Get(base + "/a/slow"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	if c, _, _, _ := do(t, "GET", base+"/b", "", nil); c != 200 {
		t.Errorf("rule b while rule a is at its limit: %d, want 200", c)
	}
	if c, h, _, _ := do(t, "GET", base+"/a", "", nil); c != 503 || h.Get("X-Apoxy-Overloaded") != "true" {
		t.Errorf("rule a at its limit: %d, want 503 overloaded", c)
	}
	close(release)
	<-done
}

// Case 56: with weighted backendRefs and a hash, stickiness holds within the Backend the
// weights chose: one key always reaches the same endpoint of each Backend, and both
// Backends are used (docs/testing-trafficpolicy.md: stickiness across backendRefs needs
// sessionPersistence, design §2.3).
func TestHashStickinessWithinTheWeightedBackend(t *testing.T) {
	var port int
	label := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
	}
	port = serveOn(t, "127.0.0.1:0", label("a1"))
	for i, name := range []string{"a2", "b1", "b2"} {
		serveOn(t, fmt.Sprintf("127.0.0.%d:%d", i+2, port), label(name))
	}
	hash := &ir.LoadBalancer{Type: "Maglev", Hash: &ir.HashSource{Header: "x-user"}}
	a, b := backendAt("a", "127.0.0.1", "127.0.0.2"), backendAt("b", "127.0.0.3", "127.0.0.4")
	a.LoadBalancer, b.LoadBalancer = hash, hash
	rt := testRoute("r", "/", ir.WeightedBackend{Backend: "a", Port: int32(port), Weight: 1}, ir.WeightedBackend{Backend: "b", Port: int32(port), Weight: 1})
	rt.Filters = nil
	base, _, _ := edgeServer(t, Options{}, map[string][]*ir.Route{"*": {rt}}, a, b)
	for _, user := range []string{"alice", "bob", "carol"} {
		seen := map[string]int{}
		for range 40 {
			_, _, body, _ := do(t, "GET", base+"/", "", nil, "X-User", user)
			seen[body]++
		}
		perBackend := map[byte]int{}
		for ep := range seen {
			perBackend[ep[0]]++
		}
		if perBackend['a'] != 1 || perBackend['b'] != 1 {
			t.Errorf("user %s was served by %v; want one endpoint of a and one of b (weights pick the Backend, the hash the endpoint)", user, seen)
		}
	}
}

// Case 61: a fault delay counts toward timeouts.request: a delay longer than the request
// timeout ends in 504 and the backend is never reached.
func TestFaultDelayCountsTowardTheRequestTimeout(t *testing.T) {
	be := &counted{fn: func(w http.ResponseWriter, r *http.Request) {}}
	port := serveOn(t, "127.0.0.1:0", be)
	rt := plainRoute("r", "/", "b", port)
	rt.Fault = &ir.FaultInjection{Delay: ir.Duration(2 * time.Second), DelayPercent: 100}
	rt.Timeouts.Request = ir.Duration(300 * time.Millisecond)
	base, _, _ := edgeServer(t, Options{}, map[string][]*ir.Route{"*": {rt}}, backendAt("b", "127.0.0.1"))
	c, _, _, took := do(t, "GET", base+"/", "", nil)
	t.Logf("delay 2s, request timeout 300ms: %d after %v", c, took)
	// The 504 comes at the deadline, not when the delay would have ended.
	if c != http.StatusGatewayTimeout || took > 1500*time.Millisecond {
		t.Errorf("%d after %v, want 504 at ~300ms", c, took)
	}
	if n := be.n.Load(); n != 0 {
		t.Errorf("the backend was reached %d times after the deadline passed", n)
	}
}
