package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// serve runs s on a loopback listener (cleartext, prior knowledge) until the test ends.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); _ = s.ServeConn(nc) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.Close(); wg.Wait() })
	return ln.Addr().String()
}

// h2cClient is a real HTTP/2 client (x/net's Transport) speaking prior-knowledge h2c.
func h2cClient() *http.Client {
	return &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}, Timeout: 10 * time.Second}
}

func TestRequestResponse(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("Trailer", "X-Sum")
		fmt.Fprintf(w, "%s %s %s host=%s cookie=%q len=%d body=%d", r.Proto, r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("Cookie"), r.ContentLength, len(body))
		w.Header().Set("X-Sum", "42")
	})}
	addr := serve(t, s)
	c := h2cClient()
	req, _ := http.NewRequest("POST", "http://"+addr+"/a/b?c=d", strings.NewReader(strings.Repeat("x", 3<<20)))
	req.Header.Add("Cookie", "a=1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf("HTTP/2.0 POST /a/b?c=d host=%s cookie=\"a=1\" len=%d body=%d", addr, 3<<20, 3<<20)
	if string(b) != want || resp.Header.Get("X-Method") != "POST" || resp.Trailer.Get("X-Sum") != "42" {
		t.Errorf("got %q trailer %v, want %q", b, resp.Trailer, want)
	}
	// A large response, past every window.
	s.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("y"), 5<<20))
	})
	resp, err = c.Get("http://" + addr + "/big")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n != 5<<20 {
		t.Errorf("big response: %d bytes", n)
	}
	// Many concurrent streams on one connection.
	s.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) })
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(fmt.Sprintf("http://%s/%d", addr, i))
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != fmt.Sprintf("/%d", i) || resp.ContentLength != int64(len(b)) {
				t.Errorf("stream %d: %q length %d", i, b, resp.ContentLength)
			}
		}()
	}
	wg.Wait()
}
