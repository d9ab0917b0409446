package gateway

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/edgetest"
)

// TestTLSRoutePassthrough: a passthrough TLS listener routes connections by SNI without
// terminating them: the client completes the handshake with the backend's own certificate,
// each server name reaches its route's backend; a terminating TLS listener on the same port
// answers with the gateway's certificate and sends plaintext on; an unknown name is closed.
func TestTLSRoutePassthrough(t *testing.T) {
	ca := newCA(t)
	answer := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
	}
	apiCert, appCert := ca.issue(t, "api.example.com"), ca.issue(t, "app.example.com")
	api := serveTLS(t, "127.0.0.40:0", &tls.Config{Certificates: []tls.Certificate{apiCert}}, answer("api"))
	serveTLS(t, "127.0.0.41:"+portOf(api), &tls.Config{Certificates: []tls.Certificate{appCert}}, answer("app"))
	e := edgetest.Start(t, edgetest.Options{})
	port := freeTCPPort(t)
	e.Apply(fmt.Sprintf(`
apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: pass}
spec:
  gatewayClassName: apoxy
  listeners: [{name: tls, protocol: TLS, port: %d, hostname: "*.example.com", tls: {mode: Passthrough}}]
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: api}
spec: {endpoints: [{ip: 127.0.0.40}]}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: app}
spec: {endpoints: [{ip: 127.0.0.41}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: TLSRoute
metadata: {name: api}
spec:
  parentRefs: [{name: pass}]
  hostnames: [api.example.com]
  rules: [{backendRefs: [{kind: Backend, name: api, port: %s}]}]
---
apiVersion: gateway.apoxy.dev/v1
kind: TLSRoute
metadata: {name: app}
spec:
  parentRefs: [{name: pass}]
  hostnames: [app.example.com]
  rules: [{backendRefs: [{kind: Backend, name: app, port: %s}]}]
`, port, portOf(api), portOf(api)))
	e.WaitFor("routes accepted", func() error {
		if err := e.RouteKindAccepted("TLSRoute", "api")(); err != nil {
			return err
		}
		return e.RouteKindAccepted("TLSRoute", "app")()
	})
	get := func(host string) (string, *tls.ConnectionState, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: host}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(fmt.Sprintf("https://127.0.0.1:%d/", port))
		if err != nil {
			return "", nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.TLS, nil
	}
	for _, tc := range []struct{ host, want string }{{"api.example.com", "api"}, {"app.example.com", "app"}} {
		var got string
		var st *tls.ConnectionState
		e.WaitFor(tc.host+" reaches its backend", func() error {
			var err error
			got, st, err = get(tc.host)
			if err == nil && got != tc.want {
				err = fmt.Errorf("answered by %q", got)
			}
			return err
		})
		// The certificate the client verified is the backend's, not the gateway's.
		if cn := st.PeerCertificates[0].Subject.CommonName; cn != tc.host || st.NegotiatedProtocol != "h2" {
			t.Fatalf("%s: certificate for %q, protocol %q: want the backend's own handshake", tc.host, cn, st.NegotiatedProtocol)
		}
	}
	// Terminate on the same port (mixed mode): the gateway's certificate, plaintext to the backend.
	plain := serve(t, "127.0.0.42:0", nil, answer("plain"))
	e.Apply(tlsSecret("term-cert", ca.issue(t, "term.example.net")) + fmt.Sprintf(`
apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: pass}
spec:
  gatewayClassName: apoxy
  listeners:
  - {name: tls, protocol: TLS, port: %d, hostname: "*.example.com", tls: {mode: Passthrough}}
  - {name: term, protocol: TLS, port: %d, hostname: term.example.net, tls: {mode: Terminate, certificateRefs: [{name: term-cert}]}}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: plain}
spec: {endpoints: [{ip: 127.0.0.42}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: TLSRoute
metadata: {name: term}
spec:
  parentRefs: [{name: pass, sectionName: term}]
  hostnames: [term.example.net]
  rules: [{backendRefs: [{kind: Backend, name: plain, port: %s}]}]
`, port, port, portOf(plain)))
	e.WaitFor("terminated route answers", func() error {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "term.example.net"}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(fmt.Sprintf("https://127.0.0.1:%d/", port))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "plain" || resp.TLS.PeerCertificates[0].Subject.CommonName != "term.example.net" {
			return fmt.Errorf("answered %q with certificate %q", b, resp.TLS.PeerCertificates[0].Subject.CommonName)
		}
		return nil
	})
	if got, _, err := get("api.example.com"); err != nil || got != "api" {
		t.Fatalf("passthrough beside termination: %q, %v", got, err)
	}

	// No route for this name: the connection is closed before any handshake.
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{ServerName: "nope.example.com", InsecureSkipVerify: true})
	if err == nil {
		c.Close()
		t.Fatal("a server name without a route completed a handshake")
	}
}
