package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/h2spectest"
)

// TestH2SpecGateway runs h2spec's 145 cases against `apoxy dev`'s default Gateway, over h2c
// (prior knowledge, the HTTP listener) and TLS (ALPN h2, the HTTPS listener), with every
// request routed to a backend that reads the whole request body before answering (so the
// request-side cases, content-length against DATA, see the stream's real life).
func TestH2SpecGateway(t *testing.T) {
	d := startDev(t, "")
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(20 * time.Millisecond)
		io.WriteString(w, "h2spec backend")
	}))
	t.Cleanup(be.Close)
	host, port, _ := net.SplitHostPort(be.Listener.Addr().String())
	must(t, d.apoxy(t, fmt.Sprintf(`apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: h2spec}
spec: {endpoints: [{ip: %s}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: h2spec}
spec:
  parentRefs: [{name: default}]
  rules:
  - backendRefs: [{kind: Backend, name: h2spec, port: %s}]
`, host, port), "apply", "-f", "-"))
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + d.httpAddr + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	_, httpPort, _ := net.SplitHostPort(d.httpAddr)
	t.Logf("h2c: %s", h2spectest.Run(t, "127.0.0.1", httpPort))
	_, httpsPort, _ := net.SplitHostPort(d.httpsAddr)
	t.Logf("TLS: %s", h2spectest.Run(t, "127.0.0.1", httpsPort, "-t", "-k"))
}
