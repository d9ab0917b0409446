// Package tunneltest holds what the tunnel packages' tests share: a certificate pair for an
// endpoint on loopback, and polling.
package tunneltest

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/pki"
)

// TLS returns a tunnel endpoint's TLS config (a self-signed certificate for 127.0.0.1) and a
// client config that verifies it.
func TLS(t testing.TB) (server, client *tls.Config) {
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
	return &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{RootCAs: roots}
}

// WaitFor polls cond for up to 10 s.
func WaitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
