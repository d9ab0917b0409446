package extauthz

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func hvo(k, v string, a corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, AppendAction: a}
}

// hvoAppend uses the deprecated append flag, which services written for older Envoys set.
func hvoAppend(k, v string, appendValue bool) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, Append: wrapperspb.Bool(appendValue)}
}

func okStatus() *rpcstatus.Status { return &rpcstatus.Status{Code: int32(codes.OK)} }

func answer(resp *authv3.CheckResponse) func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) { return resp, nil }
}

func testRequest() *Request {
	return &Request{
		Method:        "GET",
		Scheme:        "https",
		Host:          "api.example.com",
		Path:          "/v1/items?limit=5",
		Protocol:      "HTTP/1.1",
		Headers:       http.Header{"Authorization": {"Bearer t"}, "X-Request-Id": {"r1"}},
		ContentLength: 0,
	}
}

// An allowing answer's header mutations are applied only within headersToUpstream, and never
// to Host, pseudo-headers, framing or hop-by-hop headers, even when listed (cases 89, 94).
func TestGRPCAllowMutationsLimited(t *testing.T) {
	srv := startAuthz(t, nil, answer(&authv3.CheckResponse{
		Status: okStatus(),
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{
				hvo("x-user-id", "alice", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvoAppend("x-tenant", "acme", false),                                     // deprecated: overwrite
				hvoAppend("x-trace", "authz", true),                                      // deprecated: append
				hvo("x-role", "admin", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD), // Envoy's default
				hvo("x-once", "new", corev3.HeaderValueOption_ADD_IF_ABSENT),             // present: kept
				hvo("x-only-if", "set", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),    // absent: not added
				hvo("x-not-listed", "nope", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("host", "evil.example", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo(":authority", "evil.example", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo(":path", "/admin", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("connection", "close", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("Transfer-Encoding", "chunked", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("content-length", "0", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("proxy-authorization", "x", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("upgrade", "websocket", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("te", "trailers", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("keep-alive", "1", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("trailer", "x", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("x-user-id", "smuggled\r\nx-admin: 1", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("bad name", "v", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			},
			HeadersToRemove:      []string{"authorization", "host", ":path", "connection", "x-not-listed"},
			QueryParametersToSet: []*corev3.QueryParameter{{Key: "admin", Value: "1"}},
		}},
	}))
	c := newGRPC(t, GRPCConfig{
		Target: srv.addr,
		HeadersToUpstream: []string{"X-User-Id", "x-tenant", "x-trace", "x-role", "x-once", "x-only-if",
			"authorization", "host", "connection", "transfer-encoding", "content-length", "upgrade"},
	})
	d, err := c.Check(context.Background(), testRequest())
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allowed || d.Status != 0 || d.HeadersToClient != nil {
		t.Fatalf("decision = %+v, want a plain allow", d)
	}
	wantUp := []HeaderMutation{
		{"X-User-Id", "alice", OverwriteOrAdd},
		{"X-Tenant", "acme", OverwriteOrAdd},
		{"X-Trace", "authz", AppendOrAdd},
		{"X-Role", "admin", AppendOrAdd},
		{"X-Once", "new", AddIfAbsent},
		{"X-Only-If", "set", OverwriteIfExists},
	}
	if !reflect.DeepEqual(d.Upstream, wantUp) {
		t.Errorf("Upstream = %+v\nwant %+v", d.Upstream, wantUp)
	}
	if want := []string{"Authorization"}; !reflect.DeepEqual(d.UpstreamRemove, want) {
		t.Errorf("UpstreamRemove = %q, want %q", d.UpstreamRemove, want)
	}
	for _, name := range []string{"X-Not-Listed", "Host", ":authority", ":path", "Connection", "Transfer-Encoding",
		"Content-Length", "Proxy-Authorization", "Upgrade", "Te", "Keep-Alive", "Trailer", `"bad name"`} {
		if !slices.Contains(d.Refused, name) {
			t.Errorf("Refused = %q, missing %q", d.Refused, name)
		}
	}

	up := http.Header{
		"X-User-Id":     {"forged"},
		"X-Trace":       {"client"},
		"X-Role":        {"user"},
		"X-Once":        {"old"},
		"Authorization": {"Bearer t"},
		"Connection":    {"keep-alive"},
	}
	d.ApplyUpstream(up)
	want := http.Header{
		"X-User-Id":  {"alice"},
		"X-Tenant":   {"acme"},
		"X-Trace":    {"client", "authz"},
		"X-Role":     {"user", "admin"},
		"X-Once":     {"old"},
		"Connection": {"keep-alive"},
	}
	if !reflect.DeepEqual(up, want) {
		t.Errorf("upstream headers = %v\nwant %v", up, want)
	}
}

// With no headersToUpstream list, any header may be changed but the protected ones.
func TestGRPCAllowAllButProtectedWithoutList(t *testing.T) {
	srv := startAuthz(t, nil, answer(&authv3.CheckResponse{
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{
				hvo("x-anything", "1", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("host", "evil", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			},
			HeadersToRemove:      []string{"cookie", ":method"},
			ResponseHeadersToAdd: []*corev3.HeaderValueOption{hvo("x-cache", "miss", 0), hvo("content-length", "9", 0)},
		}},
	}))
	c := newGRPC(t, GRPCConfig{Target: srv.addr})
	d, err := c.Check(context.Background(), testRequest())
	if err != nil {
		t.Fatal(err) // a CheckResponse without a status is OK, as in Envoy
	}
	if !d.Allowed {
		t.Fatal("not allowed")
	}
	if want := []HeaderMutation{{"X-Anything", "1", OverwriteOrAdd}}; !reflect.DeepEqual(d.Upstream, want) {
		t.Errorf("Upstream = %+v, want %+v", d.Upstream, want)
	}
	if want := []string{"Cookie"}; !reflect.DeepEqual(d.UpstreamRemove, want) {
		t.Errorf("UpstreamRemove = %q, want %q", d.UpstreamRemove, want)
	}
	if want := []HeaderMutation{{"X-Cache", "miss", AppendOrAdd}}; !reflect.DeepEqual(d.Response, want) {
		t.Errorf("Response = %+v, want %+v", d.Response, want)
	}
	if want := []string{"Host", ":method", "Content-Length"}; !reflect.DeepEqual(d.Refused, want) {
		t.Errorf("Refused = %q, want %q", d.Refused, want)
	}
}

// A denial carries the service's status, body and headers; headersToClient limits the headers
// but always lets WWW-Authenticate and Location through (case 89).
func TestGRPCDenyCustomReply(t *testing.T) {
	srv := startAuthz(t, nil, answer(&authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized},
			Body:   `{"error":"no"}`,
			Headers: []*corev3.HeaderValueOption{
				hvo("www-authenticate", `Bearer realm="api"`, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("set-cookie", "a=1", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
				hvo("set-cookie", "b=2", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
				hvoAppend("content-type", "text/plain", false),
				hvoAppend("content-type", "application/json", false),
				hvo("x-internal", "secret", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("connection", "close", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			},
		}},
	}))
	c := newGRPC(t, GRPCConfig{Target: srv.addr, HeadersToClient: []string{"Set-Cookie", "content-type", "connection"}})
	d, err := c.Check(context.Background(), testRequest())
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || d.Status != 401 || string(d.Body) != `{"error":"no"}` || d.BodyTruncated {
		t.Fatalf("decision = %+v, want a 401 denial with the body", d)
	}
	want := http.Header{
		"Www-Authenticate": {`Bearer realm="api"`},
		"Set-Cookie":       {"a=1", "b=2"},
		"Content-Type":     {"application/json"},
	}
	if !reflect.DeepEqual(d.HeadersToClient, want) {
		t.Errorf("HeadersToClient = %v\nwant %v", d.HeadersToClient, want)
	}
	if want := []string{"X-Internal", "Connection"}; !reflect.DeepEqual(d.Refused, want) {
		t.Errorf("Refused = %q, want %q", d.Refused, want)
	}
	if d.Upstream != nil || d.UpstreamRemove != nil {
		t.Errorf("a denial has upstream mutations: %+v", d)
	}
}

// A non-OK status without denied_response is a 403 with no body; a status that cannot be sent
// becomes 403 too, and a long body is cut at the limit.
func TestGRPCDenyDefaults(t *testing.T) {
	long := make([]byte, 100)
	for i := range long {
		long[i] = 'x'
	}
	for _, tc := range []struct {
		name     string
		resp     *authv3.CheckResponse
		status   int
		body     string
		truncate bool
	}{
		{"no denied_response", &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)}}, 403, "", false},
		{"unauthenticated", &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.Unauthenticated)}}, 403, "", false},
		{"status 0", &authv3.CheckResponse{
			Status:       &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{Body: "denied"}},
		}, 403, "denied", false},
		{"unsendable status", &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode(42)}, Body: string(long)}},
		}, 403, string(long[:64]), true},
		{"ok_response ignored when status is not OK", &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers: []*corev3.HeaderValueOption{hvo("x-user-id", "alice", 0)}}},
		}, 403, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startAuthz(t, nil, answer(tc.resp))
			c := newGRPC(t, GRPCConfig{Target: srv.addr, MaxResponseBody: 64})
			d, err := c.Check(context.Background(), testRequest())
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed || d.Status != tc.status || string(d.Body) != tc.body || d.BodyTruncated != tc.truncate {
				t.Fatalf("decision = {Allowed:%v Status:%d Body:%q Truncated:%v}, want status %d body %q",
					d.Allowed, d.Status, d.Body, d.BodyTruncated, tc.status, tc.body)
			}
			if len(d.Upstream) != 0 || OutcomeOf(d, nil) != OutcomeDenied {
				t.Fatalf("decision = %+v", d)
			}
		})
	}
}

