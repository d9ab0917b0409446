// Package tunneltest runs a tunnel endpoint on loopback for tests: real QUIC and HTTP/3
// CONNECT-IP, a self-signed certificate the returned client TLS config trusts.
package tunneltest

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"apoxy.dev/apoxy/internal/pki"
	"apoxy.dev/apoxy/internal/tunnel"
)

// Endpoint serves a tunnel endpoint with opts on 127.0.0.1 until the test ends; it returns
// the server, its address and a TLS config that verifies it.
func Endpoint(t testing.TB, opts tunnel.ServerOptions) (*tunnel.Server, string, *tls.Config) {
	t.Helper()
	certPEM, keyPEM, err := pki.SelfSigned("tunnel", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	s := tunnel.NewServer(opts)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(pc, &tls.Config{Certificates: []tls.Certificate{cert}})
	t.Cleanup(func() { s.Close(); pc.Close() })
	return s, pc.LocalAddr().String(), &tls.Config{RootCAs: roots}
}
