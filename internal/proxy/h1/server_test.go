package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
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

// start serves h on loopback with our server (HTTP/2 handed to net/http) and returns the
// address.
func start(t *testing.T, h http.Handler, tune func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h2 := &http.Server{Handler: h, Protocols: new(http.Protocols)}
	h2.Protocols.SetHTTP2(true)
	h2.Protocols.SetUnencryptedHTTP2(true)
	s := &Server{Handler: h, H2: h2, Limits: Limits{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}}
	if tune != nil {
		tune(s)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return s, ln.Addr().String()
}

// exchange writes raw bytes on a new connection and returns everything read until the server
// closes it (or 2 s pass).
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	out, _ := io.ReadAll(c)
	return string(out)
}

func echoHandler(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-Host", r.Host)
	w.Header().Set("X-Path", r.URL.Path)
	w.Header().Set("X-Query", r.URL.RawQuery)
	w.Header().Set("X-Length", fmt.Sprint(r.ContentLength))
	w.Header().Set("X-Foo", strings.Join(r.Header.Values("Foo"), "|"))
	w.Write(b)
}

func TestKeepAliveRequestsAndBodies(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(echoHandler), nil)
	var conns atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
		conns.Add(1)
		return (&net.Dialer{}).DialContext(ctx, n, a)
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	big := strings.Repeat("x", 100<<10)
	cases := []struct {
		name, method, path, body string
		chunked                  bool
	}{
		{"get", "GET", "/a/b?c=d", "", false},
		{"post with length", "POST", "/p", "hello", false},
		{"chunked upload", "PUT", "/u", big, true},
		{"large with length", "POST", "/l", big, false},
	}
	for _, tc := range cases {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // unknown length: chunked
			}
		}
		req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, body)
		req.Header.Add("Foo", "1")
		req.Header.Add("Foo", "2")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != tc.body {
			t.Fatalf("%s: status %d, %d bytes back, want %d", tc.name, resp.StatusCode, len(got), len(tc.body))
		}
		wantLen := fmt.Sprint(len(tc.body))
		if tc.chunked {
			wantLen = "-1"
		}
		path, query, _ := strings.Cut(tc.path, "?")
		if h := resp.Header; h.Get("X-Method") != tc.method || h.Get("X-Host") != addr || h.Get("X-Path") != path || h.Get("X-Query") != query || h.Get("X-Length") != wantLen || h.Get("X-Foo") != "1|2" {
			t.Fatalf("%s: the handler saw %v", tc.name, h)
		}
		// Small bodies get a length; big ones of unknown length are chunked.
		if len(tc.body) <= bufferBeforeCommit && resp.ContentLength != int64(len(tc.body)) {
			t.Fatalf("%s: Content-Length %d, want %d", tc.name, resp.ContentLength, len(tc.body))
		}
		if len(tc.body) > bufferBeforeCommit && resp.ContentLength != -1 {
			t.Fatalf("%s: a body written without a length must be chunked, got length %d", tc.name, resp.ContentLength)
		}
		if resp.Header.Get("Date") == "" || tc.body != "" && resp.Header.Get("Content-Type") == "" {
			t.Fatalf("%s: Date and sniffed Content-Type expected, got %v", tc.name, resp.Header)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections used, want 1 (keep-alive)", n)
	}
}

// TestLeanIdleConnections: with many connections open, idle ones wait without buffers; requests
// (pipelined ones too) still come through whole.
func TestLeanIdleConnections(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(echoHandler), func(s *Server) { s.leanIdle = true })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 3 {
		time.Sleep(20 * time.Millisecond)
		req := fmt.Sprintf("POST /%d HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", i)
		io.WriteString(c, req+req)
		for range 2 {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != "hi" || resp.Header.Get("X-Path") != fmt.Sprintf("/%d", i) {
				t.Fatalf("round %d: %q %v", i, b, resp.Header)
			}
		}
	}
}

