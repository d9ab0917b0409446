// Command idleconns opens -n keep-alive connections to -addr, sends one GET on each (so the
// server holds them as idle keep-alive connections, with whatever per-connection state it keeps
// after a request), prints "ready" and holds them until stdin closes. `make bench` reads the
// gateway's RSS before and after to report what idle clients cost; internal/idletest runs it
// against a server in a test process. With -h2 each connection speaks HTTP/2 with prior
// knowledge (h2c): preface, SETTINGS, one GET on stream 1. With -tls each connection is TLS
// first (ALPN h2 with -h2, else http/1.1; the server's certificate is not verified).
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18077", "server host:port")
	n := flag.Int("n", 10000, "connections")
	h2 := flag.Bool("h2", false, "speak HTTP/2 (h2c, prior knowledge)")
	useTLS := flag.Bool("tls", false, "TLS first (ALPN h2 with -h2, else http/1.1)")
	flag.Parse()
	conns := make([]net.Conn, 0, *n)
	for i := 0; i < *n; i++ {
		c, err := net.DialTimeout("tcp", *addr, 5*time.Second)
		if err != nil {
			log.Fatalf("connection %d: %v", i, err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		scheme := "http"
		if *useTLS {
			proto := "http/1.1"
			if *h2 {
				proto = "h2"
			}
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{proto}})
			if err := tc.Handshake(); err != nil {
				log.Fatalf("connection %d: %v", i, err)
			}
			c, scheme = tc, "https"
		}
		if *h2 {
			err = getH2(c, *addr, scheme)
		} else {
			err = getH1(c, *addr)
		}
		if err != nil {
			log.Fatalf("connection %d: %v", i, err)
		}
		_ = c.SetDeadline(time.Time{})
		conns = append(conns, c)
	}
	fmt.Println("ready", len(conns))
	io.Copy(io.Discard, os.Stdin)
}

func getH1(c net.Conn, addr string) error {
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func getH2(c net.Conn, addr, scheme string) error {
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return err
	}
	fr := http2.NewFramer(c, c)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", scheme}, {":authority", addr}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteSettings(); err != nil {
		return err
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		return err
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return err
				}
			}
		case *http2.GoAwayFrame:
			return fmt.Errorf("GOAWAY %v", f.ErrCode)
		case *http2.RSTStreamFrame:
			return fmt.Errorf("RST_STREAM %v", f.ErrCode)
		}
		if f.Header().StreamID == 1 && f.Header().Flags.Has(http2.FlagDataEndStream) {
			return nil // HEADERS' END_STREAM is the same bit
		}
	}
}
