package gateway

import (
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/edgetest"
)

// TestClientCertificates: a Gateway checks client certificates on its HTTPS listener
// (spec.tls.frontend) and presents its own to a backend that demands one
// (spec.tls.backend.clientCertificateRef), over HTTP/1.1 and HTTP/2. Without a certificate, or
// with one from another CA, the handshake fails; switching the listener to
// AllowInsecureFallback lets both through and is flagged on the Gateway.
func TestClientCertificates(t *testing.T) {
	ca, otherCA := newCA(t), newCA(t)
	backendCert := ca.issue(t, "backend.example.com")
	// The backend refuses connections without a client certificate from ca.
	backendCfg := &tls.Config{Certificates: []tls.Certificate{backendCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool}
	ln := serveTLS(t, "127.0.0.13:0", backendCfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "client=%s", r.TLS.PeerCertificates[0].Subject.CommonName)
	}))

	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
	port := freeTCPPort(t)
	gateway := func(mode string) string {
		return fmt.Sprintf(`apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: mtls}
spec:
  gatewayClassName: apoxy
  listeners:
  - {name: https, protocol: HTTPS, port: %d, tls: {certificateRefs: [{name: mtls-server}]}}
  tls:
    backend: {clientCertificateRef: {name: gateway-client}}
    frontend:
      default: {validation: {mode: %s, caCertificateRefs: [{group: "", kind: ConfigMap, name: client-ca}]}}
`, port, mode)
	}
	e := edgetest.Start(t, edgetest.Options{})
	e.Apply(tlsSecret("mtls-server", ca.issue(t, "mtls.example.com")) + tlsSecret("gateway-client", ca.issue(t, "gateway-client")) +
		fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: client-ca}\ndata: {ca.crt: %q}\n---\n", caPEM) +
		gateway("AllowValidOnly") + fmt.Sprintf(`---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: strict}
spec: {endpoints: [{ip: 127.0.0.13}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: BackendTLSPolicy
metadata: {name: strict}
spec:
  targetRefs: [{group: core.apoxy.dev, kind: Backend, name: strict}]
  validation: {hostname: backend.example.com, caCertificateRefs: [{group: "", kind: ConfigMap, name: client-ca}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: mtls}
spec:
  parentRefs: [{name: mtls}]
  rules: [{backendRefs: [{kind: Backend, name: strict, port: %s}]}]
`, portOf(ln)))
	e.WaitFor("route accepted", e.RouteAccepted("mtls"))

	get := func(proto string, cert *tls.Certificate) (string, error) {
		cfg := &tls.Config{RootCAs: ca.pool, ServerName: "mtls.example.com"}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: proto == "h2"}
		if proto != "h2" {
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(fmt.Sprintf("https://127.0.0.1:%d/", port))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return fmt.Sprintf("%s %d %s", resp.Proto, resp.StatusCode, b), err
	}
	good, stranger := ca.issue(t, "alice"), otherCA.issue(t, "mallory")
	for _, proto := range []string{"http/1.1", "h2"} {
		want := map[string]string{"http/1.1": "HTTP/1.1", "h2": "HTTP/2.0"}[proto] + " 200 client=gateway-client"
		e.WaitFor(proto+" with a valid client certificate", func() error {
			got, err := get(proto, &good)
			if err != nil || got != want {
				return fmt.Errorf("got %q, %v; want %q", got, err, want)
			}
			return nil
		})
		for name, cert := range map[string]*tls.Certificate{"no certificate": nil, "another CA's certificate": &stranger} {
			if got, err := get(proto, cert); err == nil {
				t.Errorf("%s with %s: served (%s), want a failed handshake", proto, name, got)
			}
		}
	}

	e.Apply(gateway("AllowInsecureFallback"))
	e.WaitFor("InsecureFrontendValidationMode on the Gateway", func() error {
		st := fmt.Sprint(e.Get("gateway.apoxy.dev/v1", "Gateway", "mtls").Object["status"])
		if !strings.Contains(st, "type:InsecureFrontendValidationMode") {
			return fmt.Errorf("status %s", st)
		}
		return nil
	})
	for name, cert := range map[string]*tls.Certificate{"no certificate": nil, "another CA's certificate": &stranger} {
		e.WaitFor("insecure fallback lets "+name+" through", func() error {
			got, err := get("h2", cert)
			if err != nil || got != "HTTP/2.0 200 client=gateway-client" {
				return fmt.Errorf("got %q, %v", got, err)
			}
			return nil
		})
	}
}
