package extauthz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// authzServer is a real envoy.service.auth.v3.Authorization server on loopback whose answer
// is the handler's. It records the CheckRequests it got.
type authzServer struct {
	authv3.UnimplementedAuthorizationServer
	handler func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error)

	mu   sync.Mutex
	reqs []*authv3.CheckRequest

	addr string
}

func (s *authzServer) Check(ctx context.Context, r *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
	return s.handler(ctx, r)
}

func (s *authzServer) last(t *testing.T) *authv3.CheckRequest {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("the server got no CheckRequest")
	}
	return s.reqs[len(s.reqs)-1]
}

// startAuthz serves handler on a loopback port until the test ends; tlsCfg nil means h2c.
func startAuthz(t testing.TB, tlsCfg *tls.Config, handler func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error)) *authzServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	gs := grpc.NewServer(opts...)
	s := &authzServer{handler: handler, addr: lis.Addr().String()}
	authv3.RegisterAuthorizationServer(gs, s)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return s
}

// newGRPC returns a client for cfg, closed when the test ends.
func newGRPC(t testing.TB, cfg GRPCConfig) *GRPCClient {
	t.Helper()
	c, err := NewGRPC(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// selfSigned returns a server certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "authz.test"},
		DNSNames:              []string{"authz.test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// wantOutcome fails unless err is an *Error with outcome o.
func wantOutcome(t *testing.T, err error, o Outcome) *Error {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("error = %v (%T), want *Error with outcome %s", err, err, o)
	}
	if e.Outcome != o {
		t.Fatalf("outcome = %s (%v), want %s", e.Outcome, e.Err, o)
	}
	if got := OutcomeOf(nil, err); got != o {
		t.Fatalf("OutcomeOf = %s, want %s", got, o)
	}
	return e
}
