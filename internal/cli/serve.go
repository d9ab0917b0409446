package cli

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/grpclog"
	"k8s.io/apimachinery/pkg/api/resource"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"

	"apoxy.dev/apoxy/internal/accesslog"
	"apoxy.dev/apoxy/internal/acme"
	"apoxy.dev/apoxy/internal/apiserver"
	"apoxy.dev/apoxy/internal/gcrunway"
	"apoxy.dev/apoxy/internal/platform"
	"apoxy.dev/apoxy/internal/proxy"
	"apoxy.dev/apoxy/internal/proxy/pathnorm"
	"apoxy.dev/apoxy/internal/proxy/ratelimit"
	"apoxy.dev/apoxy/internal/proxy/upstream"
	"apoxy.dev/apoxy/internal/tunnel"
	"apoxy.dev/apoxy/internal/version"
)

// serverFlags configure `apoxy server` and `apoxy dev`.
type serverFlags struct {
	dataDir   string
	apiAddr   string
	httpPort  int32
	httpsPort int32
	adminAddr string
	pool      string
	// Request hygiene and destination policy (see proxy.RequestPolicy, upstream.Destinations).
	backendNetworks string
	redis           string
	trustedProxies  string
	underscores     string
	encodedSlashes  string
	keepSlashes     bool
	maxConns        int
	maxConnsPerLn   int
	// The server's access log: where (stdout, off or a file) and, if forced, its format.
	accessLog       string
	accessLogFormat string
	// telemetryPrivate lets projects' telemetry sinks reach private addresses.
	telemetryPrivate bool
	// functionSourcesPrivate lets edge-function builds fetch from private addresses and file://.
	functionSourcesPrivate bool
	// The authoritative DNS server: where, the default NS names, the per-source rate.
	dnsAddr        string
	dnsNameservers string
	dnsRateLimit   int
	// Certificates: the ACME CAs, the account contact, a PEM file of extra roots for the CAs.
	acmeCA, acmeEmail, acmeCARoot string
	// tunnelAddr is where TunnelNodes' agents dial (UDP); tunnelDomain names nodes.
	tunnelAddr, tunnelDomain string
	// gcRunway is the least heap growth allowed between collections (see internal/gcrunway).
	gcRunway string
}

