// Package platform composes the running product from an ordered list of components
// (internal/component): the admin listener, the API server, the data plane and the per-project
// controllers. It starts them in that order, stops them in reverse (controllers, then the data
// plane drains, then the API, then the admin listener) and reports their readiness, which the
// admin listener's /readyz shows. `apoxy server`, `apoxy dev` and the in-process end-to-end
// tests all start it the same way.
package platform

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"

	"apoxy.dev/apoxy/internal/console"

	"github.com/prometheus/client_golang/prometheus"

	"apoxy.dev/apoxy/internal/acme"
	"apoxy.dev/apoxy/internal/admin"
	"apoxy.dev/apoxy/internal/apiserver"
	"apoxy.dev/apoxy/internal/claims"
	"apoxy.dev/apoxy/internal/component"
	"apoxy.dev/apoxy/internal/controller"
	"apoxy.dev/apoxy/internal/dns/authority"
	"apoxy.dev/apoxy/internal/domain"
	"apoxy.dev/apoxy/internal/function"
	"apoxy.dev/apoxy/internal/function/build"
	"apoxy.dev/apoxy/internal/function/builder"
	"apoxy.dev/apoxy/internal/function/kv"
	"apoxy.dev/apoxy/internal/function/loader"
	"apoxy.dev/apoxy/internal/observe"
	"apoxy.dev/apoxy/internal/pki"
	"apoxy.dev/apoxy/internal/proxy"
	"apoxy.dev/apoxy/internal/proxy/ratelimit"
	"apoxy.dev/apoxy/internal/proxy/upstream"
	"apoxy.dev/apoxy/internal/telemetry/collector"
	"apoxy.dev/apoxy/internal/telemetry/pipeline"
	"apoxy.dev/apoxy/internal/translate"
	"apoxy.dev/apoxy/internal/tunnel"
	"apoxy.dev/apoxy/internal/tunnel/node"
)

// Options configure the platform.
type Options struct {
	API apiserver.Options
	// ConsoleDevSignIn lets the web console sign a browser in with the admin key through the
	// link Platform.Console.SignInPath gives (`apoxy dev` prints it). Off under `apoxy server`.
	ConsoleDevSignIn bool
	// BindAddress is where Gateways without spec.addresses listen ("" = all interfaces).
	BindAddress string
	// StatusAddresses are reported for such Gateways (default: the bind address, or every
	// address of this machine when binding all interfaces).
	StatusAddresses []string
	// AddressPool gives each Gateway without spec.addresses its own address (see
	// translate.Options.AddressPool).
	AddressPool []string
	// AccessLog receives JSON access-log lines (nil: none).
	AccessLog io.Writer
	// AccessLogFormat forces AccessLog's format (proxy.Options.AccessLogFormat).
	AccessLogFormat string
	// TelemetryPrivateEndpoints lets telemetry sinks reach loopback and private addresses
	// (apoxy dev; a single-tenant server exporting to its own network). By default a
	// project's exporters reach only public addresses.
	TelemetryPrivateEndpoints bool
	// FunctionSourcesPrivate lets EdgeFunction sources be fetched from loopback and private
	// addresses and file:// Git repositories (apoxy dev, tests). By default builds fetch
	// from public addresses only.
	FunctionSourcesPrivate bool
	Upstream               upstream.Options
	Logger                 *slog.Logger
	// OnProjectsChanged runs after a project starts or stops (e.g. to rewrite kubeconfigs).
	OnProjectsChanged func()
	// BackendNetworks are the internal ranges every project's Backends may reach (apoxy dev:
	// upstream.AllInternal; apoxy server: none unless --backend-networks says so). A
	// Project's spec.backendNetworks adds to them for that project.
	BackendNetworks []netip.Prefix
	// RateLimitStore counts Global rate-limit rules for every project (apoxy dev --redis).
	RateLimitStore ratelimit.Store
	// Reserved are sockets no Backend may reach besides the server's own: the API's and the
	// admin listener's addresses are added at start.
	Reserved []upstream.Reserved
	// AdminAddr is where the admin listener (/readyz, /livez, /metrics, pprof) listens; ""
	// runs none.
	AdminAddr string
	// Requests is how the data plane cleans inbound requests (paths, trusted proxies,
	// underscore headers).
	Requests proxy.RequestPolicy
	// DrainAccept: see proxy.Options.DrainAccept.
	DrainAccept bool
	// MaxConnections and MaxConnsPerListener: see proxy.Options (0: the defaults).
	MaxConnections, MaxConnsPerListener int
	// DNS is the authoritative DNS server for the projects' DomainZones.
	DNS DNSOptions
	// ACME issues the certificates of DomainRecords that target a Gateway.
	ACME ACMEOptions
	// Tunnel is the endpoint TunnelNodes' agents dial.
	Tunnel TunnelOptions
}

