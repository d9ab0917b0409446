package upstream

import (
	"context"
	"net"
	"syscall"
	"time"
)

// Dialer opens every outbound connection the data plane makes: HTTP clusters (through their
// transports, TLS included), TCP, TLS and UDP relays, health checks and mirrors. The default is
// the operating system's network; a tunnel's user-space network stack can be plugged in here.
// scope names who dials, in the "project/namespace/name" form (ProjectOf gives the project):
// a tunnel's stack is a project's own, and only that project's dials may enter it. control,
// when non-nil, must be applied to the address actually dialed (the destination policy); a
// Dialer that does not go through the kernel applies it before connecting, or knows why not.
type Dialer interface {
	DialContext(ctx context.Context, scope, network, addr string, control func(network, address string, c syscall.RawConn) error) (net.Conn, error)
}

// NetDialer is the default Dialer: net.Dialer with a 10 s connect timeout and TCP keep-alives.
type NetDialer struct{}

// DialContext dials with the kernel's network stack.
func (NetDialer) DialContext(ctx context.Context, _, network, addr string, control func(string, string, syscall.RawConn) error) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: control}
	return d.DialContext(ctx, network, addr)
}

// Picker chooses the endpoint address for one attempt among the healthy ones (never an empty
// list). Load-balancing algorithms (round robin, least request, random, ring hash, maglev) are
// Pickers, built from a Backend's LoadBalancer by PickerFor. A retry that should avoid addresses
// already tried asks again (Cluster.PickKey, with the key rehashed), so the tried list never
// crosses the interface (it lives on the request's stack).
//
// key is the request's consistent-hash input, passed by value so a pick allocates nothing;
// pickers that do not hash ignore it, hashing ones balance a request without a key as
// LeastRequest does (not sticky).
type Picker interface {
	Pick(healthy []*Address, key Key) *Address
}

// Key is a request's consistent-hash key (Cluster.HashKey, IPKey). The zero Key means the
// request has none: hashing pickers then fall back to least request.
type Key struct {
	// Hash is the 64-bit hash of the request's hash input.
	Hash uint64
	// Set reports that the request had a hash input.
	Set bool
}

// Preparer is implemented by Pickers that precompute over the pick set: the ring of RingHash,
// the lookup table of Maglev, the slow-start ramp of RoundRobin and LeastRequest. The cluster
// calls Prepare with each new pick set (health, ejection or resolution changed it) before
// publishing it, never concurrently with another Prepare; Pick may run at any time, also with
// the previous set, so a Preparer keeps its structure behind an atomic pointer and Pick takes
// no lock.
type Preparer interface {
	Prepare(healthy []*Address)
}
