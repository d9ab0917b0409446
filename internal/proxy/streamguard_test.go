package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// timeoutServer serves one route to backend b (protocol proto at port) with the given stream
// timeouts and returns the proxy's base URL and its access log.
func timeoutServer(t *testing.T, proto string, port int, mod func(*ir.Route, *ir.Backend)) (string, *Server, *logBuffer) {
	t.Helper()
	var logs logBuffer
	s := New(Options{AccessLog: &logs, DrainTimeout: time.Second})
	t.Cleanup(s.Close)
	rt := testRoute("r", "/", ir.WeightedBackend{Backend: "b", Port: int32(port), Weight: 1})
	rt.Filters = nil
	b := &ir.Backend{Name: "b", Protocol: proto, Endpoints: []ir.Endpoint{{IP: "127.0.0.1"}}}
	mod(rt, b)
	snap := &ir.Snapshot{
		Listeners: []*ir.Listener{{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolHTTP,
			VirtualHosts: []*ir.VirtualHost{{Hostname: "*", Routes: []*ir.Route{rt}}}}},
		Backends: []*ir.Backend{b},
	}
	if err := s.Apply("p", snap); err != nil {
		t.Fatal(err)
	}
	waitResolved(t, s, "b")
	return "http://" + s.Addrs()["127.0.0.1:0"], s, &logs
}

func portOf(t *testing.T, addr net.Addr) int {
	t.Helper()
	return addr.(*net.TCPAddr).Port
}

// streamBackend writes "tick\n" every gap, count times (forever when count < 0), flushing each.
func streamBackend(t *testing.T, h2c bool, gap time.Duration, count int) int {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		for i := 0; count < 0 || i < count; i++ {
			if _, err := io.WriteString(w, "tick\n"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(gap):
			}
		}
	}))
	if h2c {
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
		srv.Config.Protocols.SetHTTP1(true)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return portOf(t, srv.Listener.Addr())
}

// readStream reads a streamed body to its end and reports what arrived, how it ended and when.
func readStream(t *testing.T, url string) (body string, err error, took time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err, time.Since(start)
}

func TestStreamIdleTimeoutEndsAQuietStream(t *testing.T) {
	for _, proto := range []string{"plain", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			// One tick, then silence for 5 s: the 300 ms idle limit ends it.
			quiet := streamBackend(t, proto == "h2c", 5*time.Second, 2)
			base, s, logs := timeoutServer(t, proto, quiet, func(r *ir.Route, _ *ir.Backend) {
				r.Timeouts.StreamIdle = ir.Duration(300 * time.Millisecond)
			})
			body, err, took := readStream(t, base+"/quiet")
			if err == nil || body != "tick\n" || took > 3*time.Second {
				t.Fatalf("quiet stream: body %q err %v after %v; want one tick, then an error within ~300ms", body, err, took)
			}
			s.FlushAccessLog()
			if !strings.Contains(logs.b.String(), `"response_flags":"SI"`) {
				t.Errorf("access log lacks the SI flag: %s", logs.b.String())
			}
			// A stream that keeps talking (every 100 ms, 8 ticks) outlives the idle limit.
			busy := streamBackend(t, proto == "h2c", 100*time.Millisecond, 8)
			base, _, _ = timeoutServer(t, proto, busy, func(r *ir.Route, _ *ir.Backend) {
				r.Timeouts.StreamIdle = ir.Duration(300 * time.Millisecond)
			})
			body, err, _ = readStream(t, base+"/busy")
			if err != nil || strings.Count(body, "tick") != 8 {
				t.Errorf("busy stream: %d ticks, err %v; want all 8", strings.Count(body, "tick"), err)
			}
		})
	}
}

func TestMaxStreamDurationEndsABusyStream(t *testing.T) {
	for _, proto := range []string{"plain", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			port := streamBackend(t, proto == "h2c", 50*time.Millisecond, -1)
			base, s, logs := timeoutServer(t, proto, port, func(r *ir.Route, _ *ir.Backend) {
				r.Timeouts.StreamIdle = ir.Duration(time.Minute)
				r.Timeouts.MaxStreamDuration = ir.Duration(500 * time.Millisecond)
			})
			body, err, took := readStream(t, base+"/")
			if err == nil || took < 400*time.Millisecond || took > 3*time.Second || !strings.Contains(body, "tick") {
				t.Fatalf("endless stream: err %v after %v with %d ticks; want cut at ~500ms", err, took, strings.Count(body, "tick"))
			}
			s.FlushAccessLog()
			if !strings.Contains(logs.b.String(), `"response_flags":"UMSDR"`) {
				t.Errorf("access log lacks the UMSDR flag: %s", logs.b.String())
			}
		})
	}
}

