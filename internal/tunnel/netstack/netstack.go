// Package netstack is the user-space TCP/IP stack (gVisor's) both ends of a tunnel use: the
// gateway holds one per project and dials into agents' prefixes through it without a TUN
// device or privileges; an agent in user mode holds one that owns its prefix and forwards what
// arrives to local services. A Stack carries any number of sessions, each a packet connection
// (a CONNECT-IP conn, RFC 9484) attached as its own NIC with the prefixes routed into it;
// above it everything is plain net.Conn.
package netstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// MTU is the tunnel's IP MTU: the IPv6 minimum, which fits in a QUIC datagram from the first
// packet when the QUIC initial packet size is at least 1320 bytes.
const MTU = 1280

// PacketConn carries whole IP packets: a CONNECT-IP conn. WritePacket may return an ICMP
// packet for the sender (a packet it could not forward), which is given back to the stack.
type PacketConn interface {
	ReadPacket(b []byte) (int, error)
	WritePacket(b []byte) (icmp []byte, err error)
}

// Options configure a Stack.
type Options struct {
	// Owner: the stack answers for every address of its sessions' prefixes, not only the ones
	// added (an agent owns its whole /96). HandleLocal is then off: with it, every packet from
	// an owned address would look like our own and be dropped.
	Owner bool
	// AcceptAll: sessions' packets to any address reach the stack's transports (the gateway's
	// stack: an agent's connection to another agent, or out through the gateway, reaches its
	// TCP forwarder), and replies may come from those addresses. HandleLocal is off then
	// too: a promiscuous NIC makes every destination look local, and the stack's own dials
	// would loop back to its forwarder.
	AcceptAll bool
	// TCPBuffer caps TCP send and receive buffers (default 1 MiB): large buffers make bursts
	// the tunnel's datagram queues drop, and retransmission storms follow.
	TCPBuffer int
	// TimeWait is how long closed TCP connections linger (default 2 s, ownerTimeWait for an
	// Owner stack). A SYN whose 4-tuple is still in TIME_WAIT is not handed to the forwarder
	// (gVisor gives it only to a listener): it is lost, and the dialer's retry a second
	// later too while TIME_WAIT lasts.
	TimeWait time.Duration
}

// ownerTimeWait is an agent's TIME_WAIT. An agent closes first whenever its local service
// does, so its closed connections are in TIME_WAIT while the gateway, which cannot see that,
// picks source ports: it reused one within 2 s when a node's other agent left
// (TestAgentsShareANodeAndDrain lost 4 of ~800 SYNs). Inside a tunnel old duplicates do not
// wander for long; 100 ms is far shorter than any port reuse.
const ownerTimeWait = 100 * time.Millisecond

// Stack is a user-space TCP/IP stack.
type Stack struct {
	s    *stack.Stack
	opts Options

	mu      sync.Mutex
	nextNIC tcpip.NICID
	routes  map[tcpip.NICID][]tcpip.Route
	// local are addresses added on every session's NIC (the gateway's own), so that source
	// address selection works whichever NIC a route picks.
	local []netip.Prefix

	stats Stats
}

// Stats count packets through a Stack's sessions.
type Stats struct {
	// PacketsIn and PacketsOut are IP packets received from and sent to sessions; Dropped
	// are packets a session refused or that could not be parsed.
	PacketsIn, PacketsOut, Dropped atomic.Uint64
}

// New makes a stack.
func New(opts Options) (*Stack, error) {
	if opts.TCPBuffer <= 0 {
		opts.TCPBuffer = 1 << 20
	}
	if opts.TimeWait <= 0 {
		opts.TimeWait = 2 * time.Second
		if opts.Owner {
			opts.TimeWait = ownerTimeWait
		}
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		HandleLocal:        !opts.Owner && !opts.AcceptAll,
	})
	sack := tcpip.TCPSACKEnabled(true)
	tw := tcpip.TCPTimeWaitTimeoutOption(opts.TimeWait)
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4096, Default: min(opts.TCPBuffer, 256<<10), Max: opts.TCPBuffer}
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4096, Default: min(opts.TCPBuffer, 256<<10), Max: opts.TCPBuffer}
	for _, opt := range []tcpip.SettableTransportProtocolOption{&sack, &tw, &snd, &rcv} {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			return nil, fmt.Errorf("netstack: %s", err)
		}
	}
	return &Stack{s: s, opts: opts, nextNIC: 1, routes: map[tcpip.NICID][]tcpip.Route{}}, nil
}

// Close tears the stack down.
func (s *Stack) Close() {
	s.s.Close()
	s.s.Wait()
}

// Stats returns the stack's packet counters.
func (s *Stack) Stats() *Stats { return &s.stats }

