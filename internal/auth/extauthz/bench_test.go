package extauthz

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
)

// staticAuthz answers every check with one response and keeps nothing.
type staticAuthz struct{ resp *authv3.CheckResponse }

func (s staticAuthz) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return s.resp, nil
}

// benchRequest is a typical API request: a handful of headers, no body.
func benchRequest() *Request {
	r := testRequest()
	r.Headers = http.Header{
		"Authorization":   {"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"},
		"X-Request-Id":    {"6f1c2a9e-4c1b-4a55-9d0e-1f2a3b4c5d6e"},
		"X-User-Id":       {"alice"},
		"Accept":          {"application/json"},
		"User-Agent":      {"bench/1.0"},
		"Accept-Encoding": {"gzip, br"},
	}
	return r
}

// BenchmarkGRPCAllow is one allow round trip (with one upstream header) to a loopback
// Authorization server over h2c.
func BenchmarkGRPCAllow(b *testing.B) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, staticAuthz{&authv3.CheckResponse{
		Status: okStatus(),
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{hvo("x-tenant", "acme", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)},
		}}},
	})
	go gs.Serve(lis)
	defer gs.Stop()
	c := newGRPC(b, GRPCConfig{Target: lis.Addr().String(), HeadersToUpstream: []string{"x-tenant"}})
	r := benchRequest()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := c.Check(ctx, r)
		if err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}

// BenchmarkHTTPAllow is one allow round trip (with one upstream header) to a loopback HTTP
// authorization server over HTTP/1.1 keep-alive.
func BenchmarkHTTPAllow(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Tenant", "acme")
	}))
	defer srv.Close()
	c := newHTTP(b, HTTPConfig{URL: srv.URL, PathPrefix: "/authz", HeadersToUpstream: []string{"x-tenant"}})
	r := benchRequest()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := c.Check(ctx, r)
		if err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}