// ACMEOptions configure certificate issuance.
type ACMEOptions struct {
	// CAs are the ACME CAs tried in order (acme.ParseCAs); none: no certificates are issued.
	CAs []acme.CA
	// Email is the contact given to CAs (optional).
	Email string
	// Roots are trusted for the CAs' HTTPS (nil: the system pool).
	Roots *x509.CertPool
}

// DNSOptions configure the authoritative DNS server.
type DNSOptions struct {
	// Addr is where it answers, UDP and TCP ("" runs none: zones stay Pending).
	Addr string
	// Nameservers are the NS names of zones that name none; empty: ns1.<zone>, answered
	// with the server's public addresses.
	Nameservers []string
	// RateLimit is responses per second per source prefix over UDP (0: unlimited).
	RateLimit int
}

// Platform is the running product.
type Platform struct {
	API   *apiserver.Server
	Proxy *proxy.Server
	// Admin is the admin listener (nil without Options.AdminAddr).
	Admin *admin.Server
	// Claims decides which project a shared socket and hostname serve.
	Claims *claims.Registry
	// Destinations decides which addresses Backends may reach.
	Destinations *upstream.Destinations
	// DNS is the authoritative DNS server (nil without DNSOptions.Addr); Domains decides
	// which project's zones it serves.
	DNS     *authority.Server
	Domains *domain.Registry
	dns     *dnsServer
	// Tunnels is the tunnel endpoint (nil without TunnelOptions.Addr).
	Tunnels *tunnel.Server
	// Console is the web console, served at /console/ on the API's listener and the admin
	// listener.
	Console *console.Console
	tunnel  *tunnelEndpoint

	components *component.Runner
	// kv are the projects' edge-function KV stores (nil without a data directory).
	kv *loader.SQLiteKV
	// kvNamespace is a function's KV namespace (nil: no store).
	kvNamespace func(project, fn string) function.KV
}

