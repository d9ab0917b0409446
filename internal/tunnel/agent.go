package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	connectip "github.com/quic-go/connect-ip-go"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/yosida95/uritemplate/v3"

	"apoxy.dev/apoxy/internal/tunnel/netstack"
)

// AgentOptions configure one agent connection.
type AgentOptions struct {
	// Endpoint is the tunnel endpoint's host:port (UDP).
	Endpoint string
	// Token is the node's credential (TunnelNode status.credentials.token).
	Token string
	// Name is the agent's name (default: the node's).
	Name string
	// Services are published to the gateway: <name>.<node>.<tunnel domain> reaches the IPv4
	// address behind this agent.
	Services map[string]netip.Addr
	// Labels are shown in the node's status (agents[].labels).
	Labels map[string]string
	// Instance identifies this run of the agent (InstanceHeader).
	Instance string
	// Mode is how the agent holds its prefix (ModeHeader): "user" or "kernel".
	Mode string
	// TLS verifies the endpoint (NextProtos is set to h3).
	TLS *tls.Config
	// Forward says where a TCP connection made to the agent's overlay address goes (default
	// LocalTarget).
	Forward func(prefix netip.Prefix, to netip.AddrPort) string
	// Streams asks the gateway to send its TCP connections as QUIC streams (StreamsHeader);
	// the agent then serves them with Session.ServeStreams.
	Streams bool
	Logger  *slog.Logger
}

// Session is an agent's established CONNECT-IP session: the /96 the gateway assigned, the
// routes it serves, and the DNS configuration it sent (its nameserver for the tunnel domain).
type Session struct {
	Conn   *connectip.Conn
	Prefix netip.Prefix
	Routes []netip.Prefix
	DNS    []connectip.DNSConfiguration
	// PREF64 is the gateway's NAT64 prefix when the node has egress (IPv4 destinations).
	PREF64   []netip.Prefix
	Endpoint string
	// Handshake is how long the QUIC and CONNECT-IP handshakes took (the endpoint's latency).
	Handshake time.Duration
	quic      *quic.Conn
}

// Close ends the session and its QUIC connection.
func (s *Session) Close() error {
	err := s.Conn.Close()
	s.quic.CloseWithError(0, "")
	return err
}

// ErrUnauthorized is the endpoint refusing the token.
var ErrUnauthorized = errors.New("tunnel: the endpoint refused the token")