func TestResponseFraming(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.WriteHeader(304)
		case "/length":
			w.Header().Set("Content-Length", "5")
			w.Write([]byte("hello"))
		case "/short":
			w.Header().Set("Content-Length", "10")
			w.Write([]byte("hello"))
		case "/trailers":
			w.Header().Set("Trailer", "X-Sum")
			w.Write([]byte("abc"))
			w.Header().Set("X-Sum", "42")
		case "/flush":
			w.Write([]byte("a"))
			w.(http.Flusher).Flush()
			w.Write([]byte("b"))
		case "/hints":
			w.Header().Set("Link", "</s.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Write([]byte("done"))
		case "/newline":
			w.Header().Set("X-Bad", "a\r\nX-Injected: 1")
		default:
			w.Write([]byte("hello"))
		}
	}), nil)
	for _, tc := range []struct{ raw, want, notWant string }{
		{"GET /204 HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 204 No Content\r\n", "Content-Length"},
		{"GET /304 HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 304 Not Modified\r\n", "Transfer-Encoding"},
		{"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "Content-Length: 5\r\n", "hello"},
		{"GET /length HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "Content-Length: 5\r\n", "chunked"},
		{"GET /trailers HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "3\r\nabc\r\n0\r\nX-Sum: 42\r\n\r\n", ""},
		{"GET /flush HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "1\r\na\r\n1\r\nb\r\n0\r\n\r\n", ""},
		{"GET /hints HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n", ""},
		{"GET /newline HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "X-Bad: a X-Injected: 1\r\n", "\nX-Injected"},
		// HTTP/1.0: kept alive only when asked; unknown length ends with the connection.
		{"GET / HTTP/1.0\r\n\r\n", "Connection: close\r\n", ""},
		{"GET /flush HTTP/1.0\r\n\r\n", "\r\n\r\nab", "chunked"},
	} {
		got := exchange(t, addr, tc.raw)
		if !strings.Contains(got, tc.want) || tc.notWant != "" && strings.Contains(got, tc.notWant) {
			t.Errorf("%q:\n%s\nwant %q, not %q", tc.raw, got, tc.want, tc.notWant)
		}
	}
	// A handler that writes less than its Content-Length leaves the client waiting: the
	// connection is closed after it.
	if got := exchange(t, addr, "GET /short HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"); strings.Count(got, "HTTP/1.1 200") != 1 {
		t.Errorf("after a short body the connection must close:\n%s", got)
	}
}

// TestRejectsMalformedRequests: what a proxy must not guess at, because another hop could read
// it differently (request smuggling), is refused with a 4xx/5xx and the connection is closed.
func TestRejectsMalformedRequests(t *testing.T) {
	var served atomic.Int32
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.Copy(io.Discard, r.Body)
	}), func(s *Server) { s.MaxHeaderBytes = 1024 })
	for _, tc := range []struct{ name, raw, status string }{
		{"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
		{"conflicting CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "400"},
		{"signed CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", "400"},
		{"TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501"},
		{"two TE", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "501"},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", "400"},
		{"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n", "400"},
		{"CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r2\r\n\r\n", "400"},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", "400"},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"},
		{"bad Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "400"},
		{"bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
		{"bad target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
		{"HTTP/2 without preface", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "505"},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 8000) + "\r\n\r\n", "431"},
		{"Expect other", "POST / HTTP/1.1\r\nHost: a\r\nExpect: bananas\r\nContent-Length: 1\r\n\r\na", "417"},
	} {
		got := exchange(t, addr, tc.raw)
		if !strings.HasPrefix(got, "HTTP/1.1 "+tc.status+" ") || !strings.Contains(got, "Connection: close") {
			t.Errorf("%s: got %q, want status %s and Connection: close", tc.name, got, tc.status)
		}
	}
	// A malformed chunked body: the handler sees an error and the connection is not reused.
	got := exchange(t, addr, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if n := strings.Count(got, "HTTP/1.1 200"); n != 1 {
		t.Errorf("malformed chunked body: %d responses, want only the first:\n%s", n, got)
	}
	if n := served.Load(); n != 1 {
		t.Errorf("the handler ran %d times, want once (for the malformed chunked body only)", n)
	}
}

func TestPipelinedRequestsAnswerInOrder(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(r.URL.Path))
	}), nil)
	got := exchange(t, addr, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcPOST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=1\r\nz\r\n0\r\nT: 1\r\n\r\n\r\nGET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	var paths []string
	br := bufio.NewReader(strings.NewReader(got))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		b, _ := io.ReadAll(resp.Body)
		paths = append(paths, string(b))
	}
	if strings.Join(paths, ",") != "/1,/2,/3,/4" {
		t.Fatalf("responses %v, want /1,/2,/3,/4 (raw:\n%s)", paths, got)
	}
}

func TestUnreadBodyIsDrainedOrConnectionClosed(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	small := "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	if got := exchange(t, addr, small); strings.Count(got, "HTTP/1.1 200") != 2 {
		t.Errorf("a small unread body is drained and the next request served:\n%s", got)
	}
	big := "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n" + strings.Repeat("x", 1000000) + "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	if got := exchange(t, addr, big); strings.Count(got, "HTTP/1.1 200") != 1 {
		t.Errorf("past 256 KiB of unread body the connection closes:\n%.300s", got)
	}
}

// The server drains the body it framed even when the handler replaced r.Body with a wrapper
// (as the proxy does to count bytes) and read none of it.
func TestUnreadWrappedBodyIsDrained(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = io.NopCloser(r.Body)
	}), nil)
	req := "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 35\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	if got := exchange(t, addr, req); strings.Count(got, "HTTP/1.1 200") != 2 {
		t.Errorf("the wrapped, unread body must be drained, not served as a request (want 2 responses):\n%s", got)
	}
}

