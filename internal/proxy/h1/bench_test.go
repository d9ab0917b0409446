package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkServer compares our server with net/http's on one keep-alive connection over
// loopback: a request with a few typical headers, a 128-byte response with a length. Run with
// -benchmem: allocations per request are the point.
func BenchmarkServer(b *testing.B) {
	body := []byte(strings.Repeat("x", 128))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Header()["Content-Length"] = []string{"128"}
		w.Write(body)
	})
	req := "GET /bench/path?q=1 HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: wrk\r\nAccept: */*\r\nAccept-Encoding: gzip\r\nX-Request-Id: 0123456789abcdef\r\n\r\n"
	run := func(b *testing.B, serve func(net.Listener)) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go serve(ln)
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := io.WriteString(c, req); err != nil {
				b.Fatal(err)
			}
			if err := readRaw(br); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("h1", func(b *testing.B) {
		s := &Server{Handler: h}
		defer s.Close()
		run(b, func(ln net.Listener) { s.Serve(ln) })
	})
	b.Run("net-http", func(b *testing.B) {
		s := &http.Server{Handler: h}
		defer s.Close()
		run(b, func(ln net.Listener) { s.Serve(ln) })
	})
}

// readRaw reads one response with a Content-Length without allocating, so that the
// benchmark's allocations are the server's.
func readRaw(br *bufio.Reader) error {
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > 16 && strings.EqualFold(string(line[:15]), "Content-Length:") {
			for _, c := range line[15:] {
				if c >= '0' && c <= '9' {
					n = n*10 + int(c-'0')
				}
			}
		}
	}
	_, err := br.Discard(n)
	return err
}
