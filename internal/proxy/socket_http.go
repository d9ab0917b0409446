package proxy

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/h1"
	"apoxy.dev/apoxy/internal/proxy/h2"
)

// httpSocket serves an HTTP or HTTPS listener: HTTP/1.1 by our own server, HTTP/2 by
// net/http's, and for HTTPS HTTP/3 on the UDP port of the same number. All of them call the
// same handler (ServeHTTP, handler.go).
type httpSocket struct {
	socketBase
	ln  net.Listener
	srv *http.Server // HTTP/2 (and HTTP/1.1 when APOXY_HTTP1=std)
	h1  *h1.Server   // HTTP/1.1
	h2  *h2.Server   // HTTP/2 handed over by h1 (nil under APOXY_HTTP2=std: srv serves it)
	// h3 serves HTTP/3 on the UDP port of the same number (HTTPS listeners), advertised to
	// TCP clients by altSvc.
	h3     *h3Server
	udp    net.PacketConn
	altSvc []string
}

func listenHTTP(s *Server, l *ir.Listener) (socket, error) {
	ln, err := net.Listen("tcp", l.Name)
	if err != nil {
		return nil, err
	}
	sk := &httpSocket{socketBase: socketBase{name: l.Name, proto: l.Protocol, owner: s}, ln: ln}
	sk.srv = &http.Server{
		Handler:           sk,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		Protocols:         new(http.Protocols),
	}
	sk.srv.Protocols.SetHTTP1(true)
	var tlsConfig *tls.Config
	if l.Protocol == ir.ProtocolHTTPS {
		sk.srv.Protocols.SetHTTP2(true)
		tlsConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"h2", "http/1.1"},
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				g := sk.graph.Load()
				if g == nil || g.certs == nil {
					return nil, errors.New("no certificate")
				}
				return g.certs.get(hello)
			},
			// Server names whose listener checks client certificates get their own config.
			GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
				g := sk.graph.Load()
				if g == nil || g.certs == nil {
					return nil, nil
				}
				return g.certs.config(hello)
			},
		}
	} else {
		sk.srv.Protocols.SetUnencryptedHTTP2(true)
	}
	if tlsConfig != nil && !l.NoHTTP3 {
		sk.listenHTTP3(s, tlsConfig)
	}
	if stdHTTP1 {
		sk.srv.TLSConfig = tlsConfig
		return sk, nil
	}
	// HTTP/1.1 is served by our own server; net/http serves the HTTP/2 connections it hands over
	// (already past TLS, so without a TLS config of its own).
	sk.h1 = &h1.Server{
		Handler:   sk,
		TLSConfig: tlsConfig,
		H2:        sk.srv,
		Log:       s.log,
		Limiter:   s.conns,
		MaxConns:  s.opts.MaxConnectionsPerListener,
		OnReject:  s.rejected,
	}
	if !stdHTTP2 {
		sk.h2 = &h2.Server{Handler: sk, Log: s.log}
		sk.h1.H2Conns = sk.h2
	}
	sk.configure(l)
	return sk, nil
}

// Defaults of an HTTP listener's limits where the Proxy's spec.http leaves them unset (the
// servers' own defaults cover the rest).
const (
	defaultIdleTimeout          = 120 * time.Second
	defaultRequestHeaderTimeout = 30 * time.Second
)

// configure applies the listener's client limits (the Proxy's spec.http) to the HTTP/1.1,
// HTTP/2 and HTTP/3 servers: connections accepted from now on take them, open ones keep theirs.
func (sk *httpSocket) configure(l *ir.Listener) {
	var lim ir.HTTPLimits
	if l.HTTP != nil {
		lim = *l.HTTP
	}
	idle := cmp.Or(time.Duration(lim.IdleTimeout), defaultIdleTimeout)
	body := cmp.Or(time.Duration(lim.RequestBodyTimeout), sk.owner.opts.BodyReadTimeout)
	if sk.h1 != nil {
		sk.h1.SetLimits(h1.Limits{
			ReadHeaderTimeout: cmp.Or(time.Duration(lim.RequestHeaderTimeout), defaultRequestHeaderTimeout),
			IdleTimeout:       idle,
			BodyReadTimeout:   body,
			MaxHeaderBytes:    int(lim.MaxRequestHeaderBytes),
			MaxHeaders:        int(lim.MaxRequestHeaders),
		})
	}
	if sk.h2 != nil {
		sk.h2.SetLimits(h2.Limits{
			IdleTimeout:          idle,
			BodyReadTimeout:      body,
			MaxHeaderListSize:    uint32(lim.MaxRequestHeaderBytes),
			MaxConcurrentStreams: uint32(lim.MaxConcurrentStreams),
			InitialWindowSize:    lim.InitialStreamWindowSize,
			ConnWindowSize:       lim.InitialConnectionWindowSize,
			WriteTimeout:         time.Duration(lim.WriteTimeout),
		})
	}
	if sk.h3 != nil {
		sk.h3.setLimits(h3Limits{
			IdleTimeout:          idle,
			MaxHeaderBytes:       int(lim.MaxRequestHeaderBytes),
			MaxConcurrentStreams: int64(lim.MaxConcurrentStreams),
			StreamWindow:         uint64(lim.InitialStreamWindowSize),
			ConnWindow:           uint64(lim.InitialConnectionWindowSize),
		})
	}
}