// newServerCommand builds `apoxy server` (production defaults) or `apoxy dev` (laptop
// defaults: high ports, a local data directory, credentials printed).
func newServerCommand(g *globalFlags, streams genericiooptions.IOStreams, dev bool) *cobra.Command {
	f := &serverFlags{dataDir: "/var/lib/apoxy", apiAddr: ":6443", httpPort: 80, httpsPort: 443, adminAddr: "127.0.0.1:9901", dnsAddr: ":53", dnsRateLimit: 100, acmeCA: "letsencrypt", tunnelAddr: ":9443", gcRunway: "128Mi"}
	use, short := "server", "Run the Apoxy server: API, controllers and data plane"
	if dev {
		home, _ := os.UserHomeDir()
		f.dataDir = filepath.Join(home, ".apoxy", "dev")
		f.apiAddr, f.httpPort, f.httpsPort = "127.0.0.1:6443", 8080, 8443
		f.backendNetworks = "internal"
		f.telemetryPrivate = true
		f.functionSourcesPrivate = true
		f.dnsAddr, f.dnsRateLimit = "127.0.0.1:8053", 0
		f.acmeCA = "" // a laptop is not reachable by a public CA
		f.tunnelAddr = "127.0.0.1:9443"
		use, short = "dev", "Run a local Apoxy server on high ports with a local data directory"
	}
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.

It writes DATA_DIR/kubeconfig (one context per project) and DATA_DIR/config.yaml (CLI config
with the admin key), so 'kubectl --kubeconfig DATA_DIR/kubeconfig' and
'apoxy --config DATA_DIR/config.yaml' work at once. The admin listener serves /readyz (200 once
everything is up) and /metrics. SIGINT or SIGTERM shuts down cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServer(cmd.Context(), g, f, streams, dev) },
	}
	fl := c.Flags()
	fl.StringVar(&f.dataDir, "data-dir", f.dataDir, "directory for the database, certificates and generated configs")
	fl.StringVar(&f.apiAddr, "api-addr", f.apiAddr, "address of the HTTPS API (Kubernetes-compatible, one path per project)")
	fl.Int32Var(&f.httpPort, "http-port", f.httpPort, "HTTP port of the default Gateway")
	fl.Int32Var(&f.httpsPort, "https-port", f.httpsPort, "HTTPS port of the default Gateway")
	fl.StringVar(&f.adminAddr, "admin-addr", f.adminAddr, "address of the admin listener (/readyz, /livez, /metrics)")
	fl.StringVar(&f.redis, "redis", "", "Redis that counts Global rate-limit rules for every project, as redis://[:password@]host:port[/db] (rediss:// for TLS); a Proxy's spec.rateLimit.redis names its own")
	fl.StringVar(&f.backendNetworks, "backend-networks", f.backendNetworks, `internal address ranges every project's Backends may reach: CIDRs, comma-separated, or "internal" for loopback and private ranges (a Project's spec.backendNetworks adds its own); link-local, metadata and the server's own sockets are never reachable`)
	fl.StringVar(&f.trustedProxies, "trusted-proxies", "", "CIDRs of proxies in front of the gateway whose X-Forwarded-*, Forwarded, X-Real-IP and X-Request-Id headers are kept (from other clients they are removed)")
	fl.StringVar(&f.underscores, "headers-with-underscores", "drop", "request headers whose names contain '_': drop, reject (400) or allow")
	fl.StringVar(&f.encodedSlashes, "encoded-slashes", "reject", "request paths with %2F or %5C: reject (400), keep (not separators) or decode")
	fl.BoolVar(&f.keepSlashes, "keep-duplicate-slashes", false, "do not merge duplicate slashes in request paths before routing")
	fl.IntVar(&f.maxConns, "max-connections", 0, "downstream connections of all listeners together (0: three quarters of the open-file limit left after a reserve for the API and admin listener)")
	fl.IntVar(&f.maxConnsPerLn, "max-connections-per-listener", 0, "downstream connections of each listener (0: only --max-connections)")
	fl.StringVar(&f.accessLog, "access-log", "stdout", "where the server writes every project's access-log lines: stdout, off, or a file path (reopened on SIGHUP, for logrotate)")
	fl.StringVar(&f.accessLogFormat, "access-log-format", "", `format of the server's access log: "" (each Gateway's, from its Proxy's spec.telemetry.accessLogs; JSON by default), json, or an Envoy command-operator format ("%START_TIME% %REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE%")`)
	fl.BoolVar(&f.functionSourcesPrivate, "function-sources-private", f.functionSourcesPrivate, "let EdgeFunction builds fetch code from loopback and private addresses and file:// Git repositories; off, only from public addresses")
	fl.BoolVar(&f.telemetryPrivate, "telemetry-private-endpoints", f.telemetryPrivate, "let projects' telemetry sinks (collector exporters, CloudMonitoringIntegrations) reach loopback and private addresses; off, they reach only public ones")
	fl.StringVar(&f.dnsAddr, "dns-addr", f.dnsAddr, `address of the authoritative DNS server for the projects' DomainZones (UDP and TCP); "" runs none`)
	fl.StringVar(&f.dnsNameservers, "dns-nameservers", "", "NS names published for DomainZones that name none, comma-separated (the names registrars are given); empty: ns1.<zone>, answered with this server's addresses")
	fl.IntVar(&f.dnsRateLimit, "dns-rate-limit", f.dnsRateLimit, "DNS responses per second to one source prefix (IPv4 /24, IPv6 /56) over UDP before they are dropped or sent truncated; 0: unlimited")
	fl.StringVar(&f.acmeCA, "acme-ca", f.acmeCA, `ACME CAs that issue the certificates of DomainRecords targeting a Gateway, tried in order, comma-separated: letsencrypt, letsencrypt-staging or a directory URL (https://...); "" or off: none are issued`)
	fl.StringVar(&f.acmeEmail, "acme-email", "", "contact address given to the ACME CAs for the projects' accounts (optional)")
	fl.StringVar(&f.acmeCARoot, "acme-ca-root", "", "PEM file of root certificates to trust, besides the system's (SSL_CERT_FILE), for the ACME CAs' own HTTPS (a private CA such as Pebble)")
	fl.StringVar(&f.tunnelAddr, "tunnel-addr", f.tunnelAddr, `UDP address of the tunnel endpoint TunnelNodes' agents dial (HTTP/3 CONNECT-IP); "" runs none`)
	fl.StringVar(&f.tunnelDomain, "tunnel-domain", tunnel.DefaultDomain, "domain of TunnelNodes' names: a Backend at <node>.DOMAIN or <service>.<node>.DOMAIN reaches the project's own agents (answered inside the gateway, never asked of public DNS)")
	fl.StringVar(&f.gcRunway, "gc-runway", f.gcRunway, "least heap growth between garbage collections (a quantity: 128Mi), so that traffic does not make the collector mark the whole heap every few seconds (p99); 0: the runtime's GOGC alone. GOGC or GOMEMLIMIT in the environment take precedence")
	fl.StringVar(&f.pool, "gateway-address-pool", "", "addresses to give Gateways without spec.addresses, one each: a CIDR (127.0.1.0/28), a range (10.0.0.10-10.0.0.20) or a comma list; empty: all share every interface")
	return c
}