// Start builds the components and starts them in order; it returns once all serve (their
// readiness is Ready), or, if one fails, with the started ones stopped again and an error
// naming it. ctx cancellation (or Close) stops them, in reverse order.
func Start(ctx context.Context, opts Options) (*Platform, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if len(opts.StatusAddresses) == 0 {
		opts.StatusAddresses = statusAddresses(opts.BindAddress)
	}
	if opts.Upstream.Logger == nil {
		opts.Upstream.Logger = opts.Logger
	}
	p := &Platform{}
	// ctrls is set below, before anything can notify.
	var ctrls *controllers
	claimsFile := ""
	if opts.API.DataDir != "" {
		claimsFile = filepath.Join(opts.API.DataDir, "claims.json")
	}
	reg, err := claims.New(claims.Options{File: claimsFile, Logger: opts.Logger, Notify: func(project string) { go ctrls.kick(project) }})
	if err != nil {
		return nil, err
	}
	p.Claims = reg
	sessionSecret, err := loadOrCreateSecret(opts.API.DataDir, "oidc-session.key")
	if err != nil {
		return nil, err
	}
	p.Destinations = upstream.NewDestinations(opts.BackendNetworks, opts.Reserved)
	opts.Upstream.Destinations = p.Destinations
	validateCollectorConfig := func(yaml []byte) error {
		return collector.Validate(yaml, filepath.Join(opts.API.DataDir, "projects"))
	}
	pipes := pipeline.New(pipeline.Options{
		FileDir: func(project string) string {
			if opts.API.DataDir == "" {
				return ""
			}
			return filepath.Join(opts.API.DataDir, "projects", project, "telemetry")
		},
		AllowPrivateEndpoints: opts.TelemetryPrivateEndpoints,
		Gatherer:              proxy.MetricsGatherer(),
		Logger:                opts.Logger,
	})
	// Edge functions: the builder (per project, in its controller) writes artifacts where the
	// loader (the data plane's) reads them.
	functions := &loader.Loader{Dir: opts.API.DataDir, Logger: opts.Logger}
	// KV: in the Redis the process shares with its replicas (--redis) when it has one, so
	// every gateway replica sees the same keys; else in each project's own SQLite file.
	if r, ok := opts.RateLimitStore.(*ratelimit.Redis); ok {
		client := r.Client()
		p.kvNamespace = func(project, fn string) function.KV { return kv.NewRedis(client, project).Namespace(fn) }
	} else if opts.API.DataDir != "" {
		p.kv = &loader.SQLiteKV{Dir: opts.API.DataDir}
		p.kvNamespace = p.kv.Namespace
	}
	functions.KV = p.kvNamespace

	if opts.DNS.Addr != "" {
		p.DNS = authority.New(authority.Options{RateLimit: opts.DNS.RateLimit, Logger: opts.Logger})
		dnsMetrics.set(p.DNS.Metrics())
		p.Domains = domain.NewRegistry(p.DNS)
	} else {
		p.Domains = domain.NewRegistry(nil)
	}
	p.Domains.OnChange(func(projects []string) {
		for _, name := range projects {
			go ctrls.kick(name)
		}
	})
	publicAddrs := parseAddrs(opts.StatusAddresses)
	tunnelSecret, err := loadOrCreateSecret(opts.API.DataDir, "tunnel-token.key")
	if err != nil {
		return nil, err
	}
	nodes := node.NewRegistry(tunnel.NewSigner(tunnelSecret), opts.Tunnel.Domain)
	if opts.Tunnel.Addr != "" {
		p.Tunnels = tunnel.NewServer(tunnel.ServerOptions{Authenticate: nodes.Authenticate, Logger: opts.Logger,
			OnChange: func(project string) { go ctrls.kick(project) },
			Domain:   nodes.Domain(), Resolve: nodes.Resolve, Egress: nodes.Egress,
			// Egress leaves as the project's own outbound connections do: through the data
			// plane's Dialer, under the project's destination policy.
			Dial: func(ctx context.Context, project, network, addr string) (net.Conn, error) {
				return p.Proxy.Dial(ctx, project+"/-/tunnel-egress", network, addr)
			}})
		nodes.Services = p.Tunnels.Services
		tunnelMetrics.set(p.Tunnels)
		next := opts.Upstream.Dialer
		if next == nil {
			next = upstream.NetDialer{}
		}
		opts.Upstream.Dialer = overlayDialer{tunnels: p.Tunnels, next: next}
		res := opts.Upstream.Resolver
		if res == nil {
			res = &upstream.DNSResolver{}
		}
		opts.Upstream.Resolver = overlayResolver{nodes: nodes, next: res}
	}
	certs := acme.New(acme.Options{CAs: opts.ACME.CAs, Email: opts.ACME.Email, Roots: opts.ACME.Roots, Logger: opts.Logger,
		Resolver: func() string {
			if a := p.DNSAddr(); a.IsValid() {
				return a.String()
			}
			return ""
		}})
	acme.RegisterMetrics(proxy.MetricsRegisterer())

	p.Proxy = proxy.New(proxy.Options{Logger: opts.Logger, Pipelines: pipes, AccessLog: opts.AccessLog, AccessLogFormat: opts.AccessLogFormat, Upstream: opts.Upstream, Requests: opts.Requests, DrainAccept: opts.DrainAccept,
		MaxConnections: opts.MaxConnections, MaxConnectionsPerListener: opts.MaxConnsPerListener, RateLimitStore: opts.RateLimitStore, Functions: functions})
	functions.Dial, functions.Logs = p.Proxy.Dial, p.Proxy.Logs
	ctrls = &controllers{
		data:    p.Proxy,
		dataDir: opts.API.DataDir,
		builds:  make(chan struct{}, 1),
		compiler: &builder.Compiler{Fetch: builder.NewFetcher(opts.FunctionSourcesPrivate),
			Go: build.GoOptions{CacheDir: goCache(opts.API.DataDir)}},
		claims: p.Claims,
		dest:   p.Destinations,
		domains: domain.Options{Registry: p.Domains, Serving: p.DNS != nil, Nameservers: opts.DNS.Nameservers,
			NSAddrs: nsAddrs(opts.DNS.Addr, publicAddrs), PublicAddrs: publicAddrs, Certs: certs},
		nodes: node.Options{Registry: nodes, Endpoint: p.Tunnels, Addresses: func() []string {
			if a := p.TunnelAddr(); a.IsValid() {
				return []string{a.String()}
			}
			return nil
		}},
		translate: translate.Options{
			BindAddress:     opts.BindAddress,
			StatusAddresses: opts.StatusAddresses,
			AddressPool:     opts.AddressPool,
			// Global rate-limit rules count in the process's store (a Proxy's own is to come).
			GlobalRateLimitStore:    opts.RateLimitStore != nil,
			SessionSecret:           sessionSecret,
			ValidateCollectorConfig: validateCollectorConfig,
		},
		log: opts.Logger,
	}
	apiOpts := opts.API
	apiOpts.Logger = opts.Logger
	apiOpts.OnProjectStopping = ctrls.stopProject
	apiOpts.OnObjectCreated = ctrls.objectCreated
	apiOpts.ValidateCollectorConfig = validateCollectorConfig
	// Each project's API serves its live telemetry: `apoxy logs` and `apoxy top`.
	apiOpts.ProjectHandlers = func(project string) map[string]http.Handler {
		hs := map[string]http.Handler{
			observe.LogsPath: observe.LogsHandler(p.Proxy, project),
			observe.TopPath:  observe.TopHandler(proxy.MetricsGatherer(), project),
		}
		hs[kv.Path] = p.KVHandler(project)
		return hs
	}
	apiOpts.LongRunningPaths = []string{observe.LogsPath}
	consoleOpts := console.Options{Logger: opts.Logger, ProjectOfKey: apiserver.ProjectOfToken,
		API: func() (string, []byte) { return p.API.URL(), p.API.CACertPEM() }}
	if opts.ConsoleDevSignIn {
		consoleOpts.DevSignIn = func() string { return p.API.AdminToken() }
	}
	if p.Console, err = console.New(consoleOpts); err != nil {
		return nil, err
	}
	apiOpts.Pages = map[string]http.Handler{console.Prefix: p.Console}
	userHook := opts.OnProjectsChanged
	apiOpts.OnProjectsChanged = func() {
		ctrls.sync()
		if userHook != nil {
			userHook()
		}
	}
	if p.API, err = apiserver.New(apiOpts); err != nil {
		return nil, err
	}
	ctrls.api = p.API

	// The components, in start order: each after what it needs, so it stops before them.
	// Add a component here (see docs/architecture.md, "Recipe: add a component").
	var list []component.Component
	if opts.AdminAddr != "" {
		// The admin listener comes first, so /readyz answers (503) while the rest starts
		// and while it stops.
		if p.Admin, err = admin.New(admin.Options{Addr: opts.AdminAddr, Readiness: p.Status,
			Gatherers: []prometheus.Gatherer{proxy.MetricsGatherer(), controller.MetricsGatherer()}, Logger: opts.Logger,
			Pages: map[string]http.Handler{console.Prefix: p.Console}}); err != nil {
			return nil, err
		}
		if ap, err := netip.ParseAddrPort(p.Admin.Addr()); err == nil {
			p.Destinations.Reserve(upstream.Reserved{Addr: ap, Name: "the admin listener"})
		}
		list = append(list, p.Admin)
	}
	list = append(list,
		&apiServer{srv: p.API, dest: p.Destinations},
		&dataPlane{srv: p.Proxy},
	)
	if p.DNS != nil {
		p.dns = &dnsServer{srv: p.DNS, addr: opts.DNS.Addr}
		list = append(list, p.dns)
	}
	if p.Tunnels != nil {
		p.tunnel = &tunnelEndpoint{srv: p.Tunnels, api: p.API, addr: opts.Tunnel.Addr}
		list = append(list, p.tunnel)
	}
	list = append(list, ctrls)
	p.components = component.NewRunner(opts.Logger, list...)
	if err := p.components.Start(ctx); err != nil {
		if p.Admin != nil {
			_ = p.Admin.Stop(context.WithoutCancel(ctx)) // closes its socket if it never started
		}
		return nil, err
	}
	context.AfterFunc(ctx, p.Close)
	return p, nil
}

