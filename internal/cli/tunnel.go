package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/kubectl/pkg/cmd/get"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	corev1a "apoxy.dev/apoxy/api/core/v1alpha"
	"apoxy.dev/apoxy/internal/tunnel"
	"apoxy.dev/apoxy/internal/tunnel/agent"
	"apoxy.dev/apoxy/internal/tunnel/node"
)

var tunnelNodesGVR = corev1a.SchemeGroupVersion.WithResource("tunnelnodes")

// newTunnelCommand is `apoxy tunnel`: run an agent, rotate a node's token, list, show and
// delete TunnelNodes.
func newTunnelCommand(getter *clientGetter, f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	c := &cobra.Command{
		Use: "tunnel", Aliases: []string{"tunnels", "tn", "tunnelnode", "tunnelnodes"},
		Short: "Connect this machine to the edge as a TunnelNode's agent; list, show and delete TunnelNodes",
		Long: `A TunnelNode connects a site to the gateway without open ports: 'apoxy tunnel run NAME' dials the
gateway's tunnel endpoint (QUIC, HTTP/3 CONNECT-IP) with the node's token and gets an IPv6
overlay prefix. A Backend at fqdn NAME.tun.apoxy.net (the tunnel domain) then reaches this
machine's 127.0.0.1, and SERVICE.NAME.tun.apoxy.net a service it publishes (--service).`,
	}
	show := func(ctx context.Context, output string, names []string) error {
		g := get.NewCmdGet("apoxy", f, streams)
		args := append([]string{tunnelNodesGVR.Resource + "." + tunnelNodesGVR.Group}, names...)
		if output != "" {
			args = append(args, "-o", output)
		}
		g.SetArgs(args)
		g.SilenceUsage = true
		return g.ExecuteContext(ctx)
	}
	var output string
	list := &cobra.Command{Use: "list", Aliases: []string{"ls"}, Short: "List TunnelNodes", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return show(cmd.Context(), output, nil) }}
	list.Flags().StringVarP(&output, "output", "o", "", "output format: wide, yaml, json, name")
	getCmd := &cobra.Command{Use: "get NAME", Short: "Show TunnelNodes", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return show(cmd.Context(), output, args) }}
	getCmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide, yaml, json, name")
	del := &cobra.Command{Use: "delete NAME", Aliases: []string{"rm"}, Short: "Delete a TunnelNode (its agents are disconnected, its token refused)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dc, err := getter.dynamicClient()
			if err != nil {
				return err
			}
			if err := dc.Resource(tunnelNodesGVR).Delete(cmd.Context(), args[0], metav1.DeleteOptions{}); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "tunnelnode.%s %q deleted\n", tunnelNodesGVR.Group, args[0])
			return nil
		}}
	token := &cobra.Command{Use: "token", Short: "Manage a TunnelNode's token"}
	token.AddCommand(&cobra.Command{
		Use: "rotate NAME", Short: "Replace a TunnelNode's token: the old one is refused from now on", Args: cobra.ExactArgs(1),
		Long: `Replace a TunnelNode's token. New sessions with the old token are refused (401); agents run by
'apoxy tunnel run' read the new token from the API and reconnect with it.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			dc, err := getter.dynamicClient()
			if err != nil {
				return err
			}
			stamp := time.Now().UTC().Format(time.RFC3339Nano)
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{node.AnnRotate: stamp}}})
			if _, err := dc.Resource(tunnelNodesGVR).Patch(cmd.Context(), args[0], types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "tunnelnode %q: token rotated; the new one is in status.credentials.token\n", args[0])
			return nil
		},
	})
	c.AddCommand(newTunnelRunCommand(getter, streams), list, getCmd, del, token)
	return c
}

// tunnelRunFlags are `apoxy tunnel run`'s.
type tunnelRunFlags struct {
	auto                bool
	packets             bool
	mode, name          string
	minConns            int
	selection           string
	endpoints           []string
	socksAddr, dnsAddr  string
	healthAddr, metrics string
	insecure, noTUI     bool
	labels, services    []string
	drain               time.Duration
	token, tunName      string
	mtu                 int
	// explicit are the flags given on the command line: a default listener address that is
	// taken (apoxy dev's DNS server on 8053, say) is skipped with a warning, a given one fails.
	explicit func(name string) bool
}

// listen binds a listener flag's address; a default that is taken is skipped (nil, nil).
func (f *tunnelRunFlags) listen(w io.Writer, flag, network, addr string) (net.Listener, net.PacketConn, error) {
	var l net.Listener
	var pc net.PacketConn
	var err error
	if network == "udp" {
		pc, err = net.ListenPacket(network, addr)
	} else {
		l, err = net.Listen(network, addr)
	}
	if err != nil && !f.explicit(strings.TrimPrefix(flag, "--")) {
		fmt.Fprintf(w, "warning: %s %s: %v; running without it (set %s to another address)\n", flag, addr, err, flag)
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", flag, err)
	}
	return l, pc, nil
}

func newTunnelRunCommand(getter *clientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	f := &tunnelRunFlags{}
	c := &cobra.Command{
		Use:   "run NAME",
		Short: "Connect this machine to the edge as TunnelNode NAME's agent",
		Long: `Connect this machine to the edge as an agent of TunnelNode NAME, until SIGINT or SIGTERM (then it
drains: new connections go to the node's other agents, open ones get --drain-timeout).

User mode (the default) needs no privileges: a user-space network stack holds the agent's
overlay prefix and forwards connections the gateway makes to it to this machine (127.0.0.1,
or the IPv4 address a service maps to); a SOCKS5 proxy (--socks-addr) and a DNS proxy
(--dns-addr) let this machine's programs reach the overlay (other agents, NAME.tun.apoxy.net
names) and, when the node's spec.egressGateway.enabled is on, anything beyond it through the
gateway. Kernel mode makes a TUN device instead (Linux, CAP_NET_ADMIN).`,
		Example: `  apoxy tunnel run office-link
  apoxy tunnel run office-link --auto --min-conns 2 --service grafana=10.0.0.5 --no-tui
  # then a Backend with endpoints: [{fqdn: office-link.tun.apoxy.net}] reaches this machine`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.explicit = func(name string) bool { return cmd.Flags().Changed(name) }
			return runTunnel(cmd.Context(), getter, streams, f, args[0])
		},
	}
	fl := c.Flags()
	fl.BoolVar(&f.auto, "auto", false, "create the TunnelNode if it does not exist")
	fl.StringVarP(&f.mode, "mode", "m", "user", "user (user-space stack, SOCKS5 and DNS proxies, no privileges) or kernel (TUN device; Linux, CAP_NET_ADMIN)")
	fl.StringVar(&f.name, "name", "", "this agent's name, a DNS label (default: the host name); an agent reconnecting under the same name gets the same prefix")
	fl.IntVar(&f.minConns, "min-conns", 1, "sessions to keep open (over distinct endpoints when there are several): more fail over faster")
	fl.StringVar(&f.selection, "endpoint-selection", "latency", "how endpoints are chosen: latency (lowest handshake time) or random")
	fl.StringSliceVar(&f.endpoints, "endpoint", nil, "tunnel endpoint host:port to dial instead of the node's status.addresses (repeatable)")
	fl.StringVar(&f.socksAddr, "socks-addr", "localhost:1080", `SOCKS5 proxy into the tunnel (user mode; "" for none)`)
	fl.StringVar(&f.dnsAddr, "dns-addr", "127.0.0.1:8053", `DNS proxy: tunnel-domain names asked of the gateway, others of this machine's nameservers ("" for none)`)
	fl.StringVar(&f.healthAddr, "health-addr", "localhost:9180", `address serving /livez and /readyz ("" for none)`)
	fl.StringVar(&f.metrics, "metrics-addr", "", `address serving Prometheus /metrics (default: the --health-addr listener)`)
	fl.BoolVar(&f.insecure, "insecure-skip-verify", false, "do not verify the endpoint's certificate (testing only)")
	fl.BoolVar(&f.noTUI, "no-tui", false, "plain log lines instead of the live view (the default when stdout is not a terminal)")
	fl.StringArrayVar(&f.labels, "label", nil, "label k=v shown in the node's status.agents (repeatable)")
	fl.StringArrayVar(&f.services, "service", nil, "publish a service behind this machine: name=IPv4, reached as NAME.<node>.tun.apoxy.net (repeatable)")
	fl.DurationVar(&f.drain, "drain-timeout", 10*time.Second, "on shutdown, how long open forwarded connections get to finish (user mode)")
	fl.StringVar(&f.token, "token", os.Getenv("APOXY_TUNNEL_TOKEN"), "the node's token (status.credentials.token; default $APOXY_TUNNEL_TOKEN): with --endpoint, the agent runs without reaching the API (a rotated token then needs a restart)")
	fl.StringVar(&f.tunName, "tun-name", "apoxy0", "kernel mode: the TUN device's name")
	fl.BoolVar(&f.packets, "packets", false, "take the gateway's TCP connections as IP packets through the overlay (the user-space stack or the TUN device) instead of QUIC streams, which are several times faster")
	fl.IntVar(&f.mtu, "mtu", 1420, "kernel mode: the TUN device's MTU (a packet larger than a QUIC datagram can carry is answered with Packet Too Big, and the kernel lowers the path MTU)")
	return c
}

