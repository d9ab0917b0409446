package echo

import (
	"context"
	"errors"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	pb "sigs.k8s.io/gateway-api/conformance/echo-basic/grpcechoserver"
)

// grpcService is the suite's GrpcEcho service name.
const grpcService = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"

// grpcEcho answers the suite's GrpcEcho service (echo-basic with GRPC_ECHO_SERVER set): Echo and
// EchoTwo report the method, the request's metadata, its authority and the pod's identity;
// EchoThree stays unimplemented, as upstream.
type grpcEcho struct {
	pb.UnimplementedGrpcEchoServer
	s *Server
}

func (g *grpcEcho) Echo(ctx context.Context, _ *pb.EchoRequest) (*pb.EchoResponse, error) {
	return g.reply(ctx, "Echo")
}

func (g *grpcEcho) EchoTwo(ctx context.Context, _ *pb.EchoRequest) (*pb.EchoResponse, error) {
	return g.reply(ctx, "EchoTwo")
}

func (g *grpcEcho) reply(ctx context.Context, method string) (*pb.EchoResponse, error) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return nil, errors.New("no request metadata")
	}
	a := &pb.Assertions{
		FullyQualifiedMethod: "/" + grpcService + "/" + method,
		Context:              &pb.Context{Namespace: g.s.id.Namespace, Ingress: g.s.id.Ingress, ServiceName: g.s.id.Service, Pod: g.s.id.Pod},
	}
	for k, vs := range md {
		for _, v := range vs {
			if k == ":authority" {
				a.Authority = v
			}
			a.Headers = append(a.Headers, &pb.Header{Key: k, Value: v})
		}
	}
	g.s.log.printf("gRPC %s authority=%s", a.FullyQualifiedMethod, a.Authority)
	return &pb.EchoResponse{Assertions: a}, nil
}

// grpcHandler serves GrpcEcho over HTTP/2 (h2c or h2) as an http.Handler.
func (s *Server) grpcHandler() http.Handler {
	gs := grpc.NewServer()
	pb.RegisterGrpcEchoServer(gs, &grpcEcho{s: s})
	return gs
}