// Full duplex: a handler that answers while another goroutine waits for more of the body (an
// edge function echoing a stream) gets its head to the client; the read blocked on the client
// must not hold the head back (it did: both took the body's lock, a deadlock until the body
// timed out).
func TestHeadWhileABodyReadWaits(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := make(chan []byte)
		go func() {
			b, _ := io.ReadAll(r.Body)
			got <- b
		}()
		time.Sleep(50 * time.Millisecond) // the reader is now blocked on the client
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		w.Write(<-got)
	}), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nping\r\n")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || status != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("no response head while the request body is open: %q %v", status, err)
	}
	io.WriteString(c, "0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(status), br)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "ping" {
		t.Fatalf("echo %q %v", b, err)
	}
}

func TestExpectContinue(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reject" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	io.WriteString(c, "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q (%v), want 100 Continue before the body is sent", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "body")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "body" {
		t.Fatalf("echo %q", b)
	}
	// A handler that answers without reading: no 100, and the connection closes since the
	// body was never sent.
	got := exchange(t, addr, "PUT /reject HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 403") || strings.Contains(got, "100 Continue") || !strings.Contains(got, "Connection: close") {
		t.Fatalf("rejected expect-continue: %q", got)
	}
}

func TestHijack(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer nc.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		line, _ := rw.ReadString('\n')
		rw.WriteString("echo: " + line)
		rw.Flush()
	}), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The first bytes after the head arrive with it: they must reach the hijacker.
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhi\n")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(got), "HTTP/1.1 101") || !strings.HasSuffix(string(got), "echo: hi\n") {
		t.Fatalf("got %q", got)
	}
}

func TestHTTP2IsHandedOver(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.Proto) })
	// Cleartext prior-knowledge h2c.
	_, addr := start(t, h, nil)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "HTTP/2.0" {
		t.Fatalf("h2c: served as %q", b)
	}
	// TLS: ALPN h2 goes to net/http, http/1.1 stays here.
	cert := httptest.NewTLSServer(h)
	cert.Close()
	tlsCfg := &tls.Config{Certificates: cert.TLS.Certificates, NextProtos: []string{"h2", "http/1.1"}}
	_, taddr := start(t, h, func(s *Server) { s.TLSConfig = tlsCfg })
	for _, tc := range []struct {
		h2   bool
		want string
	}{{true, "HTTP/2.0"}, {false, "HTTP/1.1"}} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: tc.h2}
		if !tc.h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + taddr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if string(b) != tc.want || resp.TLS == nil {
			t.Fatalf("TLS: served as %q, want %q", b, tc.want)
		}
	}
}

func TestTimeoutsCloseConnections(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), func(s *Server) {
		s.IdleTimeout = 500 * time.Millisecond
		s.ReadHeaderTimeout = 500 * time.Millisecond
	})
	for _, raw := range []string{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost:"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, raw)
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadAll(c)
		c.Close()
		// The sweeper runs every second: closed within timeout + 1 s (+ slack).
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%q: connection closed after %v, want within ~1.5 s", raw, d)
		}
	}
}

func TestClientGoneCancelsRequestContext(t *testing.T) {
	cancelled := make(chan time.Duration, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		select {
		case <-r.Context().Done():
			cancelled <- time.Since(t0)
		case <-time.After(5 * time.Second):
			cancelled <- -1
		}
	}), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	c.Close()
	if d := <-cancelled; d < 0 || d > 3*time.Second {
		t.Fatalf("the request context was cancelled after %v, want within ~2 s of the client leaving", d)
	}
}

func TestShutdownFinishesActiveRequests(t *testing.T) {
	release := make(chan struct{})
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Write([]byte("done"))
	}), nil)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	got := make(chan string, 1)
	go func() { got <- exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n") }()
	time.Sleep(100 * time.Millisecond)
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: %v, want closed by Shutdown", err)
	}
	select {
	case <-shut:
		t.Fatal("Shutdown returned while a request was in flight")
	default:
	}
	close(release)
	if r := <-got; !strings.HasSuffix(r, "done") || !strings.Contains(r, "Connection: close") {
		t.Fatalf("in-flight response %q", r)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

func TestHandlerPanicClosesConnection(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			w.Write(bytes.Repeat([]byte("x"), 10000))
			panic(http.ErrAbortHandler)
		}
		panic("boom")
	}), nil)
	if got := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); got != "" {
		t.Fatalf("a panicking handler: %q, want the connection closed", got)
	}
	// A response broken off mid-body must not look complete: no terminating chunk.
	if got := exchange(t, addr, "GET /abort HTTP/1.1\r\nHost: a\r\n\r\n"); strings.HasSuffix(got, "0\r\n\r\n") {
		t.Fatal("an aborted chunked response ended with the last chunk")
	}
}
