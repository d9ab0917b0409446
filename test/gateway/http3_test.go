package gateway

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"apoxy.dev/apoxy/internal/edgetest"
)

// TestHTTP3: an HTTPS listener also serves HTTP/3 over QUIC on the same port number, advertises
// it with Alt-Svc over TCP, and applies the same routes and filters to it.
func TestHTTP3(t *testing.T) {
	ca := newCA(t)
	ln := echoServer(t, "127.0.0.31:0", "main", nil)
	e := edgetest.Start(t, edgetest.Options{})
	port := freeTCPPort(t)
	e.Apply(tlsSecret("h3-cert", ca.issue(t, "h3.example.com")) + fmt.Sprintf(`
apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: h3}
spec:
  gatewayClassName: apoxy
  listeners:
  - {name: https, protocol: HTTPS, port: %d, hostname: h3.example.com, tls: {certificateRefs: [{name: h3-cert}]}}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: main}
spec: {endpoints: [{ip: 127.0.0.31}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: h3}
spec:
  parentRefs: [{name: h3}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /app}}]
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Via, value: gateway}]}}
    - {type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Route, value: h3}]}}
    backendRefs: [{kind: Backend, name: main, port: %s}]
`, port, portOf(ln)))
	e.WaitFor("route accepted", e.RouteAccepted("h3"))
	tlsConf := &tls.Config{RootCAs: ca.pool, ServerName: "h3.example.com"}
	url := fmt.Sprintf("https://127.0.0.1:%d/app/x?y=1", port)

	// HTTP/2 over TCP first: the answer advertises HTTP/3 on the same port.
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}, Timeout: 5 * time.Second}
	var h2resp *http.Response
	e.WaitFor("served over h2", func() error {
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = "h3.example.com"
		resp, err := h2.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		h2resp = resp
		return nil
	})
	if h2resp.Proto != "HTTP/2.0" || h2resp.Header.Get("Alt-Svc") != fmt.Sprintf(`h3=":%d"; ma=86400`, port) {
		t.Fatalf("h2 answer: %s, Alt-Svc %q", h2resp.Proto, h2resp.Header.Get("Alt-Svc"))
	}

	// HTTP/3 with quic-go's client: same route, same filters.
	tr := &http3.Transport{TLSClientConfig: tlsConf}
	defer tr.Close()
	h3 := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for _, body := range []string{"", strings.Repeat("u", 256<<10)} {
		method := "GET"
		var rd io.Reader
		if body != "" {
			method, rd = "POST", strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, url, rd)
		req.Host = "h3.example.com"
		resp, err := h3.Do(req)
		if err != nil {
			t.Fatalf("HTTP/3 %s: %v", method, err)
		}
		var got echo
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || resp.Proto != "HTTP/3.0" {
			t.Fatalf("HTTP/3 %s: %s %d (%v)", method, resp.Proto, resp.StatusCode, err)
		}
		if resp.Header.Get("X-Route") != "h3" || resp.Header.Get("Alt-Svc") != "" {
			t.Fatalf("HTTP/3 response headers %v: want X-Route from the filter and no Alt-Svc", resp.Header)
		}
		if got.Backend != "main" || got.Path != "/app/x?y=1" || got.Host != "h3.example.com" || http.Header(got.Headers).Get("X-Via") != "gateway" || got.Body != len(body) {
			t.Fatalf("HTTP/3 %s: the backend saw %+v", method, got)
		}
	}
	// A path no rule matches: the same 404 as over TCP.
	req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d/other", port), nil)
	req.Host = "h3.example.com"
	resp, err := h3.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unrouted path over HTTP/3: %d, want 404", resp.StatusCode)
	}
}
