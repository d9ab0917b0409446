package upstream

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// ErrDestinationDenied is wrapped by every refusal of Destinations.Check.
var ErrDestinationDenied = errors.New("destination denied")

// Reserved is one of the server's own sockets, which no Backend may reach.
type Reserved struct {
	// Addr is the socket; an unspecified address (0.0.0.0, ::) stands for every address of
	// this machine.
	Addr netip.AddrPort
	// Name says what listens there ("the API server", "the admin listener").
	Name string
}

// Destinations decides which addresses the gateway may connect to on behalf of a project's
// Backends, so a tenant cannot turn the gateway against the machine it runs on or the network
// behind it (server-side request forgery). It is checked on every resolved address and again
// on the address each connection is actually made to (DNS rebinding cannot slip past).
//
//   - Never: the server's own sockets (API, admin, DNS, tunnels), unspecified, link-local (and
//     with it the 169.254.169.254 metadata service), multicast and broadcast addresses, and other
//     clouds' metadata addresses.
//   - Internal (loopback, RFC 1918 private, carrier-grade NAT, unique local, and this machine's
//     own addresses): only within the ranges allowed to every project (Allow; `apoxy dev`
//     allows them all) or to that project (SetProject, from the Project's
//     spec.backendNetworks).
//   - Everything else: allowed.
//
// It is safe for concurrent use.
type Destinations struct {
	mu       sync.RWMutex
	reserved []Reserved
	local    []netip.Addr
	allow    []netip.Prefix
	projects map[string][]netip.Prefix
}

// NewDestinations returns a policy allowing the internal ranges allow to every project and
// refusing the reserved sockets.
func NewDestinations(allow []netip.Prefix, reserved []Reserved) *Destinations {
	d := &Destinations{allow: allow, reserved: reserved, projects: map[string][]netip.Prefix{}}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				d.local = append(d.local, p.Addr().Unmap())
			}
		}
	}
	return d
}

// AllInternal are the internal ranges: what `apoxy dev` allows every project.
var AllInternal = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("fc00::/7"),
}

// never are ranges no Backend may reach, whatever is allowed.
var never = []struct {
	p    netip.Prefix
	what string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified address (it reaches this machine)"},
	{netip.MustParsePrefix("::/128"), "an unspecified address (it reaches this machine)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata services live there)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata service"},
	{netip.MustParsePrefix("100.100.100.200/32"), "a cloud metadata service"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
}

// Reserve adds one of the server's own sockets (known only once bound).
func (d *Destinations) Reserve(r Reserved) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reserved = append(d.reserved, r)
}

// SetProject sets the internal ranges one project may reach beyond the common ones (nil
// removes them).
func (d *Destinations) SetProject(project string, allow []netip.Prefix) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(allow) == 0 {
		delete(d.projects, project)
		return
	}
	d.projects[project] = slices.Clone(allow)
}

// projectOf is the project a backend name ("project/namespace/name") belongs to.
// ProjectOf is the project of a scope or backend name ("project/namespace/name").
func ProjectOf(backend string) string { return projectOf(backend) }

func projectOf(backend string) string {
	p, _, _ := strings.Cut(backend, "/")
	return p
}

// CheckAddr decides an address for a backend regardless of port (resolved endpoints).
func (d *Destinations) CheckAddr(backend string, ip netip.Addr) error {
	if d == nil {
		return nil
	}
	ip = ip.Unmap()
	for _, n := range never {
		if n.p.Contains(ip) {
			return fmt.Errorf("%w: %s is %s; the gateway never connects there", ErrDestinationDenied, ip, n.what)
		}
	}
	internal := slices.ContainsFunc(AllInternal, func(p netip.Prefix) bool { return p.Contains(ip) })
	d.mu.RLock()
	defer d.mu.RUnlock()
	internal = internal || slices.Contains(d.local, ip)
	if !internal {
		return nil
	}
	in := func(p netip.Prefix) bool { return p.Contains(ip) }
	if slices.ContainsFunc(d.allow, in) || slices.ContainsFunc(d.projects[projectOf(backend)], in) {
		return nil
	}
	return fmt.Errorf("%w: %s is an internal address this project may not reach; the server admin can allow it in the Project's spec.backendNetworks (or every project's with apoxy server --backend-networks)", ErrDestinationDenied, ip)
}

// Check decides a connection to ip:port for a backend.
func (d *Destinations) Check(backend string, ip netip.Addr, port uint16) error {
	if d == nil {
		return nil
	}
	ip = ip.Unmap()
	if err := d.CheckAddr(backend, ip); err != nil {
		return err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, r := range d.reserved {
		if r.Addr.Port() != port {
			continue
		}
		ra := r.Addr.Addr().Unmap()
		if ra == ip || ra.IsUnspecified() && (ip.IsLoopback() || slices.Contains(d.local, ip)) || ra.IsLoopback() && ip.IsLoopback() {
			return fmt.Errorf("%w: %s is %s; the gateway never connects to its own sockets", ErrDestinationDenied, netip.AddrPortFrom(ip, port), r.Name)
		}
	}
	return nil
}

// control is a net.Dialer Control function enforcing the policy on the address actually
// dialed (nil without a policy).
func (d *Destinations) control(backend string) func(network, address string, _ syscall.RawConn) error {
	if d == nil {
		return nil
	}
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: cannot parse %q", ErrDestinationDenied, address)
		}
		return d.Check(backend, ap.Addr(), ap.Port())
	}
}
