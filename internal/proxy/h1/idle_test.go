package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/idletest"
	"apoxy.dev/apoxy/internal/netpeek"
	"apoxy.dev/apoxy/internal/proxy/h2"
)

// TestIdleConnMemory: an idle keep-alive connection costs at most 1 KiB of heap and stack once
// it rests (10k idle clients: +10 MiB): its read and write buffers are pooled, what its
// requests used (head, request, header maps: requestScratch) is let go of, and its goroutine
// ends, parked in netpeek's Parker. (~700 B, of which ~400 are the net package's socket.)
func TestIdleConnMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2000 connections")
	}
	_, addr := start(t, http.HandlerFunc(idletest.Handler), func(s *Server) {
		s.IdleRest = 50 * time.Millisecond
		s.sweepEvery = 20 * time.Millisecond
	})
	const n = 2000
	base := netpeek.DefaultParker.Len()
	per := idletest.PerConn(t, addr, n, false, func() bool { return netpeek.DefaultParker.Len()-base >= n })
	t.Logf("idle HTTP/1.1 connection: %.0f bytes of heap and stack", per)
	if per > 1024 {
		t.Errorf("an idle connection costs %.0f bytes, want at most 1024", per)
	}
}

// TestParkedConnections: a parked connection serves its next request, and the idle timeout and
// Close still reach it (its goroutine comes back to let go of it: the server forgets it).
func TestParkedConnections(t *testing.T) {
	s, addr := start(t, http.HandlerFunc(idletest.Handler), func(s *Server) {
		s.IdleRest = 50 * time.Millisecond
		s.IdleTimeout = 300 * time.Millisecond
		s.sweepEvery = 50 * time.Millisecond
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	get := func(i int) {
		t.Helper()
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "ok" {
			t.Fatalf("request %d: %q", i, b)
		}
	}
	waitParked := func() {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			s.mu.Lock()
			var parked bool
			for sc := range s.conns {
				sc.parkMu.Lock()
				parked = sc.parked.Valid()
				sc.parkMu.Unlock()
			}
			s.mu.Unlock()
			if parked {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the idle connection was not parked")
			}
		}
	}
	for i := range 3 {
		get(i)
		waitParked()
	}
	// The idle timeout closes it while parked, and the server lets go of it.
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("read a byte from an idle connection")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the idle timeout did not close a parked connection")
	}
	for deadline := time.Now().Add(2 * time.Second); s.nconns.Load() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still counted after the idle timeout", s.nconns.Load())
		}
	}
}

// TestCrowdedConnectionsRest: past crowd connections waiting on their goroutine, the others
// rest as soon as they are idle, long before IdleRest (an hour here), and still serve their
// next request.
func TestCrowdedConnectionsRest(t *testing.T) {
	const crowd, n = 8, 40
	s, addr := start(t, http.HandlerFunc(idletest.Handler), func(s *Server) {
		s.IdleRest = time.Hour
		s.crowd = crowd
	})
	base := netpeek.DefaultParker.Len()
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	get := func(i int) {
		t.Helper()
		fmt.Fprintf(conns[i], "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		resp, err := http.ReadResponse(readers[i], nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
			t.Fatalf("connection %d: %q", i, b)
		}
	}
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i], readers[i] = c, bufio.NewReader(c)
		get(i)
	}
	for deadline := time.Now().Add(2 * time.Second); netpeek.DefaultParker.Len()-base < n-crowd; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d idle connections rested, want at least %d", netpeek.DefaultParker.Len()-base, n, n-crowd)
		}
	}
	if w := s.waiting.Load(); w > crowd {
		t.Errorf("%d connections wait on their goroutine, want at most %d", w, crowd)
	}
	for i := range conns {
		get(i)
	}
}

