package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rejects records what OnReject hears.
type rejects struct {
	mu  sync.Mutex
	got []string // "status reason"
}

func (r *rejects) hook(remote net.Addr, status int, reason string) {
	if remote == nil {
		panic("OnReject without a remote address")
	}
	r.mu.Lock()
	r.got = append(r.got, fmt.Sprintf("%d %s", status, reason))
	r.mu.Unlock()
}

// wait waits up to 3 s for want to have been reported.
func (r *rejects) wait(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r.mu.Lock()
		got := append([]string(nil), r.got...)
		r.mu.Unlock()
		for _, g := range got {
			if g == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("OnReject never heard %q; heard %q", want, got)
		}
	}
}

// headers returns n header lines "X-Hn: v\r\n".
func headers(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "X-H%d: v\r\n", i)
	}
	return b.String()
}

// TestHeadLimits: with the defaults, a head over 60 KiB, more than 100 header fields and a
// target over 16 KiB are answered 431 / 431 / 414 with the connection closed and never reach
// the handler, while heads just within the limits are served.
func TestHeadLimits(t *testing.T) {
	var served atomic.Int32
	var rej rejects
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Write([]byte("ok"))
	}), func(s *Server) { s.OnReject = rej.hook })
	cl := "Connection: close\r\n\r\n"
	for _, tc := range []struct {
		name, raw, status string
	}{
		{"61 KiB head", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 61<<10) + "\r\n" + cl, "431"},
		{"50 KiB head", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 50<<10) + "\r\n" + cl, "200"},
		{"101 fields", "GET / HTTP/1.1\r\nHost: a\r\n" + headers(99) + cl, "431"},
		{"100 fields", "GET / HTTP/1.1\r\nHost: a\r\n" + headers(98) + cl, "200"},
		{"17 KiB target", "GET /" + strings.Repeat("p", 17<<10) + " HTTP/1.1\r\nHost: a\r\n" + cl, "414"},
		{"16 KiB target", "GET /" + strings.Repeat("p", 16<<10-1) + " HTTP/1.1\r\nHost: a\r\n" + cl, "200"},
		{"request line over the head limit", "GET /" + strings.Repeat("p", 70<<10) + " HTTP/1.1\r\nHost: a\r\n" + cl, "414"},
	} {
		got := exchange(t, addr, tc.raw)
		if !strings.HasPrefix(got, "HTTP/1.1 "+tc.status+" ") || !strings.Contains(got, "Connection: close") {
			t.Errorf("%s: got %.200q, want status %s and Connection: close", tc.name, got, tc.status)
		}
	}
	if n := served.Load(); n != 3 {
		t.Errorf("the handler ran %d times, want 3 (the heads within the limits)", n)
	}
	rej.wait(t, "431 header_too_large")
	rej.wait(t, "431 too_many_headers")
	rej.wait(t, "414 uri_too_long")

	// The limits are settable.
	_, addr = start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), func(s *Server) {
		s.MaxHeaders, s.MaxURLBytes = 3, 10
	})
	if got := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n"+headers(3)+cl); !strings.HasPrefix(got, "HTTP/1.1 431 ") {
		t.Errorf("4 fields over MaxHeaders 3: %.100q", got)
	}
	if got := exchange(t, addr, "GET /0123456789 HTTP/1.1\r\nHost: a\r\n"+cl); !strings.HasPrefix(got, "HTTP/1.1 414 ") {
		t.Errorf("an 11-byte target over MaxURLBytes 10: %.100q", got)
	}
}

