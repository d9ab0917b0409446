package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
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

// Identity is who an agent's token says it is.
type Identity struct {
	Project, Node string
	// NodeIndex numbers the node's /64 in the project's /48 (≥ 1).
	NodeIndex uint16
}

// Authenticator checks a CONNECT-IP request's credentials before anything else happens; an
// error is answered 401 with its text.
type Authenticator func(r *http.Request) (Identity, error)

// ServerOptions configure the tunnel endpoint.
type ServerOptions struct {
	Authenticate Authenticator
	// OnChange is told when a project's agents change (to write the TunnelNodes' status).
	OnChange func(project string)
	Logger   *slog.Logger
}

// Server is the gateway's tunnel endpoint: HTTP/3 CONNECT-IP on UDP, one user-space stack
// per project, through which the data plane dials into the agents' prefixes.
type Server struct {
	opts ServerOptions
	h3   *http3.Server

	mu       sync.Mutex
	projects map[string]*project
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
	}
	return s
}

func quicConfig() *quic.Config {
	return &quic.Config{EnableDatagrams: true, InitialPacketSize: 1350, KeepAlivePeriod: 10 * time.Second, MaxIdleTimeout: 30 * time.Second}
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
	st, err := netstack.New(netstack.Options{})
	if err != nil {
		return nil, err
	}
	if err := st.AddLocal(netip.PrefixFrom(GatewayAddr(name), 128)); err != nil {
		st.Close()
		return nil, err
	}
	p := &project{stack: st, agents: map[*Agent]struct{}{}}
	s.projects[name] = p
	return p, nil
}

// DialContext dials an overlay address of a project's agents ("[ip]:port") through the
// project's stack. A project without a connected agent has no route: the dial fails at once.
func (s *Server) DialContext(ctx context.Context, projectName, network, address string) (net.Conn, error) {
	p, err := s.stackOf(projectName)
	if err != nil {
		return nil, err
	}
	return p.stack.DialContext(ctx, network, address)
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
	p, err := s.stackOf(id.Project)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	agent := &Agent{Node: id.Node, Name: name, ConnectedAt: time.Now(), RemoteAddr: r.RemoteAddr,
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
	if err := conn.AdvertiseRoute([]connectip.IPRoute{{StartIP: overlay.Addr(), EndIP: lastAddr(overlay)}}); err != nil {
		return
	}
	sess, err := p.stack.Attach(conn, nil, []netip.Prefix{agent.Prefix})
	if err != nil {
		s.opts.Logger.Error("tunnel: attach", "project", id.Project, "node", id.Node, "err", err)
		return
	}
	s.mu.Lock()
	p.agents[agent] = struct{}{}
	s.mu.Unlock()
	s.changed(id.Project)
	s.opts.Logger.Info("tunnel: agent connected", "project", id.Project, "node", id.Node, "agent", name, "prefix", agent.Prefix, "from", r.RemoteAddr)
	select {
	case <-sess.Done():
	case <-r.Context().Done():
		sess.Close()
	}
	s.mu.Lock()
	delete(p.agents, agent)
	s.mu.Unlock()
	s.changed(id.Project)
	s.opts.Logger.Info("tunnel: agent disconnected", "project", id.Project, "node", id.Node, "agent", name, "after", time.Since(agent.ConnectedAt).Round(time.Millisecond).String())
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
