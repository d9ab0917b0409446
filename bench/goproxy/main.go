// Command goproxy is the "naive Go" reference of `make bench`: a stock httputil.ReverseProxy
// whose transport is tuned only for upstream connection reuse. It serves HTTP/1.1 and h2c on
// -addr and, with -cert/-key, HTTP/1.1 and h2 over TLS on -tls-addr; upstream is HTTP/1.1.
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18076", "plain listen address (HTTP/1.1 and h2c)")
	tlsAddr := flag.String("tls-addr", "", "TLS listen address (HTTP/1.1 and h2); needs -cert and -key")
	cert := flag.String("cert", "", "PEM certificate for -tls-addr")
	key := flag.String("key", "", "PEM key for -tls-addr")
	upstream := flag.String("upstream", "http://127.0.0.1:19000", "backend URL")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil {
		log.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 1024, // the default of 2 makes every burst reconnect
		IdleConnTimeout:     90 * time.Second,
	}
	rp.ErrorLog = log.New(io.Discard, "", 0)
	serve := func(a string, tls bool) {
		srv := &http.Server{Addr: a, Handler: rp, Protocols: new(http.Protocols), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
		srv.Protocols.SetHTTP1(true)
		if tls {
			srv.Protocols.SetHTTP2(true)
			log.Fatal(srv.ListenAndServeTLS(*cert, *key))
		}
		srv.Protocols.SetUnencryptedHTTP2(true)
		log.Fatal(srv.ListenAndServe())
	}
	if *tlsAddr != "" {
		go serve(*tlsAddr, true)
	}
	serve(*addr, false)
}
