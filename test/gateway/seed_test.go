// Package gateway sends real HTTP/1.1, h2 and h2c traffic through the in-process product
// (internal/edgetest) to real backends.
package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/edgetest"
)

// testCA issues certificates for upstream test servers.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serve runs handler on addr (plain, or TLS with h2 when cert is given) until the test ends.
func serve(t testing.TB, addr string, cert *tls.Certificate, handler http.Handler) net.Listener {
	t.Helper()
	var cfg *tls.Config
	if cert != nil {
		cfg = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	return serveTLS(t, addr, cfg, handler)
}

// serveTLS is serve with a whole TLS configuration (nil: plain HTTP/1.1 and h2c).
func serveTLS(t testing.TB, addr string, cfg *tls.Config, handler http.Handler) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	srv := &http.Server{Handler: handler, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	if cfg != nil {
		srv.Protocols.SetHTTP2(true)
		srv.TLSConfig = cfg
		go srv.ServeTLS(ln, "", "")
	} else {
		srv.Protocols.SetUnencryptedHTTP2(true)
		go srv.Serve(ln)
	}
	t.Cleanup(func() { srv.Close() })
	return ln
}

func readSeed(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/examples/seed/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// clients returns HTTP/1.1, h2 (TLS) and h2c clients and the URL base each uses.
func clients(e *edgetest.Env) map[string]struct {
	c    *http.Client
	base string
} {
	h1 := &http.Transport{DisableCompression: true}
	h2 := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true, DisableCompression: true}
	h2c := &http.Transport{Protocols: new(http.Protocols), DisableCompression: true}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	return map[string]struct {
		c    *http.Client
		base string
	}{
		"HTTP/1.1": {&http.Client{Transport: h1, Timeout: 10 * time.Second}, "http://" + e.HTTPAddr},
		"HTTP/2.0": {&http.Client{Transport: h2, Timeout: 10 * time.Second}, "https://" + e.TLSAddr},
		"h2c":      {&http.Client{Transport: h2c, Timeout: 10 * time.Second}, "http://" + e.HTTPAddr},
	}
}

func do(t *testing.T, c *http.Client, method, url, host string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", method, url, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestSeedExampleRoutesTraffic applies the Core Concepts Backend and HTTPRoute unchanged: the
// route's host and prefix reach the backend (resolved by DNS, spoken to over h2 with TLS on
// the backendRef's port) over HTTP/1.1, h2 and h2c, and anything else gets 404.
func TestSeedExampleRoutesTraffic(t *testing.T) {
	ca := newCA(t)
	cert := ca.issue(t, "api.internal.example.com")
	serve(t, "127.0.0.2:8080", &cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "backend %s %s host=%s xfp=%s", r.Proto, r.URL.Path, r.Host, r.Header.Get("X-Forwarded-Proto"))
	}))
	e := edgetest.Start(t, edgetest.Options{Hosts: map[string][]string{"api.internal.example.com": {"127.0.0.2"}}, RootCAs: ca.pool})
	e.Apply(readSeed(t, "backend.yaml"))
	e.Apply(readSeed(t, "httproute.yaml"))
	e.WaitFor("api-route accepted", e.RouteAccepted("api-route"))

	for proto, cl := range clients(e) {
		t.Run(proto, func(t *testing.T) {
			var resp *http.Response
			var body string
			e.WaitFor("route served", func() error {
				resp, body = do(t, cl.c, "GET", cl.base+"/v1/users", "api.example.com")
				if resp.StatusCode != 200 {
					return fmt.Errorf("status %d: %s", resp.StatusCode, body)
				}
				return nil
			})
			wantProto := proto
			if proto == "h2c" {
				wantProto = "HTTP/2.0"
			}
			if resp.Proto != wantProto {
				t.Errorf("client spoke %s, want %s", resp.Proto, wantProto)
			}
			if !strings.HasPrefix(body, "backend HTTP/2.0 /v1/users host=api.example.com") {
				t.Errorf("backend saw %q (want h2 to the backend, path and host preserved)", body)
			}
			if r, _ := do(t, cl.c, "GET", cl.base+"/v2", "api.example.com"); r.StatusCode != 404 {
				t.Errorf("/v2: %d, want 404", r.StatusCode)
			}
			if r, _ := do(t, cl.c, "GET", cl.base+"/v1", "www.example.com"); r.StatusCode != 404 {
				t.Errorf("other host: %d, want 404", r.StatusCode)
			}
		})
	}
	gw := e.Get("gateway.apoxy.dev/v1", "Gateway", "default")
	if !strings.Contains(fmt.Sprint(gw.Object["status"]), "attachedRoutes:1") {
		t.Errorf("gateway status: %v", gw.Object["status"])
	}
}