// TestIdleConnDropsGrownBuffers: after a request with a ~50 KiB head, the connection waits for
// the next request without the grown head buffer, the head string or the header maps; the
// next request is served as usual.
func TestIdleConnDropsGrownBuffers(t *testing.T) {
	s, addr := start(t, http.HandlerFunc(echoHandler), nil)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	roundTrip := func(raw string) {
		t.Helper()
		io.WriteString(nc, raw)
		nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	roundTrip("GET /big HTTP/1.1\r\nHost: a\r\n" + headers(60) + "X-Big: " + strings.Repeat("y", 50<<10) + "\r\n\r\n")

	// Find the connection once it is idle again (the state's atomic store orders what serve
	// wrote before it with these reads).
	var c *conn
	for deadline := time.Now().Add(2 * time.Second); c == nil; time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		for cc := range s.conns {
			if st, _ := cc.loadState(); st == stateIdle {
				c = cc
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the connection never went idle")
		}
	}
	if n := cap(c.x.head); n > smallHead {
		t.Errorf("an idle connection holds a %d-byte head buffer, want at most %d", n, smallHead)
	}
	if x := c.x; x.req.RequestURI != "" || x.req.Header != nil || x.url.Path != "" || len(x.header) != 0 {
		t.Errorf("an idle connection still refers to the last head: target %q, %d header fields, path %q", x.req.RequestURI, len(x.req.Header), x.url.Path)
	}
	roundTrip("GET /next HTTP/1.1\r\nHost: a\r\nFoo: 1\r\n\r\n")
}

// TestBodyReadTimeout: a body read that gets nothing from the client for BodyReadTimeout fails
// with ErrBodyReadTimeout and the connection is closed after the response; a slow body that
// keeps coming, and a handler busy with something else than reading, are not cut.
func TestBodyReadTimeout(t *testing.T) {
	var rej rejects
	readErr := make(chan error, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/unread":
			// Answers without reading: the server drains the body after the handler.
		case "/slow-response":
			io.Copy(io.Discard, r.Body)
			for range 6 { // 3 s of streaming after the body is read, twice the timeout
				w.Write([]byte("x"))
				w.(http.Flusher).Flush()
				time.Sleep(500 * time.Millisecond)
			}
		default:
			b, err := io.ReadAll(r.Body)
			if r.URL.Path == "/stall" {
				readErr <- err
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusRequestTimeout)
				return
			}
			w.Write(b)
		}
	}), func(s *Server) {
		s.BodyReadTimeout = 1500 * time.Millisecond
		s.sweepEvery = 100 * time.Millisecond
		s.OnReject = rej.hook
	})
	dial := func() (net.Conn, *bufio.Reader) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return nc, bufio.NewReader(nc)
	}

	// Declares 100000 bytes, sends one, stalls.
	nc, br := dial()
	t0 := time.Now()
	io.WriteString(nc, "POST /stall HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nx")
	select {
	case err := <-readErr:
		if !errors.Is(err, ErrBodyReadTimeout) {
			t.Fatalf("the handler's body read failed with %v, want ErrBodyReadTimeout", err)
		}
		if d := time.Since(t0); d < 1400*time.Millisecond || d > 3*time.Second {
			t.Fatalf("the stalled read was cut after %v, want about 1.5 s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a stalled body read was never cut")
	}
	nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	rest, _ := io.ReadAll(br)
	if !strings.HasPrefix(string(rest), "HTTP/1.1 408 ") || !strings.Contains(string(rest), "client stopped sending") {
		t.Fatalf("after a body timeout: %q, want the handler's answer then the connection closed", rest)
	}
	rej.wait(t, "408 body_timeout")

	// A handler that does not read: the drain after it is cut too (it used to hang forever).
	nc, br = dial()
	io.WriteString(nc, "POST /unread HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nx")
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if rest, err := io.ReadAll(br); err != nil || !strings.HasPrefix(string(rest), "HTTP/1.1 200 ") {
		t.Fatalf("unread stalled body: %q (%v), want 200 then the connection closed", rest, err)
	}

	// A byte every 300 ms for 3 s: slow, but never 1.5 s without one.
	nc, br = dial()
	io.WriteString(nc, "POST /trickle HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n")
	for range 10 {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(nc, "z")
	}
	nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != strings.Repeat("z", 10) {
		t.Fatalf("trickled body: %d %q", resp.StatusCode, b)
	}

	// The body is read at once, then the handler streams for 3 s: no body read is waiting, so
	// nothing is cut, and the connection stays usable.
	io.WriteString(nc, "POST /slow-response HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
	nc.SetReadDeadline(time.Now().Add(6 * time.Second))
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "xxxxxx" {
		t.Fatalf("streamed response: %q (%v)", b, err)
	}
	io.WriteString(nc, "POST /again HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the connection was not kept after a slow response: %v", err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
		t.Fatalf("echo %q", b)
	}
}

// refused reports whether a new connection to addr is turned away at once: a 503 or a close,
// without the request being served.
func refused(t *testing.T, addr string) bool {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return true
	}
	defer nc.Close()
	io.WriteString(nc, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	nc.SetReadDeadline(time.Now().Add(time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		return !errors.Is(err, os.ErrDeadlineExceeded) // closed or reset: refused
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusServiceUnavailable
}

// keepOpen opens a connection, has one request served on it, and leaves it open and idle.
func keepOpen(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	io.WriteString(nc, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("a connection within the limit: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	return nc
}

// eventually polls cond for up to 3 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 3 s", what)
		}
	}
}

// TestMaxConns: past MaxConns, a new connection is refused at once (and reported) while the
// server keeps accepting; once one closes, a new one is served.
func TestMaxConns(t *testing.T) {
	var rej rejects
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), func(s *Server) {
		s.MaxConns = 2
		s.OnReject = rej.hook
	})
	a := keepOpen(t, addr)
	keepOpen(t, addr)
	t0 := time.Now()
	if !refused(t, addr) {
		t.Fatal("a third connection was served with MaxConns 2")
	}
	if d := time.Since(t0); d > 900*time.Millisecond {
		t.Fatalf("the refusal took %v", d)
	}
	rej.wait(t, "503 connection_limit")
	a.Close()
	eventually(t, "the closed connection's place is given back", func() bool { return s.own.InUse() == 1 })
	keepOpen(t, addr)
	if !refused(t, addr) {
		t.Fatal("a connection past the limit was served after the place was taken again")
	}
}