func runTunnel(ctx context.Context, getter *clientGetter, streams genericiooptions.IOStreams, f *tunnelRunFlags, name string) error {
	switch f.mode {
	case "user", "userspace":
		f.mode = "user"
	case "kernel":
		f.socksAddr = "" // the machine's own sockets reach the overlay
	default:
		return fmt.Errorf("--mode %q: want user or kernel", f.mode)
	}
	if f.selection != "latency" && f.selection != "random" {
		return fmt.Errorf("--endpoint-selection %q: want latency or random", f.selection)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	opts, err := tunnelAgentOptions(ctx, getter, streams, f, name)
	if err != nil {
		return err
	}
	tui := !f.noTUI && isTerminal(streams.Out)
	var logs *logTail
	if tui {
		// The live view owns the terminal: log lines are shown at its foot.
		logs = &logTail{}
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	a, err := agent.New(opts)
	if err != nil {
		return err
	}
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	if f.socksAddr != "" {
		l, _, err := f.listen(streams.ErrOut, "--socks-addr", "tcp", f.socksAddr)
		if err != nil {
			return err
		}
		if l != nil {
			closers = append(closers, l)
			go a.ServeSOCKS(l)
		}
	}
	if f.dnsAddr != "" {
		handler := a.DNSHandler(agent.SystemNameservers())
		_, pc, err := f.listen(streams.ErrOut, "--dns-addr", "udp", f.dnsAddr)
		if err != nil {
			return err
		}
		if pc != nil {
			closers = append(closers, pc)
			go (&dns.Server{PacketConn: pc, Handler: handler}).ActivateAndServe()
			if l, err := net.Listen("tcp", pc.LocalAddr().String()); err == nil {
				closers = append(closers, l)
				go (&dns.Server{Listener: l, Handler: handler}).ActivateAndServe()
			}
		}
	}
	if err := serveAgentHTTP(f, a, &closers); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	if tui {
		go runTunnelView(ctx, streams.Out, a, logs)
	}
	return <-done
}

// serveAgentHTTP starts the health and metrics listeners (one when they share an address).
func serveAgentHTTP(f *tunnelRunFlags, a *agent.Agent, closers *[]io.Closer) error {
	serve := func(flag, addr string, h http.Handler) error {
		l, _, err := f.listen(os.Stderr, flag, "tcp", addr)
		if err != nil || l == nil {
			return err
		}
		*closers = append(*closers, l)
		go (&http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}).Serve(l)
		return nil
	}
	metrics := a.MetricsHandler()
	if f.healthAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/livez", a.HealthHandler())
		mux.Handle("/readyz", a.HealthHandler())
		if f.metrics == "" || f.metrics == f.healthAddr {
			mux.Handle("/metrics", metrics)
		}
		if err := serve("--health-addr", f.healthAddr, mux); err != nil {
			return err
		}
	}
	if f.metrics != "" && f.metrics != f.healthAddr {
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics)
		return serve("--metrics-addr", f.metrics, mux)
	}
	return nil
}