// TestIdleConnMemoryHandoff: h2c connections this server hands to the HTTP/2 server (prior
// knowledge) rest as well (the replayed preface is used up, the HTTP/1.1 buffers went back to
// their pools): ≤ 2 KiB each.
func TestIdleConnMemoryHandoff(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2000 connections")
	}
	_, addr := start(t, http.HandlerFunc(idletest.Handler), func(s *Server) {
		s.H2 = nil
		s.H2Conns = &h2.Server{Handler: http.HandlerFunc(idletest.Handler), Limits: h2.Limits{IdleRest: 50 * time.Millisecond}}
	})
	const n = 2000
	base := netpeek.DefaultParker.Len()
	per := idletest.PerConn(t, addr, n, true, func() bool { return netpeek.DefaultParker.Len()-base >= n })
	t.Logf("idle h2c connection (handed over): %.0f bytes of heap and stack", per)
	if per > 2048 {
		t.Errorf("an idle connection costs %.0f bytes, want at most 2048", per)
	}
}

// TestIdleConnMemoryTLS: TLS connections rest too, HTTP/1.1 and h2 (ALPN, handed to the
// HTTP/2 server): the wake's read past a deadline proves the TLS layer holds no decrypted bytes,
// and the goroutine ends. What is left is the socket and the tls.Conn, whose buffers and ciphers
// crypto/tls keeps for the life of the connection (its read buffer ~3.5 KiB after a handshake,
// AES-GCM state ~1.8 KiB, the Conn ~0.9 KiB): ~7.4 KiB for HTTP/1.1, ~8.3 KiB for h2 (with
// HPACK's tables and the idle timer), ≤ 12 KiB each. Awake, each held a goroutine (its stack
// grown by the handshake) and its read buffer as well.
func TestIdleConnMemoryTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2000 connections")
	}
	addr := startRestingTLS(t, 50*time.Millisecond)
	for _, h2 := range []bool{false, true} {
		name := "HTTP/1.1"
		if h2 {
			name = "h2"
		}
		t.Run(name, func(t *testing.T) {
			const n = 1000
			base := parkerDrained()
			per := idletest.PerConnTLS(t, addr, n, h2, func() bool { return netpeek.DefaultParker.Len()-base >= n })
			t.Logf("idle %s connection over TLS: %.0f bytes of heap and stack", name, per)
			if per > 12<<10 {
				t.Errorf("an idle connection costs %.0f bytes, want at most %d", per, 12<<10)
			}
		})
	}
}

// TestParkedTLSConnections: a TLS connection that rested serves its next requests on the same
// connection, HTTP/1.1 and h2.
func TestParkedTLSConnections(t *testing.T) {
	addr := startRestingTLS(t, 30*time.Millisecond)
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		t.Run(proto, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: proto == "HTTP/2.0"}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			var conns int
			trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
				if !i.Reused {
					conns++
				}
			}}
			base := parkerDrained()
			for i := range 4 {
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "https://"+addr+"/", nil)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "ok" || resp.Proto != proto {
					t.Fatalf("request %d: %s %q", i, resp.Proto, b)
				}
				if i == 3 {
					break // the last one stays awake: it is closed awake
				}
				for deadline := time.Now().Add(2 * time.Second); netpeek.DefaultParker.Len() <= base; time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("after request %d the idle TLS connection did not rest", i)
					}
				}
			}
			if conns != 1 {
				t.Errorf("%d connections for 4 requests, want 1 (kept alive across its rests)", conns)
			}
		})
	}
}

// startRestingTLS starts a TLS server (ALPN h2 handed to our HTTP/2 server) whose idle
// connections rest after rest.
func startRestingTLS(t *testing.T, rest time.Duration) string {
	cert := httptest.NewTLSServer(http.NotFoundHandler())
	cert.Close()
	_, addr := start(t, http.HandlerFunc(idletest.Handler), func(s *Server) {
		s.TLSConfig = &tls.Config{Certificates: cert.TLS.Certificates, NextProtos: []string{"h2", "http/1.1"}}
		s.IdleRest = rest
		s.sweepEvery = rest / 3
		s.H2 = nil
		s.H2Conns = &h2.Server{Handler: http.HandlerFunc(idletest.Handler), Limits: h2.Limits{IdleRest: rest}}
	})
	return addr
}

// parkerDrained returns how many connections the Parker holds once the last test's have left
// (their clients are gone; they leave as they find out), waiting up to 5 s for none.
func parkerDrained() int {
	for deadline := time.Now().Add(5 * time.Second); netpeek.DefaultParker.Len() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	return netpeek.DefaultParker.Len()
}
