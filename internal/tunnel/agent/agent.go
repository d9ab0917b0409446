// Package agent is `apoxy tunnel run` in user mode: it keeps a TunnelNode's agent connected
// to the gateway's tunnel endpoint over several CONNECT-IP sessions (--min-conns) that share
// one user-space stack holding the agent's /96, reconnects each with backoff and jitter,
// chooses endpoints by measured latency, forwards what arrives to local services, and gives
// the machine's programs a way in: a SOCKS5 proxy and a DNS proxy for the tunnel domain.
// Kernel mode (a TUN device) plugs its own packet path into the same sessions.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"apoxy.dev/apoxy/internal/tunnel"
	"apoxy.dev/apoxy/internal/tunnel/netstack"
)

// Options configure an agent.
type Options struct {
	// Node is the TunnelNode's name; Name the agent's (its /96 follows the name).
	Node, Name string
	// Endpoints are where the gateway's tunnel endpoint listens (status.addresses).
	Endpoints []string
	// Token returns the node's current token; Refresh, if set, is called when the endpoint
	// refuses it (the token was rotated) and returns the new one.
	Token   func() string
	Refresh func(ctx context.Context) (string, error)
	TLS     *tls.Config
	// MinConns is how many sessions to keep (default 1): more fail over faster.
	MinConns int
	// Selection is how endpoints are chosen: "latency" (default: lowest handshake time
	// first, sessions spread over distinct endpoints) or "random".
	Selection string
	// Services are published to the gateway as <name>.<node>.<tunnel domain>.
	Services map[string]netip.Addr
	// Labels are shown in the node's status.
	Labels map[string]string
	// Forward says where a connection made to the agent's overlay address goes (default
	// tunnel.LocalTarget in user mode, KernelTarget in kernel mode).
	Forward func(prefix netip.Prefix, to netip.AddrPort) string
	// Packets keeps the gateway's TCP connections as IP packets through the overlay (the
	// user-space stack or the TUN device) instead of QUIC streams, the default and several
	// times faster (internal/tunnel/streams.go).
	Packets bool
	// BackoffMin and BackoffMax bound reconnect delays (default 250 ms and 30 s), with full
	// jitter; a session that lived a minute resets them.
	BackoffMin, BackoffMax time.Duration
	// Mode is "user" (default: a user-space stack, no privileges) or "kernel" (a TUN device
	// named TUNName, default apoxy0, with MTU, default 1420; Linux, CAP_NET_ADMIN).
	Mode    string
	TUNName string
	MTU     int
	// DrainTimeout bounds how long Run waits, once ctx ends, for forwarded connections to
	// finish (default 10 s); new ones are refused meanwhile, so the gateway sends them to
	// the node's other agents.
	DrainTimeout time.Duration
	Logger       *slog.Logger
}

// Agent is a running agent.
type Agent struct {
	opts  Options
	plane plane

	mu      sync.Mutex
	conns   []*Conn
	prefix  netip.Prefix
	routes  []netip.Prefix
	dnsAddr netip.AddrPort
	domains []string
	// pref64 is the gateway's NAT64 prefix (egress to IPv4; invalid without egress).
	pref64 netip.Prefix
	rtt    map[string]time.Duration
	token  string
	// instance identifies this run (a reconnect after a restart replaces the old sessions).
	instance string

	// drainMu orders accept's count against the drain's start: once draining is set, no
	// connection is taken, and every one taken before is counted in forwarded.
	drainMu   sync.Mutex
	draining  atomic.Bool
	metrics   *metrics
	forwarded atomic.Int64
}

// Conn is one session slot's state, for the status view and metrics.
type Conn struct {
	Index    int
	Endpoint string
	// State is "connecting", "up" or "waiting" (backing off after a failure).
	State     string
	Since     time.Time
	Handshake time.Duration
	LastError string
	Connects  int
	sess      planeSession
}

// Status is a snapshot of the agent.
type Status struct {
	Node, Name string
	Prefix     netip.Prefix
	Conns      []Conn
	// BytesIn, BytesOut count tunnel traffic of the current sessions and the ended ones.
	BytesIn, BytesOut uint64
	// Forwarded is the number of forwarded connections open now.
	Forwarded int64
	Draining  bool
}

