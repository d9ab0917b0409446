package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"apoxy.dev/apoxy/internal/h2spectest"
	"apoxy.dev/apoxy/internal/ir"
)

// syncBuffer is an access log the test can read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// exchange writes raw bytes on a new connection and reads one response.
func exchange(t *testing.T, addr, raw string, thenWait time.Duration) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10*time.Second + thenWait))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%.40q: %v", raw, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

// waitLog waits until the access log holds a line with every fragment.
func waitLog(t *testing.T, log *syncBuffer, fragments ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for line := range strings.SplitSeq(log.String(), "\n") {
			ok := true
			for _, f := range fragments {
				ok = ok && strings.Contains(line, f)
			}
			if ok {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no access-log line with %q in:\n%s", fragments, log.String())
}

// TestClientFaultsAreLoggedAsSuch: requests the server refuses before routing (an oversized
// head) appear in the access log (W8), and an upload that is malformed or stalls is answered
// and logged as the client's fault, 400 or 408 with the bytes actually read, not as an upstream
// failure (W3, F7).
func TestClientFaultsAreLoggedAsSuch(t *testing.T) {
	log := &syncBuffer{}
	addr := hygieneServer(t, Options{AccessLog: log, BodyReadTimeout: time.Second})

	code, _ := exchange(t, addr, "GET /public/x HTTP/1.1\r\nHost: files.test\r\nX-Big: "+strings.Repeat("a", 70<<10)+"\r\n\r\n", 0)
	if code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("70 KiB head: %d, want 431", code)
	}
	waitLog(t, log, `"status":431`, `header_too_large`)

	var many strings.Builder
	for i := range 101 {
		many.WriteString("X-H" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + ": v\r\n")
	}
	if code, _ := exchange(t, addr, "GET /public/x HTTP/1.1\r\nHost: files.test\r\n"+many.String()+"\r\n", 0); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("101 header fields: %d, want 431", code)
	}

	code, body := exchange(t, addr, "POST /public/x HTTP/1.1\r\nHost: files.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n", 0)
	if code != http.StatusBadRequest {
		t.Fatalf("malformed chunked upload: %d %q, want 400", code, body)
	}
	waitLog(t, log, `"status":400`, `"bytes_received":5`, `"route":"public"`)

	start := time.Now()
	code, _ = exchange(t, addr, "POST /public/x HTTP/1.1\r\nHost: files.test\r\nContent-Length: 100000\r\n\r\nx", 5*time.Second)
	if code != http.StatusRequestTimeout {
		t.Fatalf("stalled upload: %d, want 408", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stalled upload answered after %v with a 1 s body timeout", d)
	}
	waitLog(t, log, `"status":408`, `"bytes_received":1`)

	// The same stall over HTTP/2 (h2c): the stream's body read times out, 408.
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("x"))
	req, _ := http.NewRequest("POST", "http://"+addr+"/public/h2", pr)
	req.Host = "files.test"
	req.ContentLength = 100000
	start = time.Now()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("stalled h2c upload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled h2c upload: %d, want 408", resp.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stalled h2c upload answered after %v with a 1 s body timeout", d)
	}
	waitLog(t, log, `"status":408`, `"protocol":"HTTP/2"`, `body read timeout`)
}

// TestListenerHTTPLimits: a listener's client limits (the Proxy's spec.http) reach both
// servers, HTTP/1.1 (the head size: 431 past it) and HTTP/2 (SETTINGS advertised to h2c
// clients), and a new configuration changes them on the same socket without rebinding: the
// next connection takes the new limits.
func TestListenerHTTPLimits(t *testing.T) {
	s := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DrainTimeout: time.Second})
	t.Cleanup(s.Close)
	snap := func(version string, lim *ir.HTTPLimits) *ir.Snapshot {
		return &ir.Snapshot{Version: version, Listeners: []*ir.Listener{{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolHTTP, HTTP: lim,
			VirtualHosts: []*ir.VirtualHost{{Hostname: "*", Routes: []*ir.Route{{Name: "ok", Match: ir.Match{PathType: ir.PathPrefix, Path: "/"}, DirectResponse: &ir.DirectResponse{StatusCode: 200, Body: "ok"}}}}}}}}
	}
	if err := s.Apply("p", snap("1", &ir.HTTPLimits{MaxRequestHeaderBytes: 2048, MaxConcurrentStreams: 5, InitialStreamWindowSize: 1 << 17})); err != nil {
		t.Fatal(err)
	}
	addr := s.Addrs()["127.0.0.1:0"]
	head := func(pad int) string {
		return "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + strings.Repeat("p", pad) + "\r\nConnection: close\r\n\r\n"
	}
	if code, _ := exchange(t, addr, head(1000), 0); code != 200 {
		t.Fatalf("a 1 KiB head under a 2 KiB limit: %d, want 200", code)
	}
	if code, _ := exchange(t, addr, head(3000), 0); code != 431 {
		t.Fatalf("a 3 KiB head over a 2 KiB limit: %d, want 431", code)
	}
	if got := h2spectest.Settings(t, addr); got[http2.SettingMaxConcurrentStreams] != 5 || got[http2.SettingMaxHeaderListSize] != 2048 || got[http2.SettingInitialWindowSize] != 1<<17 {
		t.Fatalf("h2c SETTINGS %v, want 5 streams, header list 2048, window 131072", got)
	}

	if err := s.Apply("p", snap("2", &ir.HTTPLimits{MaxRequestHeaderBytes: 8192, MaxConcurrentStreams: 9})); err != nil {
		t.Fatal(err)
	}
	if a := s.Addrs()["127.0.0.1:0"]; a != addr {
		t.Fatalf("the listener moved from %s to %s: limits must not rebind it", addr, a)
	}
	if code, _ := exchange(t, addr, head(3000), 0); code != 200 {
		t.Fatalf("a 3 KiB head under the new 8 KiB limit: %d, want 200", code)
	}
	if got := h2spectest.Settings(t, addr); got[http2.SettingMaxConcurrentStreams] != 9 || got[http2.SettingMaxHeaderListSize] != 8192 || got[http2.SettingInitialWindowSize] != 1<<20 {
		t.Fatalf("h2c SETTINGS after the change %v, want 9 streams, header list 8192, the default window", got)
	}

	// Another project on the same socket: neither project's limits hold the other's clients.
	other := snap("1", &ir.HTTPLimits{MaxConcurrentStreams: 1})
	other.Listeners[0].VirtualHosts[0].Hostname = "q.example.com"
	if err := s.Apply("q", other); err != nil {
		t.Fatal(err)
	}
	if got := h2spectest.Settings(t, addr); got[http2.SettingMaxConcurrentStreams] != 250 || got[http2.SettingMaxHeaderListSize] != 64<<10 {
		t.Fatalf("h2c SETTINGS on a socket two projects share %v, want the defaults (250 streams, header list 65536)", got)
	}
}