func (sk *httpSocket) addr() string { return sk.ln.Addr().String() }

// stdHTTP2 (APOXY_HTTP2=std) serves HTTP/2 with net/http's server instead of ours
// (internal/proxy/h2): kept for one release, for A/B comparisons and as a way back.
var stdHTTP2 = os.Getenv("APOXY_HTTP2") == "std"

// rejected logs and counts what the HTTP/1.1 server refused before a handler saw it
// (malformed or oversized requests, timeouts, connections over the cap), like any request.
func (s *Server) rejected(remote net.Addr, status int, reason string) {
	if reason == h1.RejectBodyTimeout {
		return // the handler answers it (408) and logs it itself
	}
	rec := accessRecord{Status: status, Error: reason, Route: "none", Protocol: "HTTP/1.1"}
	if remote != nil {
		rec.ClientIP, _, _ = net.SplitHostPort(remote.String())
	}
	s.accessLog.log(&rec, time.Now(), 0)
	s.unrouted.observe(s.metrics, -1, status, 0, 0, 0)
}

// listenHTTP3 binds the UDP port of the listener's number and prepares an HTTP/3 server with
// the same handler and certificates. A taken UDP port only costs HTTP/3: it is logged, and
// HTTPS keeps serving HTTP/1.1 and HTTP/2 without advertising HTTP/3.
func (sk *httpSocket) listenHTTP3(s *Server, tlsConfig *tls.Config) {
	addr := sk.ln.Addr().(*net.TCPAddr)
	pc, err := net.ListenPacket("udp", addr.String())
	if err != nil {
		s.log.Warn("HTTP/3 not served: UDP port unavailable", "listener", sk.name, "err", err)
		return
	}
	h3, err := newH3Server(pc, tlsConfig, sk, s.log)
	if err != nil {
		pc.Close()
		s.log.Warn("HTTP/3 not served", "listener", sk.name, "err", err)
		return
	}
	sk.udp, sk.h3 = pc, h3
	sk.altSvc = []string{fmt.Sprintf(`h3=":%d"; ma=86400`, addr.Port)}
}

// stdHTTP1 (APOXY_HTTP1=std) serves HTTP/1.1 with net/http's server instead of ours: a switch
// for comparing the two, not a product setting.
var stdHTTP1 = os.Getenv("APOXY_HTTP1") == "std"

func (sk *httpSocket) serve() {
	s := sk.owner
	if sk.h3 != nil {
		go func() {
			if err := sk.h3.serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("HTTP/3 listener stopped", "listener", sk.name, "err", err)
			}
		}()
	}
	var err error
	if sk.h1 != nil {
		err = sk.h1.Serve(sk.ln)
	} else if sk.proto == ir.ProtocolHTTPS {
		err = sk.srv.ServeTLS(sk.ln, "", "")
	} else {
		err = sk.srv.Serve(sk.ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("listener stopped", "listener", sk.name, "err", err)
	}
}

// drain shuts the servers down gracefully: idle connections close, active requests finish
// (with Connection: close) until ctx ends. At process shutdown the HTTP/1.1 server may keep
// accepting while it drains (Options.DrainAccept).
func (sk *httpSocket) drain(ctx context.Context, final bool) {
	if sk.h3 != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			sk.h3.shutdown(ctx)
			sk.udp.Close()
		}()
		defer func() { <-done }()
	}
	if sk.h1 != nil {
		if final {
			sk.h1.DrainAccept = sk.owner.opts.DrainAccept
		}
		_ = sk.h1.Shutdown(ctx)
		return
	}
	_ = sk.srv.Shutdown(ctx)
}