// New makes an agent; Run connects it.
func New(opts Options) (*Agent, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("agent: no endpoint to dial: the TunnelNode's status.addresses is empty (is the server's tunnel endpoint on?)")
	}
	if opts.MinConns <= 0 {
		opts.MinConns = 1
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 250 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Forward == nil {
		opts.Forward = tunnel.LocalTarget
		if opts.Mode == "kernel" {
			opts.Forward = KernelTarget
		}
	}
	a := &Agent{opts: opts, rtt: map[string]time.Duration{}, metrics: newMetrics(), instance: fmt.Sprintf("%016x", rand.Uint64())}
	if opts.Token != nil {
		a.token = opts.Token()
	}
	for i := range opts.MinConns {
		a.conns = append(a.conns, &Conn{Index: i, State: "connecting", Since: time.Now()})
	}
	switch opts.Mode {
	case "", "user":
		st, err := netstack.New(netstack.Options{Owner: true})
		if err != nil {
			return nil, err
		}
		st.ForwardTCPFrom(a.accept, a.forward)
		st.ForwardUDP(nil, a.forwardUDP)
		a.plane = userPlane{st}
	case "kernel":
		p, err := newTUNPlane(opts.TUNName, opts.MTU, opts.Logger)
		if err != nil {
			return nil, err
		}
		a.plane = p
	default:
		return nil, fmt.Errorf("agent: mode %q: want user or kernel", opts.Mode)
	}
	return a, nil
}

// plane is where an agent's sessions deliver packets: its user-space stack (user mode) or a
// TUN device (kernel mode).
type plane interface {
	// attach joins a session; its packets flow until it ends or is closed.
	attach(sess *tunnel.Session) (planeSession, error)
	// dial connects into the overlay from this machine.
	dial(ctx context.Context, network, addr string) (net.Conn, error)
	close()
}

// planeSession is one attached session.
type planeSession interface {
	Done() <-chan struct{}
	Close()
	Stats() *netstack.SessionStats
}

// userPlane is user mode: a gVisor stack that owns the agent's /96 and forwards what arrives.
type userPlane struct{ st *netstack.Stack }

func (u userPlane) attach(sess *tunnel.Session) (planeSession, error) {
	// The gateway's stack verifies no checksum (the tunnel is authenticated): none are made.
	ns, err := u.st.AttachWith(sess.Conn, []netip.Prefix{netip.PrefixFrom(tunnel.AgentAddr(sess.Prefix), sess.Prefix.Bits())}, sess.Routes, netstack.AttachOptions{SkipTXChecksums: true})
	if err != nil {
		return nil, err
	}
	sess.ReceiveDirect(ns.Done(), ns.Deliver, func() { ns.Stats().Dropped.Add(1) })
	return ns, nil
}

func (u userPlane) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return u.st.DialContext(ctx, network, addr)
}

func (u userPlane) close() { u.st.Close() }

func (u userPlane) retransmits() uint64 { return u.st.TCPRetransmits() }

// accept refuses new forwarded connections while draining (the gateway then dials the
// node's other agents), and counts the ones it takes, so the drain waits for them.
func (a *Agent) accept(_, _ netip.AddrPort) bool {
	a.drainMu.Lock()
	defer a.drainMu.Unlock()
	if a.draining.Load() {
		return false
	}
	a.forwarded.Add(1)
	return true
}

// forward connects one connection made to the agent's prefix (through the overlay) to its
// local target.
func (a *Agent) forward(c net.Conn, _, to netip.AddrPort) {
	defer a.forwarded.Add(-1)
	if c == nil {
		return
	}
	defer c.Close()
	local, err := a.connectLocal(to)
	if err != nil {
		return
	}
	defer local.Close()
	tunnel.Splice(c, local)
}

// udpIdle ends a UDP flow neither side has sent on for this long (as conntrack does for an
// unanswered flow; DNS and QUIC flows are either short or keep themselves alive).
const udpIdle = 60 * time.Second

// forwardUDP relays one UDP flow sent to the agent's prefix (through the overlay) to its
// local target, until it is idle.
func (a *Agent) forwardUDP(c net.Conn, _, to netip.AddrPort) {
	defer c.Close()
	a.mu.Lock()
	prefix := a.prefix
	a.mu.Unlock()
	target := a.opts.Forward(prefix, to)
	if target == "" {
		return
	}
	local, err := net.Dial("udp", target)
	if err != nil {
		a.metrics.forwards.WithLabelValues("refused").Inc()
		return
	}
	a.metrics.forwards.WithLabelValues("ok").Inc()
	defer local.Close()
	tunnel.RelayUDP(c, local, udpIdle)
}

// connectLocal dials the local target of a connection made to to.
func (a *Agent) connectLocal(to netip.AddrPort) (net.Conn, error) {
	a.mu.Lock()
	prefix := a.prefix
	a.mu.Unlock()
	target := a.opts.Forward(prefix, to)
	if target == "" {
		a.metrics.forwards.WithLabelValues("refused").Inc()
		return nil, fmt.Errorf("agent: nothing to forward %s to", to)
	}
	local, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", target)
	if err != nil {
		a.metrics.forwards.WithLabelValues("refused").Inc()
		a.opts.Logger.Debug("tunnel: forward", "to", target, "err", err)
		return nil, err
	}
	a.metrics.forwards.WithLabelValues("ok").Inc()
	return local, nil
}