// KVHandler serves a project's edge-function KV (`apoxy kv`) where the functions' invocations
// find it: in the Redis the project's Proxy names, else in the process's store.
func (p *Platform) KVHandler(project string) http.Handler {
	return kv.Handler(func(fn string) function.KV {
		if r, ok := p.Proxy.ProjectKVStore(project).(*ratelimit.Redis); ok {
			return kv.NewRedis(r.Client(), project).Namespace(fn)
		}
		if p.kvNamespace == nil {
			return nil
		}
		return p.kvNamespace(project, fn)
	})
}

// Components lists the running components, in start order.
func (p *Platform) Components() []component.Component { return p.components.Components() }

// Status reports each component's readiness, in start order (the lines of /readyz).
func (p *Platform) Status() []component.Status {
	if p.components == nil { // not built yet: /readyz says "starting"
		return nil
	}
	return p.components.Status()
}

// Ready is nil when every component is ready: the API serves and every project's
// configuration reached the data plane at least once. Otherwise it names the first component
// that is not and says why.
func (p *Platform) Ready() error { return p.components.Ready() }

// Close stops the components in reverse start order: the controllers (no more snapshots),
// the data plane (drained), the API server, the admin listener. It returns once they have
// stopped; it may be called more than once.
func (p *Platform) Close() {
	_ = p.components.Stop(context.Background()) // the runner logs each component's error
	if p.kv != nil {
		p.kv.Close()
	}
}

