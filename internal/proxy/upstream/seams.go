package upstream

import (
	"context"
	"net"
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

// Picker chooses the endpoint address for one attempt among the healthy ones (never an empty
// list). Load-balancing algorithms (least request, ring hash, maglev, random) are Pickers. A
// retry that should avoid addresses already tried asks again (Cluster.Pick), so the tried list
// never crosses the interface (it lives on the request's stack).
type Picker interface {
	Pick(healthy []*Address) *Address
}

// RoundRobin is the default Picker.
type RoundRobin struct{ next atomic.Uint64 }

// Pick returns the next address in turn.
func (p *RoundRobin) Pick(list []*Address) *Address {
	return list[p.next.Add(1)%uint64(len(list))]
}