// dialStream is a connection the gateway sends as a QUIC stream: taken (and counted, for the
// drain) like one through the overlay, its local side closes the count.
func (a *Agent) dialStream(to netip.AddrPort) (net.Conn, error) {
	if !a.accept(netip.AddrPort{}, to) {
		return nil, tunnel.ErrRefused
	}
	local, err := a.connectLocal(to)
	if err != nil {
		a.forwarded.Add(-1)
		return nil, err
	}
	return &countedConn{Conn: local, done: func() { a.forwarded.Add(-1) }}, nil
}

// countedConn calls done once, at its first Close.
type countedConn struct {
	net.Conn
	once sync.Once
	done func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.done)
	return err
}

// CloseWrite half-closes the local connection (tunnel.Splice uses it).
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// KernelTarget is where a kernel-mode agent sends a connection the gateway makes to to (as a
// QUIC stream): the agent's own overlay address is dialed as it is (the TUN device holds it,
// so services listening on it or on [::] answer), an IPv4 address mapped into the /96 goes
// to that IPv4 address; anything else has no target.
func KernelTarget(prefix netip.Prefix, to netip.AddrPort) string {
	switch {
	case to.Addr() == tunnel.AgentAddr(prefix):
		return to.String()
	case prefix.Contains(to.Addr()):
		if t := tunnel.LocalTarget(prefix, to); !strings.HasPrefix(t, "127.0.0.1:") {
			return t
		}
	}
	return ""
}