// TestSharedConnLimiter: two servers sharing one limiter share its budget.
func TestSharedConnLimiter(t *testing.T) {
	lim := NewConnLimiter(1)
	ok := func(w http.ResponseWriter, r *http.Request) {}
	_, addrA := start(t, http.HandlerFunc(ok), func(s *Server) { s.Limiter = lim })
	_, addrB := start(t, http.HandlerFunc(ok), func(s *Server) { s.Limiter = lim })
	a := keepOpen(t, addrA)
	if !refused(t, addrB) {
		t.Fatal("server B served a connection while A held the shared budget")
	}
	if n := lim.InUse(); n != 1 {
		t.Fatalf("InUse %d, want 1", n)
	}
	a.Close()
	eventually(t, "the place is given back", func() bool { return lim.InUse() == 0 })
	keepOpen(t, addrB)
	if !refused(t, addrA) {
		t.Fatal("server A served a connection while B held the shared budget")
	}
}

// TestConnLimitCountsHTTP2: a connection handed to the HTTP/2 server keeps its place until it
// closes.
func TestConnLimitCountsHTTP2(t *testing.T) {
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), func(s *Server) { s.MaxConns = 1 })
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("served as %s", resp.Proto)
	}
	if !refused(t, addr) {
		t.Fatal("an HTTP/1.1 connection was served while an HTTP/2 one held the only place")
	}
	tr.CloseIdleConnections()
	eventually(t, "the HTTP/2 connection's place is given back", func() bool { return s.own.InUse() == 0 })
	keepOpen(t, addr)

	// Over TLS (ALPN h2), the HTTP/2 server closes the *tls.Conn, whose Close reaches the
	// counted connection under it.
	cert := httptest.NewTLSServer(http.NotFoundHandler())
	cert.Close()
	ts, taddr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), func(s *Server) {
		s.MaxConns = 1
		s.TLSConfig = &tls.Config{Certificates: cert.TLS.Certificates, NextProtos: []string{"h2", "http/1.1"}}
	})
	ttr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	defer ttr.CloseIdleConnections()
	resp, err = (&http.Client{Transport: ttr}).Get("https://" + taddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || ts.own.InUse() != 1 {
		t.Fatalf("served as %s with %d places taken, want HTTP/2 holding 1", resp.Proto, ts.own.InUse())
	}
	ttr.CloseIdleConnections()
	eventually(t, "the TLS HTTP/2 connection's place is given back", func() bool { return ts.own.InUse() == 0 })
}

