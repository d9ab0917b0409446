package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func newTestH1(t *testing.T) *h1Client {
	d := &net.Dialer{}
	c := newH1Client(d.DialContext, time.Minute)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func get(t *testing.T, c *h1Client, method, url string, body io.Reader, n int64) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	req.ContentLength = n
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestH1ClientReusesAndFrames: connections are reused across requests; fixed-length,
// chunked (unknown-length upload echoed back), HEAD and 204 exchanges are framed right; a
// 103 before the final response is skipped; trailers arrive.
func TestH1ClientReusesAndFrames(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("X-TE", strings.Join(r.TransferEncoding, ","))
			io.Copy(w, r.Body)
		case "/early":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Write([]byte("after hints"))
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			w.Write([]byte("body"))
			w.Header().Set("X-Sum", "42")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Write([]byte("hello " + r.Method + " " + r.Host + " " + r.Header.Get("X-A")))
		}
	}))
	startCounting(t, srv, &conns)
	c := newTestH1(t)
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		req.Host = "api.example.com"
		req.Header.Set("X-A", "1")
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "hello GET api.example.com 1" {
			t.Fatalf("got %q", b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 sequential requests, want 1 (reuse)", n)
	}
	if resp, b := get(t, c, "POST", srv.URL+"/echo", io.MultiReader(strings.NewReader("chunk-1 "), strings.NewReader("chunk-2")), -1); b != "chunk-1 chunk-2" || resp.Header.Get("X-TE") != "chunked" {
		t.Errorf("chunked upload: %q (TE %q)", b, resp.Header.Get("X-TE"))
	}
	if _, b := get(t, c, "PUT", srv.URL+"/echo", strings.NewReader("fixed"), 5); b != "fixed" {
		t.Errorf("fixed upload: %q", b)
	}
	if resp, b := get(t, c, "HEAD", srv.URL+"/", nil, 0); resp.StatusCode != 200 || b != "" {
		t.Errorf("HEAD: %d %q", resp.StatusCode, b)
	}
	if resp, b := get(t, c, "GET", srv.URL+"/empty", nil, 0); resp.StatusCode != 204 || b != "" {
		t.Errorf("204: %d %q", resp.StatusCode, b)
	}
	if resp, b := get(t, c, "GET", srv.URL+"/early", nil, 0); resp.StatusCode != 200 || b != "after hints" {
		t.Errorf("after 103: %d %q", resp.StatusCode, b)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/trailer", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Trailer.Get("X-Sum") != "42" {
		t.Errorf("trailer %v", resp.Trailer)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections after all exchanges, want 1", n)
	}
}

// startCounting starts srv, counting the connections it accepts.
func startCounting(t *testing.T, srv *httptest.Server, conns *atomic.Int32) {
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
}

// oneShotServer answers one request per connection (echoing its body), waits linger, then
// closes the connection without saying so (no "Connection: close").
func oneShotServer(t *testing.T, linger time.Duration) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				req, err := http.ReadRequest(bufio.NewReader(nc))
				if err != nil {
					return
				}
				b, _ := io.ReadAll(req.Body)
				if len(b) == 0 {
					b = []byte("ok")
				}
				fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
				time.Sleep(linger)
			}()
		}
	}()
	return ln
}

// TestH1ClientRetriesStaleConnection: the upstream closes an idle pooled connection; the next
// bodiless request goes out again on a fresh one instead of failing.
func TestH1ClientRetriesStaleConnection(t *testing.T) {
	ln := oneShotServer(t, 50*time.Millisecond)
	c := newTestH1(t)
	url := "http://" + ln.Addr().String() + "/"
	get(t, c, "GET", url, nil, 0)
	time.Sleep(150 * time.Millisecond) // the server has closed the pooled connection
	if _, b := get(t, c, "GET", url, nil, 0); b != "ok" {
		t.Errorf("after a stale connection: %q", b)
	}
}

// TestH1ClientCancelAndAbandon: cancelling the context interrupts a request waiting for its
// response; a body closed before its end does not return the connection to the pool.
func TestH1ClientCancelAndAbandon(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-r.Context().Done()
			return
		}
		w.Write([]byte(strings.Repeat("x", 100<<10)))
	}))
	startCounting(t, srv, &conns)
	c := newTestH1(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/slow", nil)
	start := time.Now()
	if _, err := c.RoundTrip(req); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("cancelled request: err %v after %v", err, time.Since(start))
	}
	req, _ = http.NewRequest("GET", srv.URL+"/big", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close() // abandoned with most of the body unread
	before := conns.Load()
	get(t, c, "GET", srv.URL+"/big", nil, 0)
	if conns.Load() != before+1 {
		t.Errorf("a connection with an unread body was reused")
	}
}

// parentDeadline is a context with a deadline over a parent whose Done does not fire at the
// deadline, like the gateway's request contexts: the client applies the deadline itself.
type parentDeadline struct {
	context.Context
	deadline time.Time
}