// TCPRetransmits is how many TCP segments the stack has sent again: loss in the tunnel.
func (s *Stack) TCPRetransmits() uint64 { return s.s.Stats().TCP.Retransmits.Value() }

// AddLocal adds an address every session's NIC holds (the gateway's own overlay address).
func (s *Stack) AddLocal(p netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.local = append(s.local, p)
	for nic := range s.routes {
		if err := s.addAddress(nic, p); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stack) addAddress(nic tcpip.NICID, p netip.Prefix) error {
	pa := tcpip.ProtocolAddress{Protocol: protoOf(p.Addr()), AddressWithPrefix: tcpip.AddressWithPrefix{
		Address: tcpip.AddrFromSlice(p.Addr().AsSlice()), PrefixLen: p.Bits(),
	}}
	if err := s.s.AddProtocolAddress(nic, pa, stack.AddressProperties{}); err != nil {
		return fmt.Errorf("netstack: add %s: %s", p, err)
	}
	return nil
}

func protoOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

// Session is one packet connection attached to a Stack.
type Session struct {
	s     *Stack
	nic   tcpip.NICID
	ep    *channel.Endpoint
	conn  PacketConn
	done  chan struct{}
	once  sync.Once
	err   error
	stats SessionStats
}

// SessionStats count one session's traffic.
type SessionStats struct {
	PacketsIn, PacketsOut, BytesIn, BytesOut, Dropped atomic.Uint64
}

// Stats returns the session's counters.
func (ss *Session) Stats() *SessionStats { return &ss.stats }

// Attach adds a session: conn becomes a NIC holding addrs (with the stack's local addresses),
// and routes (the prefixes behind it) lead to it. The session runs until conn fails or Close.
func (s *Stack) Attach(conn PacketConn, addrs, routes []netip.Prefix) (*Session, error) {
	return s.AttachWith(conn, addrs, routes, AttachOptions{})
}

// AttachOptions tune one session.
type AttachOptions struct {
	// SkipTXChecksums leaves TCP and UDP checksums of the packets sent to this session for
	// the peer not to verify: set it only when the peer is a Stack (its links are trusted:
	// QUIC authenticates every datagram), never for a kernel TUN device.
	SkipTXChecksums bool
}

// AttachWith is Attach with options.
func (s *Stack) AttachWith(conn PacketConn, addrs, routes []netip.Prefix, opts AttachOptions) (*Session, error) {
	ss := &Session{s: s, conn: conn, done: make(chan struct{})}
	ep := channel.New(0, MTU, "")
	// Packets arrive through QUIC, which authenticates every datagram: a checksum adds no
	// protection, only a pass over every byte.
	ep.LinkEPCapabilities |= stack.CapabilityRXChecksumOffload
	if opts.SkipTXChecksums {
		ep.LinkEPCapabilities |= stack.CapabilityTXChecksumOffload
	}
	ss.ep = ep
	s.mu.Lock()
	nic := s.nextNIC
	s.nextNIC++
	ss.nic = nic
	if err := s.s.CreateNIC(nic, &link{Endpoint: ep, ss: ss}); err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("netstack: NIC: %s", err)
	}
	if s.opts.Owner || s.opts.AcceptAll {
		s.s.SetPromiscuousMode(nic, true)
		s.s.SetSpoofing(nic, true)
	}
	var err error
	for _, p := range append(append([]netip.Prefix(nil), addrs...), s.local...) {
		if err == nil {
			err = s.addAddress(nic, p)
		}
	}
	var rs []tcpip.Route
	for _, p := range routes {
		sub, serr := tcpip.NewSubnet(tcpip.AddrFromSlice(p.Masked().Addr().AsSlice()), tcpip.MaskFromBytes(net.CIDRMask(p.Bits(), p.Addr().BitLen())))
		if serr != nil && err == nil {
			err = fmt.Errorf("netstack: route %s: %v", p, serr)
		}
		rs = append(rs, tcpip.Route{Destination: sub, NIC: nic})
	}
	if err != nil {
		s.s.RemoveNIC(nic)
		s.mu.Unlock()
		return nil, err
	}
	s.routes[nic] = rs
	s.s.SetRouteTable(s.allRoutesLocked())
	s.mu.Unlock()
	go ss.inbound()
	return ss, nil
}

// link is a session's NIC. Packets the stack sends are written to the session's connection
// at once, on the sending goroutine: no queue and no goroutine between the TCP sender and
// QUIC (each hop costs tens of microseconds of wake-up on a busy machine). The embedded
// channel endpoint provides the rest of the LinkEndpoint interface and the inbound path.
type link struct {
	*channel.Endpoint
	ss *Session
}

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, MTU+64); return &b }}