func runServer(ctx context.Context, g *globalFlags, f *serverFlags, streams genericiooptions.IOStreams, dev bool) error {
	log := serverLogger(streams.ErrOut, g.verbose)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	dataDir, err := filepath.Abs(f.dataDir)
	if err != nil {
		return err
	}
	var srv *apiserver.Server
	writeConfigs := func() {
		if srv == nil {
			return
		}
		if err := writeClientConfigs(srv, dataDir); err != nil {
			log.Error("write client configs", "err", err)
		}
	}
	runway, err := resource.ParseQuantity(f.gcRunway)
	if err != nil || runway.Sign() < 0 {
		return fmt.Errorf("--gc-runway %q: want a size such as 128Mi, or 0", f.gcRunway)
	}
	pool, err := parseAddressPool(f.pool)
	if err != nil {
		return fmt.Errorf("--gateway-address-pool: %w", err)
	}
	requests, networks, err := f.requestPolicy()
	if err != nil {
		return err
	}
	var store ratelimit.Store
	if f.redis != "" {
		ro, err := ratelimit.ParseRedisURL(f.redis)
		if err != nil {
			return fmt.Errorf("--redis: %w (want redis://host:port)", err)
		}
		store = ratelimit.NewRedis(ro)
	}
	acmeOpts, err := f.acme()
	if err != nil {
		return err
	}
	accessLog, err := f.openAccessLog(ctx, streams.Out, log)
	if err != nil {
		return err
	}
	log.Info("starting apoxy", "version", version.String(), "data_dir", dataDir)
	p, err := platform.Start(ctx, platform.Options{
		API: apiserver.Options{
			DataDir: dataDir,
			Addr:    f.apiAddr,
			Ports:   apiserver.Ports{HTTP: f.httpPort, HTTPS: f.httpsPort},
		},
		AddressPool:               pool,
		AdminAddr:                 f.adminAddr,
		BackendNetworks:           networks,
		RateLimitStore:            store,
		Requests:                  requests,
		DrainAccept:               true,
		MaxConnections:            f.maxConns,
		MaxConnsPerListener:       f.maxConnsPerLn,
		AccessLog:                 accessLog,
		AccessLogFormat:           f.accessLogFormat,
		TelemetryPrivateEndpoints: f.telemetryPrivate,
		FunctionSourcesPrivate:    f.functionSourcesPrivate,
		DNS:                       platform.DNSOptions{Addr: f.dnsAddr, Nameservers: splitList(f.dnsNameservers), RateLimit: f.dnsRateLimit},
		ACME:                      acmeOpts,
		Tunnel:                    platform.TunnelOptions{Addr: f.tunnelAddr, Domain: f.tunnelDomain},
		Logger:                    log,
		OnProjectsChanged:         writeConfigs,
		ConsoleDevSignIn:          dev,
	})
	if err != nil {
		return err
	}
	srv = p.API
	writeConfigs()
	if dev {
		printDevBanner(streams.Out, srv, dataDir, p.Admin.Addr(), "http://"+p.Admin.Addr()+p.Console.SignInPath(), f)
	}
	log.Info("apoxy ready", "api", srv.URL(), "admin", p.Admin.Addr())
	go trimWhenIdle(ctx, p.Ready)
	gcrunway.LimitFromCgroup(log)
	go gcrunway.Keep(ctx, uint64(runway.Value()), time.Second, log)
	<-ctx.Done()
	log.Info("shutting down")
	p.Close()
	log.Info("stopped")
	return nil
}

