package filter

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"apoxy.dev/apoxy/internal/proxy/upstream"
)

// backendTransport sends the gateway's own requests (a JWKS fetch, an OIDC token exchange, an
// external authorization check) to a Backend: to an address its cluster picks, through the
// cluster's transport (its TLS settings, destination policy and connect timeout), keeping the
// request's Host. The cluster is looked up when each request is sent, so a transport built for
// one configuration keeps working across swaps while the Backend exists.
type backendTransport struct {
	env     *Env
	backend string
	port    int32
}

// RoundTrip implements http.RoundTripper.
func (t backendTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.env.cluster(t.backend)
	if c == nil {
		return nil, fmt.Errorf("backend %s is not available", t.backend)
	}
	addr, err := c.Pick(nil)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", t.backend, err)
	}
	out := req.Clone(req.Context())
	if out.Host == "" {
		out.Host = req.URL.Host
	}
	out.URL.Scheme = c.Scheme()
	out.URL.Host = net.JoinHostPort(addr.IP.String(), strconv.Itoa(int(t.port)))
	addr.Begin()
	defer addr.End()
	return c.Transport().RoundTrip(out)
}

// cluster returns the current cluster of an IR backend (nil when unknown).
func (e *Env) cluster(name string) *upstream.Cluster {
	if e == nil || e.Clusters == nil {
		return nil
	}
	return e.Clusters(name)
}

// httpClient returns a client for the gateway's own requests: through Backend backend on port
// when it is set, otherwise to each URL's host under the destination policy of scope (the
// policy's "project/namespace/name").
func (e *Env) httpClient(backend string, port int32, scope string) *http.Client {
	if backend != "" {
		return &http.Client{Transport: backendTransport{env: e, backend: backend, port: port}}
	}
	t := &http.Transport{Proxy: nil, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	if e != nil {
		t.TLSClientConfig.RootCAs = e.RootCAs
		if e.Dial != nil {
			t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				return e.Dial(ctx, scope, network, addr)
			}
		}
	}
	return &http.Client{Transport: t}
}
