package h2

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/idletest"
	"apoxy.dev/apoxy/internal/netpeek"
)

// TestIdleConnMemory: an idle HTTP/2 connection costs at most 2 KiB of heap and stack once it
// rests (10k idle clients: +20 MiB): in netpeek's Parker, without its reader goroutine,
// buffers, Framer or encoder.
func TestIdleConnMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2000 connections")
	}
	s := &Server{Handler: http.HandlerFunc(idletest.Handler), Limits: Limits{IdleRest: time.Millisecond}}
	addr := serve(t, s)
	const n = 2000
	base := netpeek.DefaultParker.Len()
	per := idletest.PerConn(t, addr, n, true, func() bool { return netpeek.DefaultParker.Len()-base >= n })
	t.Logf("idle HTTP/2 connection: %.0f bytes of heap and stack", per)
	if per > 2048 {
		t.Errorf("an idle connection costs %.0f bytes, want at most 2048", per)
	}
}

func (s *Server) parkedConns() (parked, open int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.mu.Lock()
		if c.parked.Valid() {
			parked++
		}
		c.mu.Unlock()
	}
	return parked, len(s.conns)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
	}
}

// TestParkedConnections: a resting connection serves its next requests on the same
// connection, and the idle timeout (GOAWAY), Shutdown and Close still reach it.
func TestParkedConnections(t *testing.T) {
	for _, end := range []string{"idle timeout", "shutdown", "close"} {
		t.Run(end, func(t *testing.T) {
			s := &Server{Handler: http.HandlerFunc(idletest.Handler), Limits: Limits{IdleRest: time.Millisecond, IdleTimeout: time.Hour}}
			if end == "idle timeout" {
				s.IdleTimeout = 300 * time.Millisecond
			}
			addr := serve(t, s)
			c := h2cClient()
			for i := range 3 {
				resp, err := c.Get("http://" + addr + "/")
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "ok" {
					t.Fatalf("request %d: %q", i, b)
				}
				waitFor(t, "the idle connection was not parked", func() bool { p, _ := s.parkedConns(); return p == 1 })
				if _, open := s.parkedConns(); open != 1 {
					t.Fatalf("%d connections open, want 1 (the requests share one)", open)
				}
			}
			switch end {
			case "shutdown":
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				if err := s.Shutdown(ctx); err != nil {
					t.Fatalf("Shutdown with a parked connection: %v", err)
				}
			case "close":
				s.Close()
			}
			waitFor(t, "the parked connection was not let go of", func() bool { _, open := s.parkedConns(); return open == 0 && s.nconns.Load() == 0 })
		})
	}
}