// acme reads the certificate flags.
func (f *serverFlags) acme() (platform.ACMEOptions, error) {
	cas, err := acme.ParseCAs(f.acmeCA)
	if err != nil {
		return platform.ACMEOptions{}, fmt.Errorf("--acme-ca: %w", err)
	}
	opts := platform.ACMEOptions{CAs: cas, Email: f.acmeEmail}
	if f.acmeCARoot != "" {
		pemData, err := os.ReadFile(f.acmeCARoot)
		if err != nil {
			return opts, fmt.Errorf("--acme-ca-root: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pemData) {
			return opts, fmt.Errorf("--acme-ca-root: %s holds no PEM certificate", f.acmeCARoot)
		}
		opts.Roots = pool
	}
	return opts, nil
}

// requestPolicy reads the request-hygiene and backend-network flags.
func (f *serverFlags) requestPolicy() (proxy.RequestPolicy, []netip.Prefix, error) {
	var rp proxy.RequestPolicy
	var err error
	if rp.Underscores, err = proxy.ParseUnderscoreAction(f.underscores); err != nil {
		return rp, nil, fmt.Errorf("--headers-with-underscores: %w", err)
	}
	switch strings.ToLower(f.encodedSlashes) {
	case "reject", "":
		rp.Paths.EncodedSlashes = pathnorm.RejectEncodedSlash
	case "keep":
		rp.Paths.EncodedSlashes = pathnorm.KeepEncodedSlash
	case "decode":
		rp.Paths.EncodedSlashes = pathnorm.DecodeEncodedSlash
	default:
		return rp, nil, fmt.Errorf("--encoded-slashes: want reject, keep or decode, not %q", f.encodedSlashes)
	}
	rp.Paths.KeepSlashes = f.keepSlashes
	if rp.TrustedProxies, err = parseCIDRs(f.trustedProxies); err != nil {
		return rp, nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	if strings.TrimSpace(f.backendNetworks) == "internal" {
		return rp, upstream.AllInternal, nil
	}
	nets, err := parseCIDRs(f.backendNetworks)
	if err != nil {
		return rp, nil, fmt.Errorf("--backend-networks: %w", err)
	}
	return rp, nets, nil
}

// parseCIDRs reads a comma-separated CIDR list (a bare address is a /32 or /128).
func parseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if part == "internal" {
			out = append(out, upstream.AllInternal...)
			continue
		}
		if a, err := netip.ParseAddr(part); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR (10.0.0.0/8) or address", part)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// trimWhenIdle hands memory back to the OS whenever the server goes quiet (and once it is first
// ready): the garbage left by start-up, schema loading, translation or a burst of traffic, and
// the pages of the executable that only start-up ran (see releaseStartupCode). Quiet means the
// heap grew by less than idleAllocs over two checks; the runtime alone would return that memory
// only slowly, so an idle server looked tens of megabytes bigger than it is.
func trimWhenIdle(ctx context.Context, ready func() error) {
	for i := 0; i < 600 && ready() != nil; i++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	trim := func() {
		freeMemory()
		releaseStartupCode()
	}
	trim()
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	allocs := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	const idleAllocs = 4 << 20
	last, quiet, trimmed := allocs(), 0, true
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := allocs()
		if now-last < idleAllocs {
			quiet++
		} else {
			quiet, trimmed = 0, false
		}
		last = now
		if quiet >= 2 && !trimmed {
			trim()
			last, trimmed = allocs(), true
		}
	}
}

// freeMemory collects twice and returns free pages to the OS. Twice: what sync.Pools hold (the
// read buffer of every connection that went to rest: 4 KiB each, 40 MiB for 10k idle clients)
// survives the first collection in the pools' victim caches, and only the second frees it.
func freeMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// writeClientConfigs writes DATA_DIR/config.yaml (admin) and DATA_DIR/kubeconfig with a context
// per project.
func writeClientConfigs(srv *apiserver.Server, dataDir string) error {
	cfg := &Config{
		Server:                   srv.URL(),
		CertificateAuthorityData: base64.StdEncoding.EncodeToString(srv.CACertPEM()),
		AdminToken:               srv.AdminToken(),
		CurrentProject:           apiserver.DefaultProject,
	}
	// Keep the user's current project choice across restarts.
	if old, err := LoadConfig(filepath.Join(dataDir, "config.yaml")); err == nil && old.CurrentProject != "" {
		cfg.CurrentProject = old.CurrentProject
	}
	names := srv.ProjectNames()
	for _, name := range names {
		token, err := srv.ProjectToken(name)
		if err != nil {
			continue // removed meanwhile
		}
		cfg.SetProject(name, token)
	}
	if cfg.Project(cfg.CurrentProject) == nil && len(names) > 0 {
		cfg.CurrentProject = names[0]
	}
	if err := cfg.Save(filepath.Join(dataDir, "config.yaml")); err != nil {
		return err
	}
	return cfg.WriteKubeconfig(filepath.Join(dataDir, "kubeconfig"))
}

func printDevBanner(w io.Writer, srv *apiserver.Server, dataDir, adminAddr, consoleURL string, f *serverFlags) {
	token, _ := srv.ProjectToken(apiserver.DefaultProject)
	fmt.Fprintf(w, `
Apoxy dev server is ready.

  API (project default)  %s/projects/default
  HTTP / HTTPS ports     %s / %s (default Gateway)
  Admin                  http://%s/readyz
  Console                %s
  Data directory         %s
  Project key (default)  %s

  export APOXY_CONFIG=%s
  export KUBECONFIG=%s
  apoxy get gateways

`, srv.URL(), strconv.Itoa(int(f.httpPort)), strconv.Itoa(int(f.httpsPort)), adminAddr, consoleURL, dataDir, token,
		filepath.Join(dataDir, "config.yaml"), filepath.Join(dataDir, "kubeconfig"))
}

// serverLogger logs to w; the Kubernetes libraries' own logs (klog, gRPC) are shown only from
// -v 2, errors always.
func serverLogger(w io.Writer, verbose int) *slog.Logger {
	level := slog.LevelInfo
	if verbose >= 2 {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	libLevel := slog.LevelError
	if verbose >= 2 {
		libLevel = slog.LevelDebug
	}
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: libLevel})).With("lib", "k8s"))
	if verbose < 2 {
		grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, w))
	}
	quietCancellations()
	return log
}

