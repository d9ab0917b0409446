package collector

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"google.golang.org/grpc"
)

// guardID names the egress guard in the exporters' middleware lists. Every network exporter
// of a tenant's collector gets it (the YAML may neither set middlewares nor name an extension).
var guardID = component.MustNewID("apoxy_egress")

// egressGuard is the client middleware every OTLP/HTTP, OTLP/gRPC and remote-write exporter
// goes through, because a tenant's exporter runs inside the server:
//
//   - it dials for the exporter, and refuses loopback, private, link-local (cloud metadata),
//     CGNAT, multicast and unspecified destinations, checked on the address actually dialed
//     (after DNS, so a name that resolves to 10.0.0.1 is refused too), unless the Config allows
//     private endpoints;
//   - it keeps the HTTP transports, to close their idle keep-alive connections at Stop (the
//     upstream exporters leave them to time out after 90 s, each with two goroutines).
type egressGuard struct {
	component.StartFunc
	component.ShutdownFunc
	allowPrivate bool

	mu         sync.Mutex
	transports []*http.Transport
}

// GetHTTPRoundTripper implements extensionmiddleware.HTTPClient. The exporter's transport
// (its own clone of http.DefaultTransport) gets the guarded dialer.
func (g *egressGuard) GetHTTPRoundTripper(context.Context) (extensionmiddleware.WrapHTTPRoundTripperFunc, error) {
	return func(_ context.Context, base http.RoundTripper) (http.RoundTripper, error) {
		t, ok := base.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("egress guard: unexpected HTTP transport %T", base)
		}
		t.DialContext = g.dialer().DialContext
		g.mu.Lock()
		g.transports = append(g.transports, t)
		g.mu.Unlock()
		return t, nil
	}, nil
}

// GetGRPCClientOptions implements extensionmiddleware.GRPCClient.
func (g *egressGuard) GetGRPCClientOptions(context.Context) ([]grpc.DialOption, error) {
	d := g.dialer()
	return []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	})}, nil
}

// dialer is http.DefaultTransport's dialer with the destination check.
func (g *egressGuard) dialer() *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}
}

func (g *egressGuard) control(_, address string, _ syscall.RawConn) error {
	if g.allowPrivate {
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	if !publicAddr(ip) {
		return fmt.Errorf("destination %s is not a public address: refused", ip)
	}
	return nil
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// publicAddr says whether ip may be an export destination of a tenant.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && !ip.IsLoopback() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast() &&
		!ip.IsLinkLocalMulticast() && !ip.IsInterfaceLocalMulticast() && !ip.IsMulticast() &&
		!ip.IsUnspecified() && !cgnat.Contains(ip) && !(ip.Is4() && ip.As4()[0] == 0)
}

// closeIdle closes the idle connections of every transport (at Stop, after the exporters).
func (g *egressGuard) closeIdle() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, t := range g.transports {
		t.CloseIdleConnections()
	}
	g.transports = nil
}

// guardedHost is the host an exporter starts with: its only extension is the guard. Status
// reports still reach the service.
type guardedHost struct {
	host  component.Host
	guard *egressGuard
}

// GetExtensions implements component.Host.
func (h guardedHost) GetExtensions() map[component.ID]component.Component {
	return map[component.ID]component.Component{guardID: h.guard}
}

// Report implements componentstatus.Reporter.
func (h guardedHost) Report(e *componentstatus.Event) {
	if r, ok := h.host.(componentstatus.Reporter); ok {
		r.Report(e)
	}
}

// guarded adds the guard to the middlewares of a network exporter's raw config.
func guarded(typ string, m map[string]any) map[string]any {
	switch typ {
	case "otlp", "otlp_grpc", "otlphttp", "otlp_http", "prometheusremotewrite":
	default:
		return m
	}
	mw := []any{map[string]any{"id": guardID.String()}}
	out := cloneMap(m)
	out["middlewares"] = mw
	if h, ok := out["http"].(map[string]any); ok && typ == "prometheusremotewrite" {
		h = cloneMap(h)
		h["middlewares"] = mw
		out["http"] = h
	}
	return out
}