// TestBackendTLSPolicy: a BackendTLSPolicy whose CA bundle is in a ConfigMap makes the gateway
// speak TLS to a plain Backend with the policy's hostname as SNI, verified against that CA only;
// subjectAltNames replace the hostname check (a match connects, a mismatch answers 5xx); a
// ConfigMap without a certificate makes the Backend answer 500 rather than connect unverified,
// and fixing the ConfigMap takes effect without touching the policy.
func TestBackendTLSPolicy(t *testing.T) {
	ca := newCA(t)
	cert := ca.issue(t, "secure.example.com", "san.example.com")
	ln := serve(t, "127.0.0.11:0", &cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls=%v sni=%s", r.TLS != nil, r.TLS.ServerName)
	}))
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
	e := edgetest.Start(t, edgetest.Options{}) // no RootCAs: only the policy's CA can verify
	port := ln.Addr().(*net.TCPAddr).Port
	var doc strings.Builder
	fmt.Fprintf(&doc, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: internal-ca}\ndata: {ca.crt: %q}\n---\n", caPEM)
	doc.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: empty-ca}\ndata: {ca.crt: \"\"}\n---\n")
	for _, b := range []struct{ name, validation string }{
		{"secure", "{hostname: secure.example.com, caCertificateRefs: [{group: '', kind: ConfigMap, name: internal-ca}]}"},
		{"san", "{hostname: other.example.com, caCertificateRefs: [{group: '', kind: ConfigMap, name: internal-ca}], subjectAltNames: [{type: Hostname, hostname: san.example.com}]}"},
		{"san-mismatch", "{hostname: secure.example.com, caCertificateRefs: [{group: '', kind: ConfigMap, name: internal-ca}], subjectAltNames: [{type: URI, uri: 'spiffe://example.com/other'}]}"},
		{"empty-ca", "{hostname: secure.example.com, caCertificateRefs: [{group: '', kind: ConfigMap, name: empty-ca}]}"},
	} {
		fmt.Fprintf(&doc, `apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: %[1]s}
spec: {endpoints: [{ip: 127.0.0.11}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: BackendTLSPolicy
metadata: {name: %[1]s}
spec:
  targetRefs: [{group: core.apoxy.dev, kind: Backend, name: %[1]s}]
  validation: %[2]s
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: %[1]s}
spec:
  parentRefs: [{name: default}]
  hostnames: [%[1]s.tls.example.com]
  rules: [{backendRefs: [{kind: Backend, name: %[1]s, port: %[3]d}]}]
---
`, b.name, b.validation, port)
	}
	e.Apply(doc.String())
	policyReason := func(name, want string) {
		e.WaitFor("policy "+name+" "+want, func() error {
			st := fmt.Sprint(e.Get("gateway.apoxy.dev/v1", "BackendTLSPolicy", name).Object["status"])
			if !strings.Contains(st, "reason:"+want) {
				return fmt.Errorf("status %s", st)
			}
			return nil
		})
	}
	policyReason("secure", "Accepted")
	policyReason("empty-ca", "NoValidCACertificate")
	cl := clients(e)["HTTP/1.1"]
	expect := func(host string, code int, body string) {
		e.WaitFor(host+" answers "+fmt.Sprint(code), func() error {
			resp, got := do(t, cl.c, "GET", cl.base+"/", host)
			if resp.StatusCode != code || (body != "" && got != body) {
				return fmt.Errorf("%d %q", resp.StatusCode, got)
			}
			return nil
		})
	}
	expect("secure.tls.example.com", 200, "tls=true sni=secure.example.com")
	expect("san.tls.example.com", 200, "tls=true sni=other.example.com")
	expect("san-mismatch.tls.example.com", 502, "")
	expect("empty-ca.tls.example.com", 500, "")
	e.Apply(fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: empty-ca}\ndata: {ca.crt: %q}\n", caPEM))
	policyReason("empty-ca", "Accepted")
	expect("empty-ca.tls.example.com", 200, "tls=true sni=secure.example.com")
}

// TestSNISelectsCertificate: two HTTPS listeners on one port with their own hostnames and
// certificates; the client's SNI picks the certificate, and the Host picks the routes.
func TestSNISelectsCertificate(t *testing.T) {
	ca := newCA(t)
	ln := echoServer(t, "127.0.0.12:0", "main", nil)
	e := edgetest.Start(t, edgetest.Options{})
	port := freeTCPPort(t)
	e.Apply(tlsSecret("a-cert", ca.issue(t, "a.example.com")) + tlsSecret("b-cert", ca.issue(t, "b.example.com")) + fmt.Sprintf(`
apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: multi}
spec:
  gatewayClassName: apoxy
  listeners:
  - {name: a, protocol: HTTPS, port: %d, hostname: a.example.com, tls: {certificateRefs: [{name: a-cert}]}}
  - {name: b, protocol: HTTPS, port: %d, hostname: b.example.com, tls: {certificateRefs: [{name: b-cert}]}}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: main}
spec: {endpoints: [{ip: 127.0.0.12}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: multi}
spec:
  parentRefs: [{name: multi}]
  rules: [{backendRefs: [{kind: Backend, name: main, port: %s}]}]
`, port, port, portOf(ln)))
	e.WaitFor("route accepted", e.RouteAccepted("multi"))
	for _, host := range []string{"a.example.com", "b.example.com"} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: host}, ForceAttemptHTTP2: true}
		c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		e.WaitFor("served with "+host+"'s certificate", func() error {
			req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d/", port), nil)
			req.Host = host
			resp, err := c.Do(req)
			if err != nil {
				return err // includes certificate verification against the SNI name
			}
			resp.Body.Close()
			if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != host || resp.StatusCode != 200 {
				return fmt.Errorf("status %d, certificate for %q", resp.StatusCode, cn)
			}
			return nil
		})
	}
}

// tlsSecret is a kubernetes.io/tls Secret manifest (with a trailing document separator).
func tlsSecret(name string, c tls.Certificate) string {
	key, _ := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
	k := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: key})
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: %s}\ntype: kubernetes.io/tls\ndata: {tls.crt: %s, tls.key: %s}\n---\n",
		name, base64.StdEncoding.EncodeToString(crt), base64.StdEncoding.EncodeToString(k))
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
