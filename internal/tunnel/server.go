package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	connectip "github.com/quic-go/connect-ip-go"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/yosida95/uritemplate/v3"

	"apoxy.dev/apoxy/internal/tunnel/netstack"
)

// Path is the tunnel endpoint's CONNECT-IP path.
const Path = "/connect-ip"

// AgentHeader names the agent on the CONNECT-IP request (default: the node's name).
const AgentHeader = "Apoxy-Agent"

// InstanceHeader identifies one run of an agent (random per process): a session from a new
// instance of an agent replaces the old instance's, which may not have ended yet (a killed
// agent's session lasts until its QUIC idle timeout).
const InstanceHeader = "Apoxy-Agent-Instance"

// ModeHeader says how an agent holds its prefix: "user" (a user-space stack, which trusts
// the tunnel and verifies no TCP/UDP checksum: the gateway then computes none) or "kernel".
const ModeHeader = "Apoxy-Agent-Mode"

// LabelsHeader carries an agent's labels ("k=v,k=v").
const LabelsHeader = "Apoxy-Labels"

// ServicesHeader lists the services an agent publishes ("name=ipv4,..."), reachable as
// <name>.<node>.<tunnel domain>.
const ServicesHeader = "Apoxy-Services"

// Identity is who an agent's token says it is.
type Identity struct {
	Project, Node string
	// NodeIndex numbers the node's /64 in the project's /48 (≥ 1).
	NodeIndex uint16
	// Credential names the token's generation (the node's UID and rotation): Revoke ends
	// the sessions of one no longer valid.
	Credential string
}

// Authenticator checks a CONNECT-IP request's credentials before anything else happens; an
// error is answered 401 with its text.
type Authenticator func(r *http.Request) (Identity, error)

// ServerOptions configure the tunnel endpoint.
type ServerOptions struct {
	Authenticate Authenticator
	// OnChange is told when a project's agents change (to write the TunnelNodes' status).
	OnChange func(project string)
	// Domain is the tunnel domain, and Resolve answers its names for a project (ok false:
	// not one of its names). With both set, each project's overlay has a DNS server at the
	// gateway's address, port 53, which agents are told of (their DNS proxy asks it).
	Domain  string
	Resolve func(project, host string) (addrs []netip.Addr, ok bool, err error)
	// Egress reports whether a node's agents may reach beyond the overlay through the gateway
	// (spec.egressGateway.enabled), and Dial opens those connections from the gateway (the
	// data plane's Dialer, under the project's destination policy). Without Dial there is no
	// egress.
	Egress func(project, node string) bool
	Dial   func(ctx context.Context, project, network, address string) (net.Conn, error)
	Logger *slog.Logger
}

// Server is the gateway's tunnel endpoint: HTTP/3 CONNECT-IP on UDP, one user-space stack
// per project, through which the data plane dials into the agents' prefixes.
type Server struct {
	opts ServerOptions
	h3   *http3.Server

	mu       sync.Mutex
	projects map[string]*project
	// rr spreads dials to a node's address over its agents.
	rr atomic.Uint32
	// streams counts stream dials: ok, refused, error (metrics.go).
	streams [3]atomic.Uint64
}

// project is one project's overlay: its stack and its connected agents.
type project struct {
	stack  *netstack.Stack
	agents map[*Agent]struct{}
}

// Agent is one connected CONNECT-IP session.
type Agent struct {
	Node, Name  string
	Prefix      netip.Prefix
	ConnectedAt time.Time
	RemoteAddr  string
	// Services are the services the agent publishes (name → IPv4 behind it).
	Services map[string]netip.Addr
	// Labels are the agent's --label values.
	Labels map[string]string
	// suspectUntil (Unix ns): a dial through the agent timed out; others go first till then.
	suspectUntil *atomic.Int64
	credential   string
	instance     string
	sess         *netstack.Session
	// qc is the session's QUIC connection; streams says the agent takes TCP connections as
	// streams on it (streams.go).
	qc      *quic.Conn
	streams bool
}

// NewServer makes a tunnel endpoint; Serve runs it.
func NewServer(opts ServerOptions) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, projects: map[string]*project{}}
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.handle)
	s.h3 = &http3.Server{
		Handler:         mux,
		EnableDatagrams: true,
		QUICConfig:      quicConfig(),
		// The handler reads an agent's datagrams from its QUIC connection itself (datagrams.go).
		ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
			return context.WithValue(ctx, quicConnKey{}, c)
		},
	}
	return s
}