// Dial opens an agent's session: QUIC to the endpoint, CONNECT-IP with the node's token, then
// the address and routes the gateway gives. ctx bounds the whole session, not only the dial.
func Dial(ctx context.Context, opts AgentOptions) (*Session, error) {
	started := time.Now()
	tlsConf := &tls.Config{}
	if opts.TLS != nil {
		tlsConf = opts.TLS.Clone()
	}
	tlsConf.NextProtos = []string{http3.NextProtoH3}
	tmpl, err := uritemplate.New("https://" + opts.Endpoint + Path)
	if err != nil {
		return nil, fmt.Errorf("tunnel: endpoint %q: %w", opts.Endpoint, err)
	}
	req, err := connectip.NewRequest(ctx, tmpl)
	if err != nil {
		return nil, err
	}
	req.Header().Set("Authorization", "Bearer "+opts.Token)
	if opts.Name != "" {
		req.Header().Set(AgentHeader, opts.Name)
	}
	if opts.Mode != "" {
		req.Header().Set(ModeHeader, opts.Mode)
	}
	if opts.Instance != "" {
		req.Header().Set(InstanceHeader, opts.Instance)
	}
	if len(opts.Labels) > 0 {
		req.Header().Set(LabelsHeader, FormatLabels(opts.Labels))
	}
	if len(opts.Services) > 0 {
		req.Header().Set(ServicesHeader, FormatServices(opts.Services))
	}
	if opts.Streams {
		req.Header().Set(StreamsHeader, "1")
	}
	qc, err := quic.DialAddr(ctx, opts.Endpoint, tlsConf, quicConfig())
	if err != nil {
		return nil, fmt.Errorf("tunnel: connect to %s: %w", opts.Endpoint, err)
	}
	// HTTP/3 datagrams are sent but not announced: the endpoint then reads them from QUIC
	// itself, past HTTP/3's 32-entry queue (datagrams.go).
	cc := (&http3.Transport{EnableDatagrams: false}).NewClientConn(qc)
	conn, rsp, err := connectip.NewClientConn(cc).Dial(req)
	if err != nil {
		qc.CloseWithError(0, "")
		if rsp != nil && rsp.StatusCode == 401 {
			return nil, fmt.Errorf("%w (401 from %s)", ErrUnauthorized, opts.Endpoint)
		}
		return nil, fmt.Errorf("tunnel: connect to %s: %w", opts.Endpoint, err)
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	assigned, err := conn.ReceiveAddressAssignment(wait)
	if err != nil || len(assigned) == 0 {
		conn.Close()
		qc.CloseWithError(0, "")
		return nil, fmt.Errorf("tunnel: no address assigned: %v", err)
	}
	ipRoutes, err := conn.Routes(wait)
	if err != nil {
		conn.Close()
		qc.CloseWithError(0, "")
		return nil, fmt.Errorf("tunnel: no routes: %w", err)
	}
	s := &Session{Conn: conn, quic: qc, Prefix: assigned[0].IPPrefix, Endpoint: opts.Endpoint, Handshake: time.Since(started)}
	for _, r := range ipRoutes {
		s.Routes = append(s.Routes, r.Prefixes()...)
	}
	// The endpoint sends its DNS configuration right after the routes; an older one sends none.
	dnsWait, dnsCancel := context.WithTimeout(ctx, time.Second)
	s.DNS, _ = conn.ReceiveDNSConfiguration(dnsWait)
	dnsCancel()
	if len(s.Routes) == 1 && s.Routes[0].Bits() == 0 { // egress: the NAT64 prefix follows
		pWait, pCancel := context.WithTimeout(ctx, time.Second)
		s.PREF64, _ = conn.ReceivePREF64Configuration(pWait)
		pCancel()
	}
	return s, nil
}

// AgentConn is a connected agent in user mode: its own user-space stack holding its /96.
type AgentConn struct {
	*Session
	Stack *netstack.Stack
	sess  *netstack.Session
}

// Connect dials a session (Dial) and holds its /96 in a user-space stack of its own that
// forwards every TCP connection made to it (AgentOptions.Forward). `apoxy tunnel run` keeps
// several sessions on one stack (internal/tunnel/agent); this is the single-session form.
func Connect(ctx context.Context, opts AgentOptions) (*AgentConn, error) {
	opts.Mode = "user"
	s, err := Dial(ctx, opts)
	if err != nil {
		return nil, err
	}
	a := &AgentConn{Session: s}
	if a.Stack, err = netstack.New(netstack.Options{Owner: true}); err != nil {
		s.Close()
		return nil, err
	}
	forward := opts.Forward
	if forward == nil {
		forward = LocalTarget
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	a.Stack.ForwardTCP(func(c net.Conn, to netip.AddrPort) {
		defer c.Close()
		local, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", forward(s.Prefix, to))
		if err != nil {
			logger.Debug("tunnel: forward", "to", to, "err", err)
			return
		}
		defer local.Close()
		Splice(c, local)
	})
	// The forwarder is in place before the first packet can arrive.
	if a.sess, err = a.Stack.AttachWith(s.Conn, []netip.Prefix{netip.PrefixFrom(AgentAddr(s.Prefix), s.Prefix.Bits())}, s.Routes, netstack.AttachOptions{SkipTXChecksums: true}); err != nil {
		a.Stack.Close()
		s.Close()
		return nil, err
	}
	a.ReceiveDirect(a.sess.Done(), a.sess.Deliver, func() { a.sess.Stats().Dropped.Add(1) })
	if opts.Streams {
		st := a.sess.Stats()
		a.ServeStreams(func(to netip.AddrPort) (net.Conn, error) {
			return (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", forward(s.Prefix, to))
		}, &st.BytesIn, &st.BytesOut)
	}
	return a, nil
}

// LocalTarget is where an agent sends a connection made to to, an address of its /96:
// an IPv4 address mapped into its low 32 bits goes to that IPv4 address, everything else to
// 127.0.0.1, on the same port.
func LocalTarget(prefix netip.Prefix, to netip.AddrPort) string {
	host := "127.0.0.1"
	if to.Addr().Is4In6() {
		host = to.Addr().Unmap().String()
	} else if prefix.Contains(to.Addr()) && isMapped4(prefix, to.Addr()) {
		b := to.Addr().As16()
		host = netip.AddrFrom4([4]byte(b[12:])).String()
	}
	return net.JoinHostPort(host, strconv.Itoa(int(to.Port())))
}

// Splice copies both ways between a and b until both directions end, half-closing each
// side's write when the other's read ends.
func Splice(a, b net.Conn) {
	done := make(chan struct{})
	go func() { io.Copy(b, a); closeWrite(b); close(done) }()
	io.Copy(a, b)
	closeWrite(a)
	<-done
}

// RelayUDP copies datagrams both ways between two connected UDP conns until neither has
// sent one for idle (or one fails), then closes both.
func RelayUDP(a, b net.Conn, idle time.Duration) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	copyDatagrams := func(dst, src net.Conn) {
		defer a.Close()
		defer b.Close()
		buf := make([]byte, 65535)
		for {
			src.SetReadDeadline(time.Now().Add(idle))
			n, err := src.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < idle {
					continue // the other direction is alive
				}
				return
			}
			last.Store(time.Now().UnixNano())
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	done := make(chan struct{})
	go func() { copyDatagrams(b, a); close(done) }()
	copyDatagrams(a, b)
	<-done
}

// isMapped4 reports whether a is an IPv4 address mapped into the /96 (low 32 bits, the
// agent's own address excepted).
func isMapped4(p netip.Prefix, a netip.Addr) bool {
	b := a.As16()
	return b[12] != 0 || b[13] != 0 || b[14] != 0 || b[15] > 1
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// Done is closed when the session ends.
func (a *AgentConn) Done() <-chan struct{} { return a.sess.Done() }

// Close ends the session.
func (a *AgentConn) Close() {
	a.sess.Close()
	a.Session.Close()
	a.Stack.Close()
}