// A response read in one piece never arms the guard, and a slow head is bounded by
// maxStreamDuration when it is shorter than the request timeout.
func TestMaxStreamDurationBoundsTheWaitForTheHead(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	base, _, _ := timeoutServer(t, "plain", portOf(t, srv.Listener.Addr()), func(r *ir.Route, _ *ir.Backend) {
		r.Timeouts.MaxStreamDuration = ir.Duration(300 * time.Millisecond)
	})
	if code, _, body := get(t, base+"/fast", ""); code != 200 || body != "ok" {
		t.Errorf("fast: %d %q", code, body)
	}
	start := time.Now()
	if code, _, _ := get(t, base+"/slow", ""); code != http.StatusGatewayTimeout || time.Since(start) > 3*time.Second {
		t.Errorf("slow head: %d after %v; want 504 at ~300ms", code, time.Since(start))
	}
}

// An upgraded connection with no bytes either way is closed after the idle limit; one that
// keeps talking stays up.
func TestStreamIdleTimeoutClosesAnIdleUpgrade(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw)
	}))
	t.Cleanup(echo.Close)
	base, s, logs := timeoutServer(t, "plain", portOf(t, echo.Listener.Addr()), func(r *ir.Route, _ *ir.Backend) {
		r.Timeouts.StreamIdle = ir.Duration(400 * time.Millisecond)
	})
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	// Talk every 150 ms for a second: the connection stays up past the 400 ms limit.
	for i := 0; i < 7; i++ {
		fmt.Fprintf(c, "ping%d\n", i)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("ping%d\n", i) {
			t.Fatalf("echo %d: %q %v", i, line, err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	// Then silence: the gateway closes it.
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("idle upgrade: read %v after %v; want closed at ~400ms", err, time.Since(start))
	}
	s.FlushAccessLog()
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(logs.b.String(), `"response_flags":"SI"`) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		s.FlushAccessLog()
	}
	if !strings.Contains(logs.b.String(), `"response_flags":"SI"`) {
		t.Errorf("access log lacks the SI flag: %s", logs.b.String())
	}
}

// The connect timeout covers the TLS handshake: a backend that accepts and never answers is
// given up on at connectTimeout, as a connection failure (502 UF), not a request timeout.
func TestConnectTimeoutCoversTheTLSHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // hold it open, say nothing
		}
	}()
	base, s, logs := timeoutServer(t, "tls", portOf(t, ln.Addr()), func(r *ir.Route, b *ir.Backend) {
		b.ConnectTimeout = ir.Duration(300 * time.Millisecond)
		r.Retry = &ir.Retry{Attempts: 0}
	})
	start := time.Now()
	code, _, _ := get(t, base+"/", "")
	if took := time.Since(start); code != http.StatusBadGateway || took > 3*time.Second {
		t.Fatalf("silent TLS backend: %d after %v; want 502 at ~300ms", code, took)
	}
	s.FlushAccessLog()
	if !strings.Contains(logs.b.String(), `"response_flags":"UF"`) {
		t.Errorf("access log lacks the UF flag: %s", logs.b.String())
	}
}

// A gRPC answer whose head carries a retried grpc-status (trailers-only) is retried, though
// every gRPC call is a POST.
func TestRetryOnGRPCStatus(t *testing.T) {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Content-Type", "application/grpc")
		if calls == 1 {
			w.Header().Set("Grpc-Status", "14") // UNAVAILABLE, trailers-only
			w.WriteHeader(200)
			return
		}
		w.Header().Set("Trailer", "Grpc-Status")
		w.WriteHeader(200)
		w.Write([]byte{0, 0, 0, 0, 0})
		w.Header().Set("Grpc-Status", "0")
	}))
	t.Cleanup(srv.Close)
	base, _, _ := timeoutServer(t, "plain", portOf(t, srv.Listener.Addr()), func(r *ir.Route, _ *ir.Backend) {
		r.Retry = &ir.Retry{Attempts: 2, Conditions: []string{"ConnectFailure"}, GRPCCodes: []int{14}}
	})
	resp, err := http.Post(base+"/pkg.Svc/Call", "application/grpc", strings.NewReader("\x00\x00\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if calls != 2 || resp.Header.Get("Grpc-Status") != "" || resp.Trailer.Get("Grpc-Status") != "0" {
		t.Errorf("calls %d, head grpc-status %q, trailer %q; want a retry ending in status 0", calls, resp.Header.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Status"))
	}
	// A code not listed is not retried.
	calls = 0
	base, _, _ = timeoutServer(t, "plain", portOf(t, srv.Listener.Addr()), func(r *ir.Route, _ *ir.Backend) {
		r.Retry = &ir.Retry{Attempts: 2, Conditions: []string{"ConnectFailure"}, GRPCCodes: []int{8}}
	})
	resp, err = http.Post(base+"/pkg.Svc/Call", "application/grpc", strings.NewReader("\x00\x00\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if calls != 1 || resp.Header.Get("Grpc-Status") != "14" {
		t.Errorf("unlisted code: calls %d, grpc-status %q; want 1 call answered 14", calls, resp.Header.Get("Grpc-Status"))
	}
}