// Run keeps MinConns sessions up until ctx ends, then drains: new forwarded connections
// are refused and open ones get DrainTimeout to finish before the sessions close.
func (a *Agent) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	connCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, c := range a.conns {
		wg.Add(1)
		go func() { defer wg.Done(); a.loop(connCtx, c) }()
	}
	<-ctx.Done()
	a.drainMu.Lock()
	a.draining.Store(true)
	a.drainMu.Unlock()
	deadline := time.Now().Add(a.opts.DrainTimeout)
	for a.forwarded.Load() > 0 {
		if time.Now().After(deadline) {
			a.opts.Logger.Warn("tunnel: drain timed out; closing open connections", "open", a.forwarded.Load())
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	a.plane.close()
	return nil
}

// loop keeps one session slot connected.
func (a *Agent) loop(ctx context.Context, c *Conn) {
	backoff := a.opts.BackoffMin
	for ctx.Err() == nil {
		ep := a.pickEndpoint(c.Index)
		a.setState(c, "connecting", ep, "")
		sess, err := tunnel.Dial(ctx, tunnel.AgentOptions{Endpoint: ep, Token: a.currentToken(), Name: a.opts.Name,
			Services: a.opts.Services, Labels: a.opts.Labels, TLS: a.opts.TLS, Instance: a.instance, Mode: a.mode(), Streams: !a.opts.Packets})
		if err != nil && errors.Is(err, tunnel.ErrUnauthorized) && a.opts.Refresh != nil {
			if tok, rerr := a.opts.Refresh(ctx); rerr == nil && tok != a.currentToken() {
				a.mu.Lock()
				a.token = tok
				a.mu.Unlock()
				a.opts.Logger.Info("tunnel: the token was rotated; using the new one")
				continue
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.metrics.connects.WithLabelValues("error").Inc()
			wait := rand.N(backoff) + a.opts.BackoffMin/2
			a.opts.Logger.Warn("tunnel: connect failed", "conn", c.Index, "endpoint", ep, "err", err, "retry_in", wait.Round(time.Millisecond).String())
			a.setState(c, "waiting", ep, err.Error())
			a.noteRTT(ep, 10*time.Second) // a failing endpoint goes to the back
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			backoff = min(backoff*2, a.opts.BackoffMax)
			continue
		}
		a.metrics.connects.WithLabelValues("ok").Inc()
		a.noteRTT(ep, sess.Handshake)
		started := time.Now()
		if err := a.attach(c, sess); err != nil {
			a.opts.Logger.Error("tunnel: attach", "err", err)
			sess.Close()
			continue
		}
		a.opts.Logger.Info("tunnel: connected", "conn", c.Index, "endpoint", ep, "prefix", sess.Prefix, "handshake", sess.Handshake.Round(time.Microsecond).String())
		select {
		case <-ctx.Done():
		case <-c.sess.Done():
		}
		a.detach(c, sess)
		if ctx.Err() != nil {
			return
		}
		a.opts.Logger.Warn("tunnel: session ended; reconnecting", "conn", c.Index, "endpoint", ep, "after", time.Since(started).Round(time.Millisecond).String())
		if time.Since(started) > time.Minute {
			backoff = a.opts.BackoffMin
		}
		// Reconnect at once the first time; a session that keeps ending backs off.
		select {
		case <-ctx.Done():
			return
		case <-time.After(rand.N(backoff)):
		}
		backoff = min(backoff*2, a.opts.BackoffMax)
	}
}

func (a *Agent) currentToken() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.token
}

// attach puts a session on the stack: it holds the agent's /96, and the gateway's routes
// lead to it.
func (a *Agent) attach(c *Conn, sess *tunnel.Session) error {
	ns, err := a.plane.attach(sess)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.prefix.IsValid() && a.prefix != sess.Prefix {
		a.opts.Logger.Warn("tunnel: the gateway assigned another prefix", "had", a.prefix, "now", sess.Prefix)
	}
	a.prefix, a.routes = sess.Prefix, sess.Routes
	for _, d := range sess.DNS {
		for _, ns := range d.Nameservers {
			for _, ip := range ns.IPv6Addresses {
				a.dnsAddr = netip.AddrPortFrom(ip, tunnel.DNSPort)
			}
		}
		a.domains = d.InternalDomains
	}
	a.pref64 = netip.Prefix{}
	if len(sess.PREF64) > 0 {
		a.pref64 = sess.PREF64[0]
	}
	c.sess, c.State, c.Since, c.Handshake, c.LastError = ns, "up", time.Now(), sess.Handshake, ""
	c.Connects++
	a.metrics.up.Inc()
	if !a.opts.Packets {
		st := ns.Stats()
		sess.ServeStreams(a.dialStream, &st.BytesIn, &st.BytesOut)
	}
	return nil
}

func (a *Agent) detach(c *Conn, sess *tunnel.Session) {
	c.sess.Close()
	sess.Close()
	a.mu.Lock()
	defer a.mu.Unlock()
	st := c.sess.Stats()
	a.metrics.bytes.WithLabelValues("in").Add(float64(st.BytesIn.Load()))
	a.metrics.bytes.WithLabelValues("out").Add(float64(st.BytesOut.Load()))
	a.metrics.up.Dec()
	c.sess, c.State, c.Since = nil, "waiting", time.Now()
}

func (a *Agent) setState(c *Conn, state, ep, lastErr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c.State, c.Endpoint, c.Since = state, ep, time.Now()
	if lastErr != "" {
		c.LastError = lastErr
	}
}

func (a *Agent) noteRTT(ep string, d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old, ok := a.rtt[ep]; ok && d < 10*time.Second && old < 10*time.Second {
		d = (old*3 + d) / 4
	}
	a.rtt[ep] = d
}

// pickEndpoint chooses slot i's endpoint: by latency, the fastest one no other live slot
// uses (unmeasured endpoints count as fastest, so each is tried); or at random.
func (a *Agent) pickEndpoint(i int) string {
	eps := a.opts.Endpoints
	if len(eps) == 1 {
		return eps[0]
	}
	if a.opts.Selection == "random" {
		return eps[rand.N(len(eps))]
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	sorted := slices.Clone(eps)
	slices.SortStableFunc(sorted, func(x, y string) int { return int(a.rtt[x] - a.rtt[y]) })
	used := map[string]bool{}
	for _, c := range a.conns {
		if c.Index != i && c.State == "up" {
			used[c.Endpoint] = true
		}
	}
	for _, ep := range sorted {
		if !used[ep] {
			return ep
		}
	}
	return sorted[0]
}

func (a *Agent) mode() string {
	if _, ok := a.plane.(userPlane); ok {
		return "user"
	}
	return "kernel"
}

// Ready reports whether at least one session is up.
func (a *Agent) Ready() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.conns {
		if c.State == "up" {
			return nil
		}
	}
	last := "connecting"
	for _, c := range a.conns {
		if c.LastError != "" {
			last = c.LastError
		}
	}
	return fmt.Errorf("no session is up: %s", last)
}

// Prefix is the agent's /96 (invalid until the first session).
func (a *Agent) Prefix() netip.Prefix {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.prefix
}

// Status snapshots the agent.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Status{Node: a.opts.Node, Name: a.opts.Name, Prefix: a.prefix, Forwarded: a.forwarded.Load(), Draining: a.draining.Load()}
	for _, c := range a.conns {
		s.Conns = append(s.Conns, *c)
		if c.sess != nil {
			st := c.sess.Stats()
			s.BytesIn += st.BytesIn.Load()
			s.BytesOut += st.BytesOut.Load()
		}
	}
	s.BytesIn += uint64(counterValue(a.metrics.bytes.WithLabelValues("in")))
	s.BytesOut += uint64(counterValue(a.metrics.bytes.WithLabelValues("out")))
	return s
}
