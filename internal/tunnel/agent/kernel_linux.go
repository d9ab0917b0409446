package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"apoxy.dev/apoxy/internal/tunnel"
	"apoxy.dev/apoxy/internal/tunnel/netstack"
)

// tunPlane is kernel mode: a TUN device holding the agent's overlay address, with a route to
// the project's overlay, so this machine's own sockets reach the overlay and services
// listening on [::] (or on the overlay address) are reached from it. Packets the kernel
// routes into the device go out through the first live session; every session's packets go
// into the device.
type tunPlane struct {
	file *os.File
	link netlink.Link
	log  *slog.Logger

	mu       sync.Mutex
	sessions []*tunSession
	// prefix is the /96 configured on the device (the first session's; a reconnect under the
	// same name gets the same one back).
	prefix netip.Prefix
}

// newTUNPlane makes the TUN device (not persistent: it goes when the process does), sets
// its MTU and brings it up.
func newTUNPlane(name string, mtu int, log *slog.Logger) (*tunPlane, error) {
	if name == "" {
		name = "apoxy0"
	}
	if mtu <= 0 {
		mtu = 1420
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("kernel mode: open /dev/net/tun: %w (it needs CAP_NET_ADMIN and the tun module; --mode user needs neither)", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("kernel mode: device name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("kernel mode: create TUN device %s: %w (it needs CAP_NET_ADMIN)", name, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	p := &tunPlane{file: os.NewFile(uintptr(fd), "/dev/net/tun"), log: log}
	if p.link, err = netlink.LinkByName(name); err == nil {
		if err = netlink.LinkSetMTU(p.link, mtu); err == nil {
			err = netlink.LinkSetUp(p.link)
		}
	}
	if err != nil {
		p.file.Close()
		return nil, fmt.Errorf("kernel mode: set up %s: %w", name, err)
	}
	go p.outbound(mtu)
	return p, nil
}

// configure gives the device the agent's address and the route to the project's overlay.
// Only the project's /48 is routed here, even when the node has egress (::/0 advertised):
// taking the machine's default route is not the agent's to do.
func (p *tunPlane) configure(sess *tunnel.Session) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.prefix == sess.Prefix {
		return nil
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: tunnel.AgentAddr(sess.Prefix).AsSlice(), Mask: net.CIDRMask(sess.Prefix.Bits(), 128)}, Flags: unix.IFA_F_NODAD}
	if err := netlink.AddrReplace(p.link, addr); err != nil {
		return fmt.Errorf("kernel mode: address %s: %w", addr.IPNet, err)
	}
	overlay := netip.PrefixFrom(sess.Prefix.Addr(), 48).Masked()
	route := &netlink.Route{LinkIndex: p.link.Attrs().Index, Dst: &net.IPNet{IP: overlay.Addr().AsSlice(), Mask: net.CIDRMask(48, 128)}}
	if err := netlink.RouteReplace(route); err != nil {
		return fmt.Errorf("kernel mode: route %s: %w", overlay, err)
	}
	p.prefix = sess.Prefix
	p.log.Info("tunnel: kernel mode", "device", p.link.Attrs().Name, "address", addr.IPNet.String(), "route", overlay)
	return nil
}

func (p *tunPlane) attach(sess *tunnel.Session) (planeSession, error) {
	if err := p.configure(sess); err != nil {
		return nil, err
	}
	ts := &tunSession{conn: sess.Conn, done: make(chan struct{})}
	p.mu.Lock()
	p.sessions = append(p.sessions, ts)
	p.mu.Unlock()
	go p.inbound(ts)
	sess.ReceiveDirect(ts.done, func(b []byte) {
		if _, err := p.file.Write(b); err != nil {
			ts.stats.Dropped.Add(1)
			return
		}
		ts.stats.PacketsIn.Add(1)
		ts.stats.BytesIn.Add(uint64(len(b)))
	}, func() { ts.stats.Dropped.Add(1) })
	return ts, nil
}

// inbound writes a session's packets into the device.
func (p *tunPlane) inbound(ts *tunSession) {
	defer func() {
		p.mu.Lock()
		p.sessions = slices.DeleteFunc(p.sessions, func(s *tunSession) bool { return s == ts })
		p.mu.Unlock()
		ts.Close()
	}()
	buf := make([]byte, 65536)
	for {
		n, err := ts.conn.ReadPacket(buf)
		if err != nil {
			return
		}
		if _, err := p.file.Write(buf[:n]); err != nil {
			ts.stats.Dropped.Add(1)
			continue
		}
		ts.stats.PacketsIn.Add(1)
		ts.stats.BytesIn.Add(uint64(n))
	}
}

// outbound sends what the kernel routes into the device through the first live session.
func (p *tunPlane) outbound(mtu int) {
	buf := make([]byte, mtu+64)
	for {
		n, err := p.file.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				p.log.Error("tunnel: read TUN", "err", err)
			}
			return
		}
		p.mu.Lock()
		var ts *tunSession
		if len(p.sessions) > 0 {
			ts = p.sessions[0]
		}
		p.mu.Unlock()
		if ts == nil {
			continue // no session: the packet is lost, as on a link that is down
		}
		icmp, err := ts.conn.WritePacket(buf[:n])
		if err != nil {
			ts.stats.Dropped.Add(1)
			continue
		}
		ts.stats.PacketsOut.Add(1)
		ts.stats.BytesOut.Add(uint64(n))
		if len(icmp) > 0 {
			p.file.Write(icmp) // e.g. Packet Too Big: the kernel lowers the path MTU
		}
	}
}

func (p *tunPlane) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

func (p *tunPlane) close() { p.file.Close() }

// tunSession is one session feeding the TUN device.
type tunSession struct {
	conn interface {
		ReadPacket([]byte) (int, error)
		WritePacket([]byte) ([]byte, error)
		Close() error
	}
	done  chan struct{}
	once  sync.Once
	stats netstack.SessionStats
}

func (t *tunSession) Done() <-chan struct{}         { return t.done }
func (t *tunSession) Stats() *netstack.SessionStats { return &t.stats }

// Close ends the session's part in the device (the connection is its owner's to close, but
// closing it is what stops the inbound reader).
func (t *tunSession) Close() {
	t.once.Do(func() {
		t.conn.Close()
		close(t.done)
	})
}