// WritePackets implements stack.LinkEndpoint.
func (l *link) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, pkt := range pkts.AsSlice() {
		l.ss.write(pkt)
		n++
	}
	return n, nil
}

func (ss *Session) write(pkt *stack.PacketBuffer) {
	bp := bufs.Get().(*[]byte)
	buf := (*bp)[:0]
	for _, sl := range pkt.AsSlices() {
		buf = append(buf, sl...)
	}
	icmpReply, err := ss.conn.WritePacket(buf)
	*bp = buf
	bufs.Put(bp)
	if err != nil {
		ss.s.stats.Dropped.Add(1)
		ss.stats.Dropped.Add(1)
		if errors.Is(err, net.ErrClosed) {
			go ss.fail(err) // not here: the stack holds locks while it writes
		}
		return
	}
	ss.s.stats.PacketsOut.Add(1)
	ss.stats.PacketsOut.Add(1)
	ss.stats.BytesOut.Add(uint64(len(buf)))
	if len(icmpReply) > 0 {
		go ss.inject(icmpReply) // e.g. Packet Too Big, back into the stack, not under its locks
	}
}

// allRoutesLocked is every session's routes, longest prefix first (gVisor takes the first
// route that matches).
func (s *Stack) allRoutesLocked() []tcpip.Route {
	var all []tcpip.Route
	for _, rs := range s.routes {
		all = append(all, rs...)
	}
	for i := 1; i < len(all); i++ {
		for j := i; j > 0 && all[j].Destination.Prefix() > all[j-1].Destination.Prefix(); j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	return all
}

// inbound reads packets from the connection in a tight loop (CONNECT-IP's datagram queue is
// short: a reader that blocks loses packets) and hands them to the stack.
func (ss *Session) inbound() {
	buf := make([]byte, 65536)
	for {
		n, err := ss.conn.ReadPacket(buf)
		if err != nil {
			ss.fail(err)
			return
		}
		ss.inject(buf[:n])
	}
}

// Deliver hands the stack a packet that reached this session by a path of the caller's (the
// endpoint reads QUIC datagrams itself); b becomes the stack's.
func (ss *Session) Deliver(b []byte) { ss.injectOwned(b) }

func (ss *Session) inject(b []byte) { ss.injectOwned(append([]byte(nil), b...)) }

// injectOwned hands the stack a packet it may keep.
func (ss *Session) injectOwned(b []byte) {
	if len(b) == 0 {
		ss.s.stats.Dropped.Add(1)
		ss.stats.Dropped.Add(1)
		return
	}
	var proto tcpip.NetworkProtocolNumber
	switch header.IPVersion(b) {
	case header.IPv4Version:
		proto = ipv4.ProtocolNumber
	case header.IPv6Version:
		proto = ipv6.ProtocolNumber
	default:
		ss.s.stats.Dropped.Add(1)
		ss.stats.Dropped.Add(1)
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	ss.ep.InjectInbound(proto, pkt)
	pkt.DecRef()
	ss.s.stats.PacketsIn.Add(1)
	ss.stats.PacketsIn.Add(1)
	ss.stats.BytesIn.Add(uint64(len(b)))
}

func (ss *Session) fail(err error) {
	ss.once.Do(func() {
		ss.err = err
		ss.s.mu.Lock()
		delete(ss.s.routes, ss.nic)
		ss.s.s.SetRouteTable(ss.s.allRoutesLocked())
		ss.s.mu.Unlock()
		ss.s.s.RemoveNIC(ss.nic)
		ss.ep.Close()
		close(ss.done)
	})
}

// Close detaches the session (its NIC and routes go; connections through it fail). The
// PacketConn is the caller's to close.
func (ss *Session) Close() { ss.fail(net.ErrClosed) }

// Done is closed when the session ends; Err then says why.
func (ss *Session) Done() <-chan struct{} { return ss.done }

// Err is why the session ended.
func (ss *Session) Err() error {
	<-ss.done
	return ss.err
}

// DialContext connects to address ("[ip]:port") through the stack: network tcp, tcp4, tcp6,
// udp, udp4 or udp6. Names are not resolved here.
func (s *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, fmt.Errorf("netstack: dial %s: want ip:port: %w", address, err)
	}
	fa := tcpip.FullAddress{Addr: tcpip.AddrFromSlice(ap.Addr().Unmap().AsSlice()), Port: ap.Port()}
	proto := protoOf(ap.Addr().Unmap())
	switch network {
	case "tcp", "tcp4", "tcp6":
		c, err := gonet.DialContextTCP(ctx, s.s, fa, proto)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(ap), Err: err}
		}
		return c, nil
	case "udp", "udp4", "udp6":
		return gonet.DialUDP(s.s, nil, &fa, proto)
	}
	return nil, fmt.Errorf("netstack: dial: network %q not supported", network)
}

