package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"apoxy.dev/apoxy/internal/edgetest"
)

// rawCodec carries message bytes as they are, so the test needs no generated protobuf code.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// grpcEcho serves echo.Echo on addr: Unary and Fail (unary), ServerStream, ClientStream and
// Bidi. Replies carry the backend's name and the x-via header it received in their header
// metadata, and a trailer.
func grpcEcho(t *testing.T, addr, name string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	reply := func(ctx context.Context) {
		md, _ := metadata.FromIncomingContext(ctx)
		grpc.SetHeader(ctx, metadata.Pairs("backend", name, "saw-via", strings.Join(md.Get("x-via"), ",")))
		grpc.SetTrailer(ctx, metadata.Pairs("done", "yes"))
	}
	desc := grpc.ServiceDesc{
		ServiceName: "echo.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "Unary", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var in []byte
				if err := dec(&in); err != nil {
					return nil, err
				}
				reply(ctx)
				out := append([]byte("echo:"), in...)
				return &out, nil
			}},
			{MethodName: "Fail", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var in []byte
				dec(&in)
				return nil, status.Error(codes.NotFound, "no such thing: "+string(in))
			}},
		},
		Streams: []grpc.StreamDesc{
			{StreamName: "ServerStream", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
				var in []byte
				if err := ss.RecvMsg(&in); err != nil {
					return err
				}
				reply(ss.Context())
				for i := range 5 {
					out := []byte(fmt.Sprintf("%s-%d", in, i))
					if err := ss.SendMsg(&out); err != nil {
						return err
					}
				}
				return nil
			}},
			{StreamName: "ClientStream", ClientStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
				var parts []string
				for {
					var in []byte
					err := ss.RecvMsg(&in)
					if err == io.EOF {
						break
					}
					if err != nil {
						return err
					}
					parts = append(parts, string(in))
				}
				reply(ss.Context())
				out := []byte(strings.Join(parts, "+"))
				return ss.SendMsg(&out)
			}},
			{StreamName: "Bidi", ServerStreams: true, ClientStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
				reply(ss.Context())
				for {
					var in []byte
					err := ss.RecvMsg(&in)
					if err == io.EOF {
						return nil
					}
					if err != nil {
						return err
					}
					out := append([]byte("bidi:"), in...)
					if err := ss.SendMsg(&out); err != nil {
						return err
					}
				}
			}},
		},
	}
	s := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	s.RegisterService(&desc, struct{}{})
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln
}

// TestGRPCRoute: a grpc-go client through the gateway (h2c on an HTTP listener) to an h2c grpc-go
// backend, over a GRPCRoute: unary, server, client and bidirectional streams, header filters,
// the backend's status codes and trailers, and gRPC errors for what the proxy answers itself.
func TestGRPCRoute(t *testing.T) {
	ln := grpcEcho(t, "127.0.0.33:0", "v1")
	e := edgetest.Start(t, edgetest.Options{})
	port := freeTCPPort(t)
	e.Apply(fmt.Sprintf(`
apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: grpc}
spec:
  gatewayClassName: apoxy
  listeners: [{name: http, protocol: HTTP, port: %d}]
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: echo}
spec: {endpoints: [{ip: 127.0.0.33}], protocol: h2c}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: down}
spec: {endpoints: [{ip: 127.0.0.34}], protocol: h2c}
---
apiVersion: gateway.apoxy.dev/v1
kind: GRPCRoute
metadata: {name: echo}
spec:
  parentRefs: [{name: grpc}]
  hostnames: [grpc.example.com]
  rules:
  - matches: [{method: {service: echo.Echo}}]
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: x-via, value: gateway}]}}
    backendRefs: [{kind: Backend, name: echo, port: %s}]
  - matches: [{method: {service: echo.Down}}]
    backendRefs: [{kind: Backend, name: down, port: %s}]
`, port, portOf(ln), portOf(ln)))
	e.WaitFor("route accepted", e.RouteKindAccepted("GRPCRoute", "echo"))

	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority("grpc.example.com"), grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Unary (retried until the data plane has the route).
	var header, trailer metadata.MD
	e.WaitFor("unary call answered", func() error {
		in, out := []byte("hi"), []byte(nil)
		if err := conn.Invoke(ctx, "/echo.Echo/Unary", &in, &out, grpc.Header(&header), grpc.Trailer(&trailer)); err != nil {
			return err
		}
		if string(out) != "echo:hi" {
			return fmt.Errorf("reply %q", out)
		}
		return nil
	})
	if got := header.Get("saw-via"); len(got) != 1 || got[0] != "gateway" || trailer.Get("done")[0] != "yes" {
		t.Fatalf("header %v trailer %v: want the filter's x-via seen by the backend and its trailer", header, trailer)
	}

	// The backend's own status and message pass through unchanged.
	in, out := []byte("x"), []byte(nil)
	err = conn.Invoke(ctx, "/echo.Echo/Fail", &in, &out)
	if st, _ := status.FromError(err); st.Code() != codes.NotFound || st.Message() != "no such thing: x" {
		t.Fatalf("Fail: %v, want NotFound from the backend", err)
	}

	// Server stream.
	ss, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/echo.Echo/ServerStream")
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("s")
	ss.SendMsg(&msg)
	ss.CloseSend()
	var got []string
	for {
		var m []byte
		if err := ss.RecvMsg(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("server stream: %v", err)
		}
		got = append(got, string(m))
	}
	if strings.Join(got, ",") != "s-0,s-1,s-2,s-3,s-4" || ss.Trailer().Get("done")[0] != "yes" {
		t.Fatalf("server stream: %v, trailer %v", got, ss.Trailer())
	}

	// Client stream.
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/echo.Echo/ClientStream")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "b", "c"} {
		m := []byte(p)
		if err := cs.SendMsg(&m); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cs.CloseSend()
	var sum []byte
	if err := cs.RecvMsg(&sum); err != nil || string(sum) != "a+b+c" {
		t.Fatalf("client stream: %q, %v", sum, err)
	}

	// Bidirectional: each reply arrives before the next message is sent.
	bs, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, "/echo.Echo/Bidi")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"1", "2", "3"} {
		m := []byte(p)
		if err := bs.SendMsg(&m); err != nil {
			t.Fatal(err)
		}
		var r []byte
		if err := bs.RecvMsg(&r); err != nil || string(r) != "bidi:"+p {
			t.Fatalf("bidi %s: %q, %v", p, r, err)
		}
	}
	bs.CloseSend()
	var r []byte
	if err := bs.RecvMsg(&r); !errors.Is(err, io.EOF) {
		t.Fatalf("bidi end: %v", err)
	}

	// What the proxy answers itself is a gRPC status, not an HTML page.
	for _, tc := range []struct {
		method string
		want   codes.Code
	}{
		{"/other.Service/Call", codes.Unimplemented}, // no route: 404
		{"/echo.Down/Call", codes.Unavailable},       // connection refused: 502
	} {
		err := conn.Invoke(ctx, tc.method, &in, &out)
		if st, _ := status.FromError(err); st.Code() != tc.want {
			t.Errorf("%s: %v, want %v", tc.method, err, tc.want)
		}
	}
}