// statusAddresses are the addresses Gateways without their own report: the bind address, or
// for all interfaces every address of this machine clients can use (link-local ones left out),
// loopback first.
func statusAddresses(bind string) []string {
	if bind != "" && bind != "0.0.0.0" && bind != "::" {
		return []string{bind}
	}
	var loopback, other []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr().Unmap()
		switch {
		case ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified():
		case ip.IsLoopback():
			loopback = append(loopback, ip.String())
		default:
			other = append(other, ip.String())
		}
	}
	out := append(loopback, other...)
	if len(out) == 0 {
		out = []string{"127.0.0.1"}
	}
	return out
}

// loadOrCreateSecret reads a 32-byte server secret from dir/name, creating it (mode 0600)
// the first time; without a data directory it is random for this process. Replicas that
// share the data directory (or a copy of the file) share the secret, and so the OIDC session
// keys derived from it.
func loadOrCreateSecret(dir, name string) ([]byte, error) {
	if dir == "" {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	}
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return b, nil
	} else if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := pki.WriteFileAtomic(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return b, nil
}

// goCache is the Go build cache of function builds (under the data directory, so rebuilds
// compile only the function; "" the toolchain's default).
func goCache(dataDir string) string {
	if dataDir == "" {
		return ""
	}
	return filepath.Join(dataDir, "cache", "gobuild")
}