// ListenTCP listens on a local address of the stack.
func (s *Stack) ListenTCP(ap netip.AddrPort) (net.Listener, error) {
	return gonet.ListenTCP(s.s, tcpip.FullAddress{Addr: tcpip.AddrFromSlice(ap.Addr().AsSlice()), Port: ap.Port()}, protoOf(ap.Addr()))
}

// ForwardTCP hands every TCP connection made to the stack (an Owner stack: to any address of
// its prefixes, any port) to handle, with the address it was made to. Connections are
// accepted before handle runs; handle owns the conn.
func (s *Stack) ForwardTCP(handle func(c net.Conn, to netip.AddrPort)) {
	s.ForwardTCPFrom(nil, func(c net.Conn, _, to netip.AddrPort) { handle(c, to) })
}

// ForwardTCPFrom is ForwardTCP with the connection's source, and accept deciding first
// (nil: every connection): a refused one is reset, so its dialer fails at once (and may try
// elsewhere). handle is called exactly once for each connection accept took, with a nil conn
// when the connection could not be made after all.
func (s *Stack) ForwardTCPFrom(accept func(from, to netip.AddrPort) bool, handle func(c net.Conn, from, to netip.AddrPort)) {
	fwd := tcp.NewForwarder(s.s, 0, 1024, func(r *tcp.ForwarderRequest) {
		id := r.ID()
		to, _ := netip.AddrFromSlice(id.LocalAddress.AsSlice())
		from, _ := netip.AddrFromSlice(id.RemoteAddress.AsSlice())
		toAP, fromAP := netip.AddrPortFrom(to, id.LocalPort), netip.AddrPortFrom(from, id.RemotePort)
		if accept != nil && !accept(fromAP, toAP) {
			r.Complete(true)
			return
		}
		var wq waiter.Queue
		ep, err := r.CreateEndpoint(&wq)
		if err != nil {
			r.Complete(true)
			if accept != nil {
				go handle(nil, fromAP, toAP)
			}
			return
		}
		r.Complete(false)
		go handle(gonet.NewTCPConn(&wq, ep), fromAP, toAP)
	})
	s.s.SetTransportProtocolHandler(tcp.ProtocolNumber, fwd.HandlePacket)
}

// ForwardUDP hands every UDP flow (a new source and destination pair) sent to the stack to
// handle, as a connected net.Conn, if accept takes it (nil: every one); packets of a flow
// refused, or not taken, are dropped. handle owns the conn: the flow's later datagrams reach
// it until it is closed.
func (s *Stack) ForwardUDP(accept func(from, to netip.AddrPort) bool, handle func(c net.Conn, from, to netip.AddrPort)) {
	fwd := udp.NewForwarder(s.s, func(r *udp.ForwarderRequest) bool {
		id := r.ID()
		to, _ := netip.AddrFromSlice(id.LocalAddress.AsSlice())
		from, _ := netip.AddrFromSlice(id.RemoteAddress.AsSlice())
		toAP, fromAP := netip.AddrPortFrom(to, id.LocalPort), netip.AddrPortFrom(from, id.RemotePort)
		if accept != nil && !accept(fromAP, toAP) {
			return true
		}
		var wq waiter.Queue
		ep, err := r.CreateEndpoint(&wq)
		if err != nil {
			return true
		}
		go handle(gonet.NewUDPConn(&wq, ep), fromAP, toAP)
		return true
	})
	s.s.SetTransportProtocolHandler(udp.ProtocolNumber, fwd.HandlePacket)
}

// AbortTo resets every connection of the stack whose remote address is in p (the prefix of
// an agent that is gone: its connections would otherwise wait for retransmission timeouts),
// and returns how many.
func (s *Stack) AbortTo(p netip.Prefix) int {
	n := 0
	for _, ep := range s.s.RegisteredEndpoints() {
		withInfo, ok := ep.(interface{ Info() tcpip.EndpointInfo })
		if !ok {
			continue
		}
		info, ok := withInfo.Info().(*stack.TransportEndpointInfo)
		if !ok {
			continue
		}
		if remote, ok := netip.AddrFromSlice(info.ID.RemoteAddress.AsSlice()); ok && p.Contains(remote) {
			ep.Abort()
			n++
		}
	}
	return n
}

// HostPort formats an overlay address and port for DialContext.
func HostPort(a netip.Addr, port int) string { return net.JoinHostPort(a.String(), strconv.Itoa(port)) }