// error_response is a failure (the caller's failure mode applies), with the reply the service
// asked for kept for a caller that fails closed.
func TestGRPCErrorResponse(t *testing.T) {
	srv := startAuthz(t, nil, answer(&authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.Internal)},
		HttpResponse: &authv3.CheckResponse_ErrorResponse{ErrorResponse: &authv3.DeniedHttpResponse{
			Body:    "policy engine down",
			Headers: []*corev3.HeaderValueOption{hvo("retry-after", "5", 0), hvo("host", "x", 0)},
		}},
	}))
	c := newGRPC(t, GRPCConfig{Target: srv.addr})
	d, err := c.Check(context.Background(), testRequest())
	if d != nil {
		t.Fatalf("decision = %+v, want none", d)
	}
	e := wantOutcome(t, err, OutcomeServiceError)
	if e.Reply == nil || e.Reply.Status != 0 || string(e.Reply.Body) != "policy engine down" ||
		e.Reply.HeadersToClient.Get("Retry-After") != "5" || e.Reply.HeadersToClient.Get("Host") != "" {
		t.Fatalf("Reply = %+v", e.Reply)
	}
}

// The CheckRequest carries what Envoy sends: the HTTP attributes with lower-case joined
// headers and pseudo-headers, the body, context extensions, route metadata and peers.
func TestGRPCCheckRequestFields(t *testing.T) {
	srv := startAuthz(t, nil, answer(&authv3.CheckResponse{Status: okStatus()}))
	c := newGRPC(t, GRPCConfig{
		Target:            srv.addr,
		ContextExtensions: map[string]string{"package": "payments.authz", "shared": "config"},
	})
	received := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	r := &Request{
		ID:       "req-1",
		Method:   "POST",
		Scheme:   "https",
		Host:     "api.example.com",
		Path:     "/v1/pay%2Fments?amount=10&cur=eur",
		Protocol: "HTTP/2.0",
		Headers: http.Header{
			"Authorization": {"Bearer tok"},
			"X-Multi":       {"a", "b"},
			"Cookie":        {"s=1", "t=2"},
			"X-Binary":      {"ok\xffok"},
			"Content-Type":  {"application/json"},
			// A client's claim that the body is partial is replaced by the gateway's.
			"X-Envoy-Auth-Partial-Body": {"true"},
		},
		ContentLength:     11,
		Body:              []byte(`{"amt":10}` + "\n"),
		ClientAddr:        netip.MustParseAddrPort("[::ffff:192.0.2.7]:51234"),
		DestAddr:          netip.MustParseAddrPort("[2001:db8::1]:443"),
		SNI:               "api.example.com",
		Received:          received,
		ContextExtensions: map[string]string{"shared": "request", "route": "pay"},
		RouteMetadata:     map[string]string{"route": "payments", "namespace": "default", "policy": "payments-authz"},
	}
	if _, err := c.Check(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	got := srv.last(t).GetAttributes()
	h := got.GetRequest().GetHttp()
	if h.GetId() != "req-1" || h.GetMethod() != "POST" || h.GetScheme() != "https" || h.GetHost() != "api.example.com" ||
		h.GetPath() != "/v1/pay%2Fments?amount=10&cur=eur" || h.GetProtocol() != "HTTP/2" || h.GetSize() != 11 {
		t.Errorf("http attributes = %v", h)
	}
	if h.GetBody() != `{"amt":10}`+"\n" || h.GetRawBody() != nil {
		t.Errorf("body = %q raw %q", h.GetBody(), h.GetRawBody())
	}
	wantHeaders := map[string]string{
		"authorization":             "Bearer tok",
		"x-multi":                   "a,b",
		"cookie":                    "s=1; t=2",
		"x-binary":                  "ok!ok",
		"content-type":              "application/json",
		":authority":                "api.example.com",
		":method":                   "POST",
		":path":                     "/v1/pay%2Fments?amount=10&cur=eur",
		":scheme":                   "https",
		"x-envoy-auth-partial-body": "false",
	}
	if !reflect.DeepEqual(h.GetHeaders(), wantHeaders) {
		t.Errorf("headers = %v\nwant %v", h.GetHeaders(), wantHeaders)
	}
	if want := map[string]string{"package": "payments.authz", "shared": "request", "route": "pay"}; !reflect.DeepEqual(got.GetContextExtensions(), want) {
		t.Errorf("context_extensions = %v, want %v", got.GetContextExtensions(), want)
	}
	src := got.GetSource().GetAddress().GetSocketAddress()
	if src.GetAddress() != "192.0.2.7" || src.GetPortValue() != 51234 {
		t.Errorf("source = %v", src)
	}
	dst := got.GetDestination().GetAddress().GetSocketAddress()
	if dst.GetAddress() != "2001:db8::1" || dst.GetPortValue() != 443 {
		t.Errorf("destination = %v", dst)
	}
	for _, md := range []*corev3.Metadata{got.GetMetadataContext(), got.GetRouteMetadataContext()} {
		fields := md.GetFilterMetadata()[RouteMetadataNamespace].GetFields()
		if fields["route"].GetStringValue() != "payments" || fields["namespace"].GetStringValue() != "default" ||
			fields["policy"].GetStringValue() != "payments-authz" {
			t.Errorf("metadata = %v", md)
		}
	}
	if got.GetTlsSession().GetSni() != "api.example.com" {
		t.Errorf("tls_session = %v", got.GetTlsSession())
	}
	if !got.GetRequest().GetTime().AsTime().Equal(received) {
		t.Errorf("time = %v", got.GetRequest().GetTime())
	}

	// A partial body that is not UTF-8 goes as raw_body; unknown size is -1; no peers, no
	// metadata, and the configured context extensions alone.
	r2 := testRequest()
	r2.Body, r2.BodyPartial, r2.ContentLength = []byte{0xff, 0xfe, 0}, true, -1
	if _, err := c.Check(context.Background(), r2); err != nil {
		t.Fatal(err)
	}
	got = srv.last(t).GetAttributes()
	h = got.GetRequest().GetHttp()
	if h.GetBody() != "" || string(h.GetRawBody()) != "\xff\xfe\x00" || h.GetSize() != -1 ||
		h.GetHeaders()["x-envoy-auth-partial-body"] != "true" {
		t.Errorf("http attributes = %v", h)
	}
	if got.GetSource() != nil || got.GetDestination() != nil || got.GetMetadataContext() != nil || got.GetTlsSession() != nil {
		t.Errorf("attributes = %v", got)
	}
	if want := map[string]string{"package": "payments.authz", "shared": "config"}; !reflect.DeepEqual(got.GetContextExtensions(), want) {
		t.Errorf("context_extensions = %v, want %v", got.GetContextExtensions(), want)
	}
}

// PackBodyAsBytes sends even a UTF-8 body in raw_body.
func TestGRPCPackBodyAsBytes(t *testing.T) {
	srv := startAuthz(t, nil, answer(&authv3.CheckResponse{Status: okStatus()}))
	c := newGRPC(t, GRPCConfig{Target: srv.addr, PackBodyAsBytes: true})
	r := testRequest()
	r.Body = []byte("hello")
	if _, err := c.Check(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if h := srv.last(t).GetAttributes().GetRequest().GetHttp(); string(h.GetRawBody()) != "hello" || h.GetBody() != "" {
		t.Errorf("body = %q raw %q", h.GetBody(), h.GetRawBody())
	}
}

// A service slower than the caller's deadline gives a timeout error, promptly (case 93).
func TestGRPCTimeout(t *testing.T) {
	srv := startAuthz(t, nil, func(ctx context.Context, _ *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		select {
		case <-ctx.Done():
			// The server's copy of the deadline can end a hair before the client's own timer
			// fires on a loaded machine: answering OK here would race the client's timeout.
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
		}
		return &authv3.CheckResponse{Status: okStatus()}, nil
	})
	c := newGRPC(t, GRPCConfig{Target: srv.addr})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	d, err := c.Check(ctx, testRequest())
	if d != nil {
		t.Fatalf("decision = %+v", d)
	}
	wantOutcome(t, err, OutcomeTimeout)
	if !errors.Is(err, context.DeadlineExceeded) && status.Code(errors.Unwrap(err)) != codes.DeadlineExceeded {
		t.Errorf("error %v does not say deadline exceeded", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v", el)
	}
}

// A canceled context (the client went away) is told apart from a timeout.
func TestGRPCCanceled(t *testing.T) {
	srv := startAuthz(t, nil, func(ctx context.Context, _ *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	c := newGRPC(t, GRPCConfig{Target: srv.addr})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Check(ctx, testRequest())
	wantOutcome(t, err, OutcomeCanceled)
}

// A service that is down gives an unavailable error, quickly, and the client recovers once
// the service is up (case 93).
func TestGRPCUnavailable(t *testing.T) {
	addr := closedAddr(t)
	c := newGRPC(t, GRPCConfig{Target: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Check(ctx, testRequest())
	wantOutcome(t, err, OutcomeUnavailable)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v: an unreachable service should fail fast", el)
	}

	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, &authzServer{handler: answer(&authv3.CheckResponse{Status: okStatus()})})
	go gs.Serve(lis)
	defer gs.Stop()
	for {
		d, err := c.Check(ctx, testRequest())
		if err == nil && d.Allowed {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no recovery within 5s of the service coming up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A server that is not an Authorization service is a protocol error; a handler's own error
// is a service error.
func TestGRPCWrongServiceAndHandlerError(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	c := newGRPC(t, GRPCConfig{Target: lis.Addr().String()})
	_, err = c.Check(context.Background(), testRequest())
	wantOutcome(t, err, OutcomeProtocolError)

	srv := startAuthz(t, nil, func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return nil, errors.New("policy evaluation failed")
	})
	c = newGRPC(t, GRPCConfig{Target: srv.addr})
	_, err = c.Check(context.Background(), testRequest())
	wantOutcome(t, err, OutcomeServiceError)
}

// TLS to the service, through the caller's dial function.
func TestGRPCTLSWithDial(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := startAuthz(t, &tls.Config{Certificates: []tls.Certificate{cert}}, answer(&authv3.CheckResponse{Status: okStatus()}))
	var dials atomic.Int32
	c := newGRPC(t, GRPCConfig{
		Target: "authz.test:9191", // resolved by Dial, as a Backend cluster would
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			if addr != "authz.test:9191" {
				t.Errorf("dial %q", addr)
			}
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, "tcp", srv.addr)
		},
		TLS: &tls.Config{RootCAs: pool, ServerName: "authz.test"},
	})
	for range 3 {
		d, err := c.Check(context.Background(), testRequest())
		if err != nil || !d.Allowed {
			t.Fatalf("Check = %+v, %v", d, err)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("dialed %d times, want 1 (the connection is reused)", n)
	}

	// A client that does not trust the certificate cannot get an answer.
	bad := newGRPC(t, GRPCConfig{Target: srv.addr, TLS: &tls.Config{ServerName: "authz.test"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := bad.Check(ctx, testRequest()); OutcomeOf(nil, err) != OutcomeUnavailable {
		t.Errorf("untrusted certificate: %v", err)
	}
}

// An injected connection is used as is and not closed by Close.
func TestGRPCInjectedConn(t *testing.T) {
	srv := startAuthz(t, nil, answer(&authv3.CheckResponse{Status: okStatus()}))
	cc, err := grpc.NewClient("passthrough:///"+srv.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c, err := NewGRPC(GRPCConfig{Conn: cc})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := c.Check(context.Background(), testRequest()); err != nil || !d.Allowed {
		t.Fatalf("Check = %+v, %v", d, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if d, err := c.Check(context.Background(), testRequest()); err != nil || !d.Allowed {
		t.Fatalf("after Close: Check = %+v, %v (the injected conn must stay open)", d, err)
	}
	if _, err := NewGRPC(GRPCConfig{}); err == nil {
		t.Error("NewGRPC without Conn or Target: no error")
	}
}