// TestDrainAcceptServesNewConnections: with DrainAccept, while Shutdown waits for an in-flight
// request, new connections are still served, one request each with "Connection: close" (TLS
// ones without h2 in ALPN); idle keep-alive connections are closed; Shutdown returns once the
// drain is quiet and the listener is closed then.
func TestDrainAcceptServesNewConnections(t *testing.T) {
	cert := httptest.NewTLSServer(http.NotFoundHandler())
	cert.Close()
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			release := make(chan struct{})
			s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					<-release
				}
				w.Write([]byte("done " + r.Proto))
			}), func(s *Server) {
				s.DrainAccept = true
				s.DrainQuiet = 300 * time.Millisecond
				if useTLS {
					s.TLSConfig = &tls.Config{Certificates: cert.TLS.Certificates, NextProtos: []string{"h2", "http/1.1"}}
				}
			})
			dial := func(draining bool) net.Conn {
				t.Helper()
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatalf("dialing: %v", err)
				}
				if useTLS {
					protos := []string{"http/1.1"}
					if draining {
						protos = []string{"h2", "http/1.1"}
					}
					tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true, NextProtos: protos})
					if err := tc.Handshake(); err != nil {
						t.Fatalf("TLS handshake: %v", err)
					}
					if p := tc.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
						t.Fatalf("ALPN %q, want http/1.1", p)
					}
					nc = tc
				}
				t.Cleanup(func() { nc.Close() })
				return nc
			}
			idle := dial(false) // a keep-alive connection, idle after a request
			io.WriteString(idle, "GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
			idle.SetReadDeadline(time.Now().Add(2 * time.Second))
			idleBr := bufio.NewReader(idle)
			if resp, err := http.ReadResponse(idleBr, nil); err != nil {
				t.Fatal(err)
			} else {
				io.Copy(io.Discard, resp.Body)
			}
			silent := dial(false) // connected, never sends a request
			slow := dial(false)
			io.WriteString(slow, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
			time.Sleep(100 * time.Millisecond)
			shut := make(chan error, 1)
			go func() { shut <- s.Shutdown(context.Background()) }()
			time.Sleep(100 * time.Millisecond)

			if _, err := idleBr.ReadByte(); err != io.EOF {
				t.Fatalf("an idle keep-alive connection: %v, want closed by Shutdown", err)
			}
			// A new connection during the drain: served, with Connection: close, then closed. It
			// takes its time to send its request: Shutdown's sweep of idle connections must
			// leave a connection that has not sent one yet.
			nc := dial(true)
			time.Sleep(50 * time.Millisecond)
			io.WriteString(nc, "GET /new HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n")
			nc.SetReadDeadline(time.Now().Add(2 * time.Second))
			got, _ := io.ReadAll(nc)
			if !strings.HasPrefix(string(got), "HTTP/1.1 200 ") || !strings.Contains(string(got), "Connection: close") ||
				!strings.HasSuffix(string(got), "done HTTP/1.1") {
				t.Fatalf("a new connection during the drain: %q, want one response with Connection: close", got)
			}
			select {
			case err := <-shut:
				t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
			default:
			}
			close(release)
			slow.SetReadDeadline(time.Now().Add(2 * time.Second))
			if got, _ := io.ReadAll(slow); !strings.Contains(string(got), "Connection: close") || !strings.HasSuffix(string(got), "done HTTP/1.1") {
				t.Fatalf("in-flight response %q", got)
			}
			select {
			case err := <-shut:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("Shutdown did not return once the drain was quiet")
			}
			// The connection that never sent a request was closed with the listener.
			silent.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("a connection that never sent a request: %v, want closed at the end of the drain", err)
			}
			if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				nc.Close()
				t.Fatal("still accepting after Shutdown returned")
			}
		})
	}
}

// TestOnRejectHearsRefusedRequests: requests the server answers itself, and heads that time
// out, are reported with the status and reason.
func TestOnRejectHearsRefusedRequests(t *testing.T) {
	var rej rejects
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), func(s *Server) {
		s.OnReject = rej.hook
		s.ReadHeaderTimeout = 300 * time.Millisecond
		s.sweepEvery = 100 * time.Millisecond
	})
	exchange(t, addr, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	rej.wait(t, "400 bad_request")
	exchange(t, addr, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n")
	rej.wait(t, "501 unsupported_transfer_encoding")
	exchange(t, addr, "GET / HTTP/3.0\r\nHost: a\r\n\r\n")
	rej.wait(t, "505 unsupported_version")
	exchange(t, addr, "GET / HTTP/1.1\r\nHost:") // then nothing: the head times out
	rej.wait(t, "408 header_timeout")
}

// TestStalledBodyDoesNotStallSweeper: a handler blocked reading the body of a client that
// stopped sending it (with the body timeout off) must not hold up the sweeper, which enforces
// every other connection's timeouts.
func TestStalledBodyDoesNotStallSweeper(t *testing.T) {
	reading := make(chan struct{}, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/upload" {
			reading <- struct{}{}
		}
		io.Copy(io.Discard, r.Body)
	}), func(s *Server) {
		s.BodyReadTimeout = -1
		s.IdleTimeout = 300 * time.Millisecond
		s.sweepEvery = 100 * time.Millisecond
	})
	up, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	io.WriteString(up, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nx")
	<-reading
	time.Sleep(500 * time.Millisecond) // the sweeper has looked at the stalled connection
	idle := keepOpen(t, addr)
	t0 := time.Now()
	idle.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF || time.Since(t0) > 2*time.Second {
		t.Fatalf("an idle connection: %v after %v, want closed by the idle timeout within ~0.5 s", err, time.Since(t0))
	}
}