// quicConfig is both ends' QUIC configuration: datagrams for the packets, an initial size
// that fits a 1280-byte IP packet from the first datagram, and keep-alives every 2 s with a
// 6 s idle timeout, so a killed peer's session ends (and its connections are reset) within
// 6 s.
func quicConfig() *quic.Config {
	return &quic.Config{EnableDatagrams: true, InitialPacketSize: 1350, KeepAlivePeriod: 2 * time.Second, MaxIdleTimeout: 6 * time.Second,
		// An agent takes the gateway's connections as streams (streams.go): as many at once
		// as a busy upstream pool holds.
		MaxIncomingStreams: maxStreams}
}

// Serve answers on pc with the TLS certificate of cfg until Close.
func (s *Server) Serve(pc net.PacketConn, cfg *tls.Config) error {
	s.h3.TLSConfig = http3.ConfigureTLSConfig(cfg)
	return s.h3.Serve(pc)
}

// Close stops the endpoint: every session ends.
func (s *Server) Close() error {
	err := s.h3.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, p := range s.projects {
		p.stack.Close()
		delete(s.projects, name)
	}
	return err
}

// stackOf returns a project's stack, making it.
func (s *Server) stackOf(name string) (*project, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.projects[name]; p != nil {
		return p, nil
	}
	st, err := netstack.New(netstack.Options{AcceptAll: true})
	if err != nil {
		return nil, err
	}
	if err := st.AddLocal(netip.PrefixFrom(GatewayAddr(name), 128)); err != nil {
		st.Close()
		return nil, err
	}
	p := &project{stack: st, agents: map[*Agent]struct{}{}}
	st.ForwardTCPFrom(func(from, to netip.AddrPort) bool { return s.acceptFromAgent(name, p, from, to) },
		func(c net.Conn, from, to netip.AddrPort) { s.relayFromAgent(name, p, c, from, to) })
	if s.opts.Resolve != nil && s.opts.Domain != "" {
		s.serveDNS(name, st)
	}
	s.projects[name] = p
	return p, nil
}

// DialContext dials an overlay address of a project's agents ("[ip]:port") through the
// project's stack. A project without a connected agent has no route: the dial fails at once.
//
// An address of a node's slot 0 (NodeAddr, NodeMap4: what tunnel-domain names resolve to)
// goes to one of the node's connected agents, in turn: the same low 32 bits in that agent's
// /96. A node without a connected agent fails the dial at once.
func (s *Server) DialContext(ctx context.Context, projectName, network, address string) (net.Conn, error) {
	p, err := s.stackOf(projectName)
	if err != nil {
		return nil, err
	}
	if ap, err := netip.ParseAddrPort(address); err == nil {
		if index, slot, ok := nodeSlot(projectName, ap.Addr()); ok && index != 0 && slot == 0 {
			return s.dialNode(ctx, projectName, p, index, network, ap)
		}
		if a := s.agentAt(p, ap.Addr()); a != nil && a.streams && isTCP(network) {
			return s.dialAgent(ctx, projectName, p, a, network, ap)
		}
	}
	return p.stack.DialContext(ctx, network, address)
}

func isTCP(network string) bool { return network == "tcp" || network == "tcp6" }

// dialAgent dials to through agent a: a QUIC stream if it takes them, else the overlay.
func (s *Server) dialAgent(ctx context.Context, projectName string, p *project, a *Agent, network string, to netip.AddrPort) (net.Conn, error) {
	if a.streams && isTCP(network) {
		c, err := dialStream(ctx, a.qc, netip.AddrPortFrom(GatewayAddr(projectName), 0), to)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				s.streams[1].Add(1)
			} else {
				s.streams[2].Add(1)
			}
			return nil, &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(to), Err: err}
		}
		s.streams[0].Add(1)
		return c, nil
	}
	return p.stack.DialContext(ctx, network, to.String())
}