var quietOnce sync.Once

// quietCancellations stops client-go from reporting, as errors, watches that end because their
// own context was cancelled: a deleted project's controller stopping is routine, and seven
// "Failed to watch ... context canceled" lines per deletion would hide real errors.
func quietCancellations() {
	quietOnce.Do(func() {
		handlers := utilruntime.ErrorHandlers
		utilruntime.ErrorHandlers = []utilruntime.ErrorHandler{func(ctx context.Context, err error, msg string, kv ...any) {
			if errors.Is(err, context.Canceled) {
				return
			}
			for _, h := range handlers {
				h(ctx, err, msg, kv...)
			}
		}}
	})
}

// parseAddressPool reads a CIDR, an inclusive range "a-b" or a comma list of addresses.
func parseAddressPool(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	const limit = 1 << 16
	var out []string
	switch {
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		for a := p.Masked().Addr(); p.Contains(a) && len(out) < limit; a = a.Next() {
			out = append(out, a.String())
		}
	case strings.Contains(s, "-"):
		lo, hi, _ := strings.Cut(s, "-")
		a, err := netip.ParseAddr(strings.TrimSpace(lo))
		if err != nil {
			return nil, err
		}
		b, err := netip.ParseAddr(strings.TrimSpace(hi))
		if err != nil {
			return nil, err
		}
		if b.Less(a) {
			return nil, fmt.Errorf("range %s ends before it starts", s)
		}
		for ; !b.Less(a) && len(out) < limit; a = a.Next() {
			out = append(out, a.String())
		}
	default:
		for _, v := range strings.Split(s, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(v))
			if err != nil {
				return nil, err
			}
			out = append(out, a.String())
		}
	}
	return out, nil
}

// openAccessLog opens the server's access log: stdout, nothing, or a file reopened on SIGHUP
// (logrotate moves it, then signals). The format is checked here, so a typo stops the start
// with the offending operator rather than being ignored.
func (f *serverFlags) openAccessLog(ctx context.Context, stdout io.Writer, log *slog.Logger) (io.Writer, error) {
	if f.accessLogFormat != "" && f.accessLogFormat != "json" {
		if _, err := accesslog.ParseText(f.accessLogFormat); err != nil {
			return nil, fmt.Errorf("--access-log-format: %w", err)
		}
	}
	switch f.accessLog {
	case "stdout", "-", "":
		return stdout, nil
	case "off", "none":
		return nil, nil
	}
	file, err := accesslog.OpenFile(f.accessLog)
	if err != nil {
		return nil, fmt.Errorf("--access-log: %w", err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := file.Reopen(); err != nil {
					log.Error("reopen the access log", "path", f.accessLog, "err", err)
				} else {
					log.Info("access log reopened", "path", f.accessLog)
				}
			}
		}
	}()
	return file, nil
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