func (c parentDeadline) Deadline() (time.Time, bool) { return c.deadline, true }
func (c parentDeadline) Err() error {
	if time.Now().After(c.deadline) {
		return context.DeadlineExceeded
	}
	return c.Context.Err()
}

// TestH1ClientDeadlineBoundsTheHead: the deadline fails a response head that does not come in
// time with DeadlineExceeded, but a body that starts in time may stream past it.
func TestH1ClientDeadlineBoundsTheHead(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-head" {
			time.Sleep(300 * time.Millisecond)
		}
		w.Write([]byte("start "))
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond)
		w.Write([]byte("end"))
	}))
	defer srv.Close()
	c := newTestH1(t)
	ctx := parentDeadline{context.Background(), time.Now().Add(150 * time.Millisecond)}
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/slow-head", nil)
	if _, err := c.RoundTrip(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow head: %v, want DeadlineExceeded", err)
	}
	ctx = parentDeadline{context.Background(), time.Now().Add(150 * time.Millisecond)}
	req, _ = http.NewRequestWithContext(ctx, "GET", srv.URL+"/stream", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "start end" {
		t.Errorf("streamed body past the deadline: %q, %v", b, err)
	}
}

// TestH1ClientSkipsClosedIdleConnection: a POST (whose body cannot be sent twice) after the
// upstream closed the pooled connection still succeeds, because the closed connection is
// noticed before use.
func TestH1ClientSkipsClosedIdleConnection(t *testing.T) {
	ln := oneShotServer(t, 0)
	c := newTestH1(t)
	url := "http://" + ln.Addr().String() + "/"
	get(t, c, "POST", url, strings.NewReader("one"), 3)
	time.Sleep(probeAfter + 100*time.Millisecond)
	req, _ := http.NewRequest("POST", url, io.NopCloser(strings.NewReader("two")))
	req.ContentLength = 3
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatalf("POST after the upstream closed the idle connection: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "two" {
		t.Errorf("body %q", b)
	}
}

// TestH1BodyAbort: Abort from another goroutine interrupts a body read blocked on a quiet
// stream, and the connection is not reused.
func TestH1BodyAbort(t *testing.T) {
	var conns atomic.Int32 // counted only to start the server
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("event 1\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	startCounting(t, srv, &conns)
	c := newTestH1(t)
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	resp.Body.Read(buf)
	time.AfterFunc(100*time.Millisecond, resp.Body.(interface{ Abort() }).Abort)
	start := time.Now()
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			break
		}
	}
	resp.Body.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("read returned %v after Abort", d)
	}
	c.mu.Lock()
	pooled := len(c.idle[srv.Listener.Addr().String()])
	c.mu.Unlock()
	if pooled != 0 {
		t.Errorf("an aborted connection went back to the pool")
	}
}

// TestH1ClientEarlyResponseDuringUpload: an upstream that answers (413) before reading a large
// body and closes gives that answer, not a transport error.
func TestH1ClientEarlyResponseDuringUpload(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(nc)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				io.WriteString(nc, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n")
				nc.(*net.TCPConn).CloseRead() // what remains of the body is refused (RST on write)
				time.Sleep(100 * time.Millisecond)
				nc.Close()
			}()
		}
	}()
	c := newTestH1(t)
	body := strings.NewReader(strings.Repeat("x", 64<<20))
	req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/upload", body)
	req.ContentLength = 64 << 20
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatalf("early answer lost: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || string(b) != "too big\n" {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
}

// TestH1ClientClosesIdleConnections: a pooled connection nobody reuses is closed once it has
// idled for the idle timeout (a TrafficPolicy's timeouts.connectionIdle), without a request
// coming to notice; one reused in time stays open.
func TestH1ClientClosesIdleConnections(t *testing.T) {
	var closed atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	d := &net.Dialer{}
	c := newH1Client(d.DialContext, 300*time.Millisecond)
	defer c.CloseIdleConnections()
	url := srv.URL + "/"
	get(t, c, "GET", url, nil, 0)
	for i := 0; i < 4; i++ { // reused every 100 ms: never idle long enough
		time.Sleep(100 * time.Millisecond)
		if resp, _ := get(t, c, "GET", url, nil, 0); resp == nil {
			t.Fatal("no response")
		}
	}
	if n := closed.Load(); n != 0 {
		t.Fatalf("%d connections closed while in use", n)
	}
	deadline := time.Now().Add(3 * time.Second)
	for closed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if closed.Load() != 1 {
		t.Fatalf("the idle connection was not closed by the client (closed %d)", closed.Load())
	}
	c.mu.Lock()
	n := len(c.idle)
	c.mu.Unlock()
	if n != 0 {
		t.Errorf("pool still lists %d addresses", n)
	}
}