// dialNode dials a node's address through its agents, in turn from the next one: an agent
// that refuses (draining) or does not answer within attemptTimeout (gone without a word: its
// session has not timed out yet) passes the dial to the next, and one that did not answer is
// tried last for a while.
func (s *Server) dialNode(ctx context.Context, projectName string, p *project, index uint16, network string, ap netip.AddrPort) (net.Conn, error) {
	cands := s.agentsOf(p, index)
	if len(cands) == 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: net.UDPAddrFromAddrPort(ap), Err: errNoAgent}
	}
	first := int(s.rr.Add(1))
	order := make([]*Agent, 0, len(cands))
	now := time.Now()
	for i := range cands {
		if a := cands[(first+i)%len(cands)]; !a.suspect(now) {
			order = append(order, a)
		}
	}
	for i := range cands {
		if a := cands[(first+i)%len(cands)]; a.suspect(now) {
			order = append(order, a)
		}
	}
	var errs []error
	for i, a := range order {
		to := netip.AddrPortFrom(inSlot(ap.Addr(), agentSlotOf(a.Prefix)), ap.Port())
		actx, cancel := ctx, context.CancelFunc(func() {})
		if i < len(order)-1 {
			actx, cancel = context.WithTimeout(ctx, attemptTimeout)
		}
		c, err := s.dialAgent(actx, projectName, p, a, network, to)
		cancel()
		if err == nil || ctx.Err() != nil {
			return c, err
		}
		if actx.Err() != nil {
			a.suspectUntil.Store(time.Now().Add(suspectFor).UnixNano())
		}
		errs = append(errs, fmt.Errorf("agent %s: %w", a.Name, err))
	}
	return nil, errors.Join(errs...)
}

// attemptTimeout bounds a dial through one agent when the node has others (a lost SYN is
// sent again after 1 s, and may be); an agent that misses it is tried last for suspectFor.
const (
	attemptTimeout = 2500 * time.Millisecond
	suspectFor     = 10 * time.Second
)

func (a *Agent) suspect(now time.Time) bool { return now.UnixNano() < a.suspectUntil.Load() }

// ended reports whether the agent's session has ended (it is about to leave the list).
func (a *Agent) ended() bool {
	if a.sess == nil {
		return false
	}
	select {
	case <-a.sess.Done():
		return true
	default:
		return false
	}
}

// errNoAgent is a dial to a node none of whose agents is connected.
var errNoAgent = errors.New("no agent of this TunnelNode is connected")

// agentsOf is the connected agents of node index, one per /96 (an agent's several
// sessions share it), in a stable order.
func (s *Server) agentsOf(p *project, index uint16) []*Agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cands []*Agent
	for a := range p.agents {
		if a.ended() {
			continue
		}
		if i, _ := nodeSlotOf(a.Prefix); i == index && !slices.ContainsFunc(cands, func(b *Agent) bool { return b.Prefix == a.Prefix }) {
			cands = append(cands, a)
		}
	}
	slices.SortFunc(cands, func(a, b *Agent) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	return cands
}

// Services returns the services a node's connected agents publish (name → IPv4 behind them;
// the first agent to publish a name wins).
func (s *Server) Services(projectName, node string) map[string]netip.Addr {
	out := map[string]netip.Addr{}
	for _, a := range s.Agents(projectName) {
		if a.Node != node {
			continue
		}
		for name, v4 := range a.Services {
			if _, ok := out[name]; !ok {
				out[name] = v4
			}
		}
	}
	return out
}

// Agents returns a project's connected agents.
func (s *Server) Agents(projectName string) []Agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projects[projectName]
	if p == nil {
		return nil
	}
	var out []Agent
	for a := range p.agents {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b Agent) int { return a.ConnectedAt.Compare(b.ConnectedAt) })
	return out
}

// slotLocked picks an agent's /96: where its name hashes, or the next one another agent of
// the node does not hold.
func (p *project) slotLocked(node netip.Prefix, nodeName, agent string) netip.Prefix {
	for slot := agentSlot(agent); ; slot++ {
		pfx := AgentPrefix(node, max(slot, 1))
		taken := false
		for a := range p.agents {
			if a.Prefix == pfx && (a.Node != nodeName || a.Name != agent) {
				taken = true
			}
		}
		if !taken {
			return pfx
		}
	}
}

