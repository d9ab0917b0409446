package upstream

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"syscall"
	"time"
)

// Dialer opens every outbound connection the data plane makes: HTTP clusters (through their
// transports, TLS included), TCP, TLS and UDP relays, health checks and mirrors. The default is
// the operating system's network; a tunnel's user-space network stack can be plugged in here.
// control, when non-nil, must be applied to the address actually dialed (the destination
// policy); a Dialer that does not go through the kernel applies it before connecting.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string, control func(network, address string, c syscall.RawConn) error) (net.Conn, error)
}

// NetDialer is the default Dialer: net.Dialer with a 10 s connect timeout and TCP keep-alives.
type NetDialer struct{}

// DialContext dials with the kernel's network stack.
func (NetDialer) DialContext(ctx context.Context, network, addr string, control func(string, string, syscall.RawConn) error) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: control}
	return d.DialContext(ctx, network, addr)
}

// Picker chooses the endpoint address for one attempt among the healthy ones, skipping those
// already tried by the request when it can. Load-balancing algorithms (least request, ring hash,
// maglev, random) are Pickers.
type Picker interface {
	Pick(healthy []*Address, exclude []netip.Addr) *Address
}

// RoundRobin is the default Picker.
type RoundRobin struct{ next atomic.Uint64 }

// Pick returns the next address in turn that the request has not tried (or the next one when
// it tried them all).
func (p *RoundRobin) Pick(list []*Address, exclude []netip.Addr) *Address {
	n := uint64(len(list))
	start := p.next.Add(1)
	for i := uint64(0); i < n; i++ {
		if a := list[(start+i)%n]; !slices.Contains(exclude, a.IP) {
			return a
		}
	}
	return list[start%n]
}
