// Command backend is the origin every proxy in `make bench` forwards to: any request gets 200
// with a fixed 128-byte text/plain body, over HTTP/1.1 with keep-alive or h2c (prior knowledge)
// on the same port. It does as little as possible so the proxies' cost dominates. A path
// ending in /bulk answers ?n= bytes instead (throughput runs).
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:19000", "listen address")
	flag.Parse()
	body := make([]byte, 128)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	body[len(body)-1] = '\n'
	chunk := make([]byte, 256<<10)
	srv := &http.Server{
		Addr: *addr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			if strings.HasSuffix(r.URL.Path, "/bulk") {
				// /bulk?n=BYTES: a large body, for throughput runs (bench/tunnel.sh).
				n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
				h["Content-Type"] = []string{"application/octet-stream"}
				h["Content-Length"] = []string{strconv.FormatInt(n, 10)}
				for n > 0 {
					k, err := w.Write(chunk[:min(n, int64(len(chunk)))])
					if err != nil {
						return
					}
					n -= int64(k)
				}
				return
			}
			h["Content-Type"] = []string{"text/plain"}
			h["Content-Length"] = []string{"128"}
			w.Write(body)
		}),
		Protocols:         new(http.Protocols),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	log.Fatal(srv.ListenAndServe())
}
