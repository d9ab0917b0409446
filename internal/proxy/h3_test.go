package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// TestHTTP3Limits: HTTP/3 takes the listener's limits (spec.http) as the other servers do: the
// idle timeout closes a connection without requests, the header block bound refuses a larger
// one, and a change reaches the next connection while open ones keep theirs.
func TestHTTP3Limits(t *testing.T) {
	cert := httptest.NewTLSServer(http.NotFoundHandler())
	cert.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	s, err := newH3Server(pc, &tls.Config{Certificates: cert.TLS.Certificates}, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go s.serve()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.shutdown(ctx)
	}()
	url := "https://" + pc.LocalAddr().String() + "/"

	// client opens one QUIC connection and returns it with a function that sends a GET with
	// pad bytes in a header.
	client := func(t *testing.T) (*quic.Conn, func(pad int) (int, error)) {
		t.Helper()
		var conn *quic.Conn
		tr := &http3.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
			Dial: func(ctx context.Context, addr string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
				c, err := quic.DialAddrEarly(ctx, addr, tc, qc)
				conn = c
				return c, err
			},
		}
		t.Cleanup(func() { tr.Close() })
		get := func(pad int) (int, error) {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("X-Pad", strings.Repeat("p", pad))
			resp, err := (&http.Client{Transport: tr, Timeout: 3 * time.Second}).Do(req)
			if err != nil {
				return 0, err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		if code, err := get(0); code != 200 {
			t.Fatalf("GET over HTTP/3: %d, %v", code, err)
		}
		return conn, get
	}
	closedWithin := func(c *quic.Conn, d time.Duration) bool {
		select {
		case <-c.Context().Done():
			return true
		case <-time.After(d):
			return false
		}
	}

	// Defaults: 120 s idle, 64 KiB of header block.
	before, get := client(t)
	if code, err := get(16 << 10); code != 200 {
		t.Fatalf("a 16 KiB header under the default bound: %d, %v", code, err)
	}

	s.setLimits(h3Limits{IdleTimeout: 300 * time.Millisecond, MaxHeaderBytes: 1024})
	_, get = client(t)
	if code, err := get(4 << 10); code == 200 {
		t.Fatalf("a 4 KiB header over a 1 KiB bound: %d, %v; want it refused", code, err)
	}
	after, _ := client(t)
	if !closedWithin(after, 3*time.Second) {
		t.Fatal("a connection idle past its 300 ms idle timeout is still open")
	}
	if closedWithin(before, 100*time.Millisecond) {
		t.Fatal("a connection opened under the 120 s idle timeout was closed by the new limits")
	}
}
