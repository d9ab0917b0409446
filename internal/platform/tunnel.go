package platform

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"

	"apoxy.dev/apoxy/internal/apiserver"
	"apoxy.dev/apoxy/internal/tunnel"
)

// TunnelOptions configure the tunnel endpoint.
type TunnelOptions struct {
	// Addr is where agents dial it (UDP; "" runs none: TunnelNodes say so).
	Addr string
}

// tunnelEndpoint is the tunnel endpoint as a component: HTTP/3 CONNECT-IP on a UDP socket,
// with a certificate of the server's CA (the one the CLI config trusts).
type tunnelEndpoint struct {
	srv   *tunnel.Server
	api   *apiserver.Server
	addr  string
	pc    net.PacketConn
	bound atomic.Pointer[netip.AddrPort]
}

func (t *tunnelEndpoint) Name() string { return "tunnel" }

func (t *tunnelEndpoint) Start(ctx context.Context) error {
	pc, err := net.ListenPacket("udp", t.addr)
	if err != nil {
		return err
	}
	ap := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if !ap.Addr().IsUnspecified() {
		hosts = append(hosts, ap.Addr().String())
	}
	cert, err := t.api.ServingCert("tunnel", hosts)
	if err != nil {
		pc.Close()
		return err
	}
	t.pc = pc
	t.bound.Store(&ap)
	go t.srv.Serve(pc, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	return nil
}

func (t *tunnelEndpoint) Ready() error {
	if t.bound.Load() == nil {
		return errors.New("not listening yet")
	}
	return nil
}

func (t *tunnelEndpoint) Stop(context.Context) error {
	err := t.srv.Close()
	if t.pc != nil {
		t.pc.Close()
	}
	return err
}

// Addr is where agents dial, once started.
func (t *tunnelEndpoint) Addr() netip.AddrPort {
	if ap := t.bound.Load(); ap != nil {
		return *ap
	}
	return netip.AddrPort{}
}

// TunnelAddr is where the tunnel endpoint listens (invalid when none runs).
func (p *Platform) TunnelAddr() netip.AddrPort {
	if p.tunnel == nil {
		return netip.AddrPort{}
	}
	return p.tunnel.Addr()
}