// tunnelAgentOptions reads the TunnelNode (creating it with --auto), waits for its token and
// endpoint addresses, and builds the agent's options.
func tunnelAgentOptions(ctx context.Context, getter *clientGetter, streams genericiooptions.IOStreams, f *tunnelRunFlags, name string) (agent.Options, error) {
	cfg, err := getter.load()
	if err != nil {
		return agent.Options{}, err
	}
	var dc dynamic.Interface
	tn := &corev1a.TunnelNode{}
	if f.token == "" || len(f.endpoints) == 0 {
		if dc, err = getter.dynamicClient(); err != nil {
			return agent.Options{}, err
		}
		if tn, err = waitForTunnelNode(ctx, dc, streams, name, f.auto); err != nil {
			return agent.Options{}, err
		}
	}
	agentName := f.name
	if agentName == "" {
		agentName = hostLabel()
	}
	services := map[string]netip.Addr{}
	for _, s := range f.services {
		m, err := tunnel.ParseServices(s)
		if err != nil {
			return agent.Options{}, fmt.Errorf("--service: %w", err)
		}
		for k, v := range m {
			services[k] = v
		}
	}
	labels, err := tunnel.ParseLabels(strings.Join(f.labels, ","))
	if err != nil {
		return agent.Options{}, fmt.Errorf("--label: %w", err)
	}
	endpoints := f.endpoints
	if len(endpoints) == 0 {
		endpoints = endpointAddrs(tn.Status.Addresses, cfg.Server)
	}
	tlsConf := &tls.Config{InsecureSkipVerify: f.insecure}
	if ca, err := cfg.caData(); err == nil && len(ca) > 0 {
		tlsConf.RootCAs = x509.NewCertPool()
		tlsConf.RootCAs.AppendCertsFromPEM(ca)
	}
	if u, err := url.Parse(cfg.Server); err == nil && u.Hostname() != "" {
		// The endpoint's certificate names the API server's host too.
		tlsConf.ServerName = u.Hostname()
	}
	tok := f.token
	if tok == "" {
		tok = tn.Status.Credentials.Token
	}
	var refresh func(ctx context.Context) (string, error)
	if dc != nil {
		refresh = func(ctx context.Context) (string, error) {
			tn, err := getTunnelNode(ctx, dc, name)
			if err != nil {
				return "", err
			}
			if tn.Status.Credentials == nil {
				return "", errors.New("the TunnelNode has no token yet")
			}
			return tn.Status.Credentials.Token, nil
		}
	}
	return agent.Options{
		Node: name, Name: agentName, Endpoints: endpoints, TLS: tlsConf,
		Token:   func() string { return tok },
		Refresh: refresh, Mode: f.mode, TUNName: f.tunName, MTU: f.mtu,
		MinConns: f.minConns, Selection: f.selection, Services: services, Labels: labels,
		DrainTimeout: f.drain, Packets: f.packets,
		Logger: slog.New(slog.NewTextHandler(streams.ErrOut, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}, nil
}

// waitForTunnelNode gets the node, creating it with auto, and waits until the server has
// given it a token and endpoint addresses.
func waitForTunnelNode(ctx context.Context, dc dynamic.Interface, streams genericiooptions.IOStreams, name string, auto bool) (*corev1a.TunnelNode, error) {
	tn, err := getTunnelNode(ctx, dc, name)
	if apierrors.IsNotFound(err) {
		if !auto {
			return nil, fmt.Errorf("no TunnelNode %q in this project: create it with 'apoxy apply -f' or pass --auto", name)
		}
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": corev1a.SchemeGroupVersion.String(), "kind": "TunnelNode", "metadata": map[string]any{"name": name}}}
		if _, err := dc.Resource(tunnelNodesGVR).Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		fmt.Fprintf(streams.ErrOut, "Created TunnelNode %q.\n", name)
		err = nil
	}
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if tn != nil && tn.Status.Credentials != nil && tn.Status.Credentials.Token != "" && len(tn.Status.Addresses) > 0 {
			return tn, nil
		}
		if time.Now().After(deadline) {
			if tn != nil && tn.Status.Credentials != nil && len(tn.Status.Addresses) == 0 {
				return nil, fmt.Errorf("TunnelNode %q has no status.addresses: the server runs no tunnel endpoint (start it with --tunnel-addr), or pass --endpoint", name)
			}
			return nil, fmt.Errorf("TunnelNode %q has no token after 30s: is the server's controller running?", name)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if tn, err = getTunnelNode(ctx, dc, name); err != nil && !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
}

func getTunnelNode(ctx context.Context, dc dynamic.Interface, name string) (*corev1a.TunnelNode, error) {
	u, err := dc.Resource(tunnelNodesGVR).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	tn := &corev1a.TunnelNode{}
	b, err := u.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return tn, json.Unmarshal(b, tn)
}

// endpointAddrs are the node's status.addresses, an unspecified host (the endpoint listens
// on every interface) replaced by the API server's host, which this machine reaches.
func endpointAddrs(addrs []string, server string) []string {
	host := ""
	if u, err := url.Parse(server); err == nil {
		host = u.Hostname()
	}
	var out []string
	for _, a := range addrs {
		h, port, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		if ip, err := netip.ParseAddr(h); err == nil && ip.IsUnspecified() && host != "" {
			h = host
		}
		out = append(out, net.JoinHostPort(h, port))
	}
	return out
}

// hostLabel is the host name as a DNS label (the default agent name).
func hostLabel() string {
	h, _ := os.Hostname()
	h, _, _ = strings.Cut(strings.ToLower(h), ".")
	var b strings.Builder
	for _, c := range h {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 63 {
		s = s[:63]
	}
	if s == "" {
		s = "agent"
	}
	return s
}

// isTerminal reports whether w is a terminal (the live view is drawn only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// runTunnelView redraws the agent's status every second: its prefix, each session (endpoint,
// state, handshake, since when, last error), bytes and rates.
func runTunnelView(ctx context.Context, w io.Writer, a *agent.Agent, logs *logTail) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastIn, lastOut uint64
	for {
		s := a.Status()
		var b strings.Builder
		b.WriteString("\x1b[H\x1b[2J")
		fmt.Fprintf(&b, "apoxy tunnel  node %s  agent %s  prefix %s\n\n", s.Node, s.Name, s.Prefix)
		fmt.Fprintf(&b, "%-4s %-28s %-11s %-10s %-10s %s\n", "CONN", "ENDPOINT", "STATE", "HANDSHAKE", "SINCE", "LAST ERROR")
		for _, c := range s.Conns {
			fmt.Fprintf(&b, "%-4d %-28s %-11s %-10s %-10s %s\n", c.Index, c.Endpoint, c.State, c.Handshake.Round(time.Millisecond),
				time.Since(c.Since).Round(time.Second), c.LastError)
		}
		fmt.Fprintf(&b, "\nreceived %s (%s/s)   sent %s (%s/s)   open forwarded connections %d", humanBytes(s.BytesIn), humanBytes(s.BytesIn-min(lastIn, s.BytesIn)),
			humanBytes(s.BytesOut), humanBytes(s.BytesOut-min(lastOut, s.BytesOut)), s.Forwarded)
		if s.Draining {
			b.WriteString("   DRAINING")
		}
		b.WriteString("\n\n")
		for _, l := range logs.lines() {
			b.WriteString(l)
		}
		io.WriteString(w, b.String())
		lastIn, lastOut = s.BytesIn, s.BytesOut
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// logTail keeps the last log lines for the live view.
type logTail struct {
	mu   sync.Mutex
	tail []string
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tail = append(l.tail, string(p))
	if len(l.tail) > 10 {
		l.tail = l.tail[len(l.tail)-10:]
	}
	return len(p), nil
}

func (l *logTail) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.tail)
}