// handle is one CONNECT-IP session: the token is checked before anything else, then the agent
// is given its /96 and the project's /48 as its route, and its packets join the project's
// stack until the session ends.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	id, err := s.opts.Authenticate(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	tmpl, err := uritemplate.New("https://" + r.Host + Path)
	if err != nil {
		http.Error(w, "bad authority", http.StatusBadRequest)
		return
	}
	req, err := connectip.ParseProxyRequest(r, tmpl)
	if err != nil {
		var perr *connectip.ProxyRequestParseError
		code := http.StatusBadRequest
		if errors.As(err, &perr) {
			code = perr.HTTPStatus
		}
		http.Error(w, err.Error(), code)
		return
	}
	name := r.Header.Get(AgentHeader)
	if name == "" {
		name = id.Node
	}
	if !isLabel(name) {
		http.Error(w, fmt.Sprintf("agent name %q: want a DNS label (lower-case letters, digits, '-')", name), http.StatusBadRequest)
		return
	}
	services, err := ParseServices(r.Header.Get(ServicesHeader))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	labels, err := ParseLabels(r.Header.Get(LabelsHeader))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p, err := s.stackOf(id.Project)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	agent := &Agent{Node: id.Node, Name: name, ConnectedAt: time.Now(), RemoteAddr: r.RemoteAddr, Services: services, Labels: labels, suspectUntil: new(atomic.Int64), credential: id.Credential, instance: r.Header.Get(InstanceHeader),
		Prefix: p.slotLocked(NodePrefix(id.Project, id.NodeIndex), id.Node, name)}
	s.mu.Unlock()

	conn, err := (&connectip.Proxy{}).Proxy(w, req)
	if err != nil {
		s.opts.Logger.Warn("tunnel: session", "project", id.Project, "node", id.Node, "agent", name, "err", err)
		return
	}
	defer conn.Close()
	overlay := ProjectPrefix(id.Project)
	if err := conn.AssignAddresses([]netip.Prefix{agent.Prefix}); err != nil {
		return
	}
	// Without egress the overlay is all an agent reaches; with it, everything, IPv4 through
	// the project's NAT64 prefix.
	routes := []connectip.IPRoute{{StartIP: overlay.Addr(), EndIP: lastAddr(overlay)}}
	egress := s.egress(id.Project, id.Node)
	if egress {
		routes = []connectip.IPRoute{{StartIP: netip.IPv6Unspecified(), EndIP: lastAddr(netip.MustParsePrefix("::/0"))}}
	}
	if err := conn.AdvertiseRoute(routes); err != nil {
		return
	}
	if egress {
		if err := conn.SendPREF64Configuration([]netip.Prefix{Egress4Prefix(id.Project)}); err != nil {
			s.opts.Logger.Warn("tunnel: NAT64 prefix", "project", id.Project, "err", err)
		}
	}
	if s.opts.Resolve != nil && s.opts.Domain != "" {
		gw := GatewayAddr(id.Project)
		if err := conn.SendDNSConfiguration([]connectip.DNSConfiguration{{
			Nameservers:     []connectip.DNSNameserver{{ServicePriority: 1, IPv6Addresses: []netip.Addr{gw}}},
			InternalDomains: []string{s.opts.Domain},
		}}); err != nil {
			s.opts.Logger.Warn("tunnel: DNS configuration", "project", id.Project, "err", err)
		}
	}
	sess, err := p.stack.AttachWith(conn, nil, []netip.Prefix{agent.Prefix}, netstack.AttachOptions{SkipTXChecksums: r.Header.Get(ModeHeader) == "user"})
	if err != nil {
		s.opts.Logger.Error("tunnel: attach", "project", id.Project, "node", id.Node, "err", err)
		return
	}
	s.receiveDirect(w, r, sess, agent.Prefix)
	qc, _ := r.Context().Value(quicConnKey{}).(*quic.Conn)
	if qc != nil {
		// The session is the connection's purpose: when it ends, so does the connection,
		// and with it every stream through the agent.
		defer qc.CloseWithError(0, "session ended")
	}
	s.mu.Lock()
	agent.sess, agent.qc = sess, qc
	agent.streams = qc != nil && r.Header.Get(StreamsHeader) == "1"
	p.agents[agent] = struct{}{}
	var replaced []*Agent
	for a := range p.agents {
		if a.Node == agent.Node && a.Name == agent.Name && agent.instance != "" && a.instance != agent.instance {
			replaced = append(replaced, a)
		}
	}
	s.mu.Unlock()
	for _, a := range replaced {
		s.opts.Logger.Info("tunnel: a new instance of the agent replaces the old one's session", "project", id.Project, "node", id.Node, "agent", name, "from", a.RemoteAddr)
		a.sess.Close()
	}
	s.changed(id.Project)
	s.opts.Logger.Info("tunnel: agent connected", "project", id.Project, "node", id.Node, "agent", name, "prefix", agent.Prefix, "from", r.RemoteAddr)
	select {
	case <-sess.Done():
	case <-r.Context().Done():
		sess.Close()
	}
	s.mu.Lock()
	delete(p.agents, agent)
	last := !slices.ContainsFunc(slices.Collect(maps.Keys(p.agents)), func(a *Agent) bool { return a.Prefix == agent.Prefix && !a.ended() })
	s.mu.Unlock()
	if last {
		// Connections through the agent would wait for retransmission timeouts: reset them,
		// so a pooled one fails at once and its request is retried through another agent.
		if n := p.stack.AbortTo(agent.Prefix); n > 0 {
			s.opts.Logger.Info("tunnel: reset the connections through a gone agent", "project", id.Project, "node", id.Node, "agent", name, "connections", n)
		}
	}
	s.changed(id.Project)
	s.opts.Logger.Info("tunnel: agent disconnected", "project", id.Project, "node", id.Node, "agent", name, "after", time.Since(agent.ConnectedAt).Round(time.Millisecond).String())
}

