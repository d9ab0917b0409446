package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	connectip "github.com/quic-go/connect-ip-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/yosida95/uritemplate/v3"

	"apoxy.dev/apoxy/internal/tunnel/netstack"
)

// AgentOptions configure one agent connection (user mode).
type AgentOptions struct {
	// Endpoint is the tunnel endpoint's host:port (UDP).
	Endpoint string
	// Token is the node's credential (TunnelNode status.credentials.token).
	Token string
	// Name is the agent's name (default: the node's).
	Name string
	// TLS verifies the endpoint (NextProtos is set to h3).
	TLS *tls.Config
	// Forward says where a TCP connection made to the agent's overlay address goes (default
	// 127.0.0.1 on the same port; an IPv4-mapped address goes to that IPv4 address).
	Forward func(to netip.AddrPort) string
	Logger  *slog.Logger
}

// AgentConn is a connected agent: its own user-space stack holding its /96.
type AgentConn struct {
	// Stack is the agent's stack; Prefix its /96; Routes the ranges the gateway serves.
	Stack  *netstack.Stack
	Prefix netip.Prefix
	Routes []netip.Prefix
	conn   *connectip.Conn
	sess   *netstack.Session
}

// ErrUnauthorized is the endpoint refusing the token.
var ErrUnauthorized = errors.New("tunnel: the endpoint refused the token")

// Connect dials the endpoint, opens the CONNECT-IP session, waits for the address and routes
// the gateway gives, and starts forwarding. ctx bounds the whole session, not only the dial.
func Connect(ctx context.Context, opts AgentOptions) (*AgentConn, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	tlsConf := &tls.Config{}
	if opts.TLS != nil {
		tlsConf = opts.TLS.Clone()
	}
	tlsConf.NextProtos = []string{http3.NextProtoH3}
	tmpl, err := uritemplate.New("https://" + opts.Endpoint + Path)
	if err != nil {
		return nil, fmt.Errorf("tunnel: endpoint %q: %w", opts.Endpoint, err)
	}
	req, err := connectip.NewRequest(ctx, tmpl)
	if err != nil {
		return nil, err
	}
	req.Header().Set("Authorization", "Bearer "+opts.Token)
	if opts.Name != "" {
		req.Header().Set(AgentHeader, opts.Name)
	}
	tr := &connectip.Transport{TLSClientConfig: tlsConf, QUICConfig: quicConfig()}
	conn, rsp, err := tr.Dial(req)
	if err != nil {
		if rsp != nil && rsp.StatusCode == 401 {
			return nil, fmt.Errorf("%w (401 from %s)", ErrUnauthorized, opts.Endpoint)
		}
		return nil, fmt.Errorf("tunnel: connect to %s: %w", opts.Endpoint, err)
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	assigned, err := conn.ReceiveAddressAssignment(wait)
	if err != nil || len(assigned) == 0 {
		conn.Close()
		return nil, fmt.Errorf("tunnel: no address assigned: %v", err)
	}
	ipRoutes, err := conn.Routes(wait)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("tunnel: no routes: %w", err)
	}
	a := &AgentConn{Prefix: assigned[0].IPPrefix, conn: conn}
	for _, r := range ipRoutes {
		a.Routes = append(a.Routes, r.Prefixes()...)
	}
	if a.Stack, err = netstack.New(netstack.Options{Owner: true}); err != nil {
		conn.Close()
		return nil, err
	}
	if a.sess, err = a.Stack.Attach(conn, []netip.Prefix{netip.PrefixFrom(AgentAddr(a.Prefix), a.Prefix.Bits())}, a.Routes); err != nil {
		a.Stack.Close()
		conn.Close()
		return nil, err
	}
	forward := opts.Forward
	if forward == nil {
		forward = func(to netip.AddrPort) string {
			host := "127.0.0.1"
			if to.Addr().Is4In6() {
				host = to.Addr().Unmap().String()
			} else if a.Prefix.Contains(to.Addr()) && to.Addr() != AgentAddr(a.Prefix) && isMapped4(a.Prefix, to.Addr()) {
				b := to.Addr().As16()
				host = netip.AddrFrom4([4]byte(b[12:])).String()
			}
			return net.JoinHostPort(host, strconv.Itoa(int(to.Port())))
		}
	}
	a.Stack.ForwardTCP(func(c net.Conn, to netip.AddrPort) {
		defer c.Close()
		local, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", forward(to))
		if err != nil {
			opts.Logger.Debug("tunnel: forward", "to", to, "err", err)
			return
		}
		defer local.Close()
		done := make(chan struct{})
		go func() { io.Copy(local, c); closeWrite(local); close(done) }()
		io.Copy(c, local)
		closeWrite(c)
		<-done
	})
	return a, nil
}

// isMapped4 reports whether a is an IPv4 address mapped into the /96 (low 32 bits, the
// agent's own address excepted).
func isMapped4(p netip.Prefix, a netip.Addr) bool {
	b := a.As16()
	return b[12] != 0 || b[13] != 0 || b[14] != 0 || b[15] > 1
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// Done is closed when the session ends.
func (a *AgentConn) Done() <-chan struct{} { return a.sess.Done() }

// Close ends the session.
func (a *AgentConn) Close() {
	a.sess.Close()
	a.conn.Close()
	a.Stack.Close()
}