// Revoke ends a project's sessions whose credential valid refuses (a rotated token, a
// deleted node; nil: every session, the project is gone). Their agents reconnect, and the
// endpoint checks them again.
func (s *Server) Revoke(project string, valid func(node, credential string) bool) {
	s.mu.Lock()
	var stale []*Agent
	if p := s.projects[project]; p != nil {
		for a := range p.agents {
			if valid == nil || !valid(a.Node, a.credential) {
				stale = append(stale, a)
			}
		}
	}
	s.mu.Unlock()
	for _, a := range stale {
		s.opts.Logger.Info("tunnel: session revoked", "project", project, "node", a.Node, "agent", a.Name)
		a.sess.Close()
	}
}

// Release ends a project's sessions and drops its overlay (the project is gone).
func (s *Server) Release(project string) {
	s.Revoke(project, nil)
	s.mu.Lock()
	p := s.projects[project]
	delete(s.projects, project)
	s.mu.Unlock()
	if p != nil {
		p.stack.Close()
	}
}

func (s *Server) egress(project, node string) bool {
	return s.opts.Dial != nil && s.opts.Egress != nil && s.opts.Egress(project, node)
}

// agentAt is the connected agent whose /96 holds a.
func (s *Server) agentAt(p *project, a netip.Addr) *Agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ag := range p.agents {
		if ag.Prefix.Contains(a) && !ag.ended() {
			return ag
		}
	}
	return nil
}

// acceptFromAgent decides a TCP connection an agent opens into the gateway's stack: to
// another address of the overlay (another agent, a node) always; beyond it only when the
// agent's node has egress. Anything else is reset at once.
func (s *Server) acceptFromAgent(project string, p *project, from, to netip.AddrPort) bool {
	src := s.agentAt(p, from.Addr())
	if src == nil {
		return false
	}
	dst := to.Addr()
	if ProjectPrefix(project).Contains(dst) && !Egress4Prefix(project).Contains(dst) {
		return dst != GatewayAddr(project) && s.agentAt(p, dst) != src
	}
	return s.egress(project, src.Node)
}

// relayFromAgent carries an accepted connection from an agent: into the overlay through the
// stack, or out through the gateway's Dialer (IPv4 destinations arrive in the NAT64 prefix).
func (s *Server) relayFromAgent(project string, p *project, c net.Conn, from, to netip.AddrPort) {
	if c == nil {
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	var up net.Conn
	var err error
	dst := to.Addr()
	switch {
	case Egress4Prefix(project).Contains(dst):
		b := dst.As16()
		up, err = s.opts.Dial(ctx, project, "tcp", netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[12:])), to.Port()).String())
	case ProjectPrefix(project).Contains(dst):
		up, err = s.DialContext(ctx, project, "tcp", to.String())
	default:
		up, err = s.opts.Dial(ctx, project, "tcp", to.String())
	}
	cancel()
	if err != nil {
		s.opts.Logger.Debug("tunnel: relay from agent", "project", project, "from", from, "to", to, "err", err)
		return
	}
	defer up.Close()
	Splice(c, up)
}

func (s *Server) changed(project string) {
	if s.opts.OnChange != nil {
		s.opts.OnChange(project)
	}
}

// lastAddr is the last address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As16()
	for i := p.Bits(); i < 128; i++ {
		a[i/8] |= 1 << (7 - i%8)
	}
	return netip.AddrFrom16(a)
}

// String names an agent for logs.
func (a Agent) String() string { return fmt.Sprintf("%s/%s %s", a.Node, a.Name, a.Prefix) }
