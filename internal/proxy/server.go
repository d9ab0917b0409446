package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"apoxy.dev/apoxy/internal/proxy/filter"
	"apoxy.dev/apoxy/internal/proxy/h1"
	"apoxy.dev/apoxy/internal/proxy/ratelimit"

	"apoxy.dev/apoxy/internal/accesslog"
	"apoxy.dev/apoxy/internal/hostname"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/route"
	"apoxy.dev/apoxy/internal/proxy/upstream"
)

// Options configure a Server.
type Options struct {
	Logger *slog.Logger
	// AccessLog receives one JSON line per request (default: discarded).
	AccessLog io.Writer
	// SpanExporter, if set, returns where the spans of a collector pipeline (an ir.Collector
	// Name; "" for Gateways whose Proxy has none) go; nil exporters drop them.
	SpanExporter func(collector string) sdktrace.SpanExporter
	// AccessLogFormat, if set, is the format of every line AccessLog gets ("json": the
	// default JSON line, or an Envoy command-operator text format), whatever the Gateways'
	// own formats; "" writes each line in its Gateway's format.
	AccessLogFormat string
	// Pipelines carry the Proxies' telemetry to their collectors (nil: nothing is exported).
	Pipelines Pipelines
	Upstream  upstream.Options
	// DrainTimeout bounds graceful shutdown of sockets (default 30 s).
	DrainTimeout time.Duration
	// Requests is how inbound requests are cleaned before routing (path normalisation,
	// trusted proxies, underscore headers).
	Requests RequestPolicy
	// MaxConnections caps the downstream connections of every listener together (0: three
	// quarters of the file descriptors left after a reserve for the API server, admin listener
	// and storage; see connectionBudget), so a flood of idle connections cannot starve them.
	// Connections over the cap are accepted and closed at once (HTTP: after a bare 503).
	MaxConnections int
	// MaxConnectionsPerListener caps each socket's connections (0: only the process cap).
	MaxConnectionsPerListener int
	// BodyReadTimeout ends a request whose client sends no body byte for this long (408;
	// default h1.DefaultBodyReadTimeout, 60 s).
	BodyReadTimeout time.Duration
	// RateLimitStore counts Global rate-limit rules (apoxy dev --redis); nil: none, and
	// such rules follow their policy's failure mode.
	RateLimitStore ratelimit.Store
	// Functions loads and hosts edge functions (nil: routes that use one answer 503).
	Functions filter.Functions
	// DrainAccept keeps listeners accepting during the final drain (Close): new connections
	// are served with Connection: close until the drain goes quiet, instead of being refused
	// while in-flight requests finish (apoxy server and dev set it).
	DrainAccept bool
}

// reservedFDs are file descriptors kept for everything but downstream connections' own
// count: the API server, the admin listener, storage, DNS and logs.
const reservedFDs = 256

// connectionBudget derives the downstream connection cap from the open-file limit: three
// quarters of what is left after reservedFDs, the last quarter kept for upstream connections
// (an idle client connection needs none; an active request needs one).
func connectionBudget() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 4096
	}
	n := (int64(rl.Cur) - reservedFDs) * 3 / 4
	return int(max(min(n, 1<<20), 64))
}

// Dial connects the gateway's own outbound requests (edge functions' fetches) under the
// destination policy of scope, as requests to Backends are.
func (s *Server) Dial(ctx context.Context, scope, network, addr string) (net.Conn, error) {
	return s.upstreams.Dial(ctx, scope, network, addr)
}

// Server is the data plane. Create with New; feed with Apply; stop with Close.
type Server struct {
	opts      Options
	log       *slog.Logger
	accessLog *accessLogger
	metrics   *metrics
	upstreams *upstream.Manager
	// unrouted counts requests no route matched (route label "none").
	unrouted routeMetrics
	// conns is the downstream connection budget every listener shares.
	conns *h1.ConnLimiter
	// env is what filter stages share across configurations (rate-limit counters, metrics).
	env *filter.Env
	// stores are the global rate-limit stores the served snapshots name.
	stores *rateLimitStores
	// streams are the projects' access-log streams (Logs), kept while the process runs.
	streamsMu sync.Mutex
	streams   map[string]*accesslog.Stream
	// tracers are the Gateways' tracer providers, kept across swaps.
	tracers *tracers
	// pipes are the Proxies' collector pipelines (nil: none).
	pipes Pipelines

	mu        sync.Mutex
	drain     time.Duration
	snapshots map[string]*ir.Snapshot
	sockets   map[string]socket
	version   string
	// bindErrors are sockets the last Apply could not bind (port in use...), by listener name.
	// They are retried on every Apply; the rest of the configuration serves meanwhile.
	bindErrors map[string]error
}

// New returns a server with no sockets.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.Upstream.Logger == nil {
		opts.Upstream.Logger = opts.Logger
	}
	m := defaultMetrics()
	userHook := opts.Upstream.OnHealth
	opts.Upstream.OnHealth = func(backend string, healthy, total int) {
		m.healthy.WithLabelValues(backend).Set(float64(healthy))
		if userHook != nil {
			userHook(backend, healthy, total)
		}
	}
	userOutlier := opts.Upstream.OnOutlier
	opts.Upstream.OnOutlier = func(backend string, ip netip.Addr, ejected bool, nowEjected int) {
		if ejected {
			m.ejections.WithLabelValues(backend).Inc()
		}
		m.ejected.WithLabelValues(backend).Set(float64(nowEjected))
		if userOutlier != nil {
			userOutlier(backend, ip, ejected, nowEjected)
		}
	}
	if opts.MaxConnections == 0 {
		opts.MaxConnections = connectionBudget()
	}
	stores := &rateLimitStores{byName: map[string]*namedStore{}}
	if hs, ok := opts.RateLimitStore.(healthStore); ok {
		stores.process = hs
	}
	s := &Server{
		env:        &filter.Env{RateLimits: ratelimit.NewLocal(), Global: opts.RateLimitStore, Stores: stores.get, Metrics: m.filters, Kept: &filter.Kept{}, Functions: opts.Functions},
		stores:     stores,
		conns:      h1.NewConnLimiter(opts.MaxConnections),
		opts:       opts,
		log:        opts.Logger,
		accessLog:  newAccessLogger(opts.AccessLog, serverFormat(opts.AccessLogFormat, opts.Logger), m.accessLogDropped.Inc),
		streams:    map[string]*accesslog.Stream{},
		tracers:    &tracers{exporter: opts.SpanExporter},
		pipes:      opts.Pipelines,
		metrics:    defaultMetrics(),
		unrouted:   routeMetrics{route: "none"},
		upstreams:  upstream.NewManager(opts.Upstream),
		snapshots:  map[string]*ir.Snapshot{},
		sockets:    map[string]socket{},
		bindErrors: map[string]error{},
	}
	if s.tracers.exporter == nil && s.pipes != nil {
		s.tracers.exporter = s.pipes.SpanExporter
	}
	s.accessLog.pipes = s.pipes
	scraped.add(s)
	s.env.Clusters = s.upstreams.Cluster
	s.env.Dial, s.env.RootCAs = s.upstreams.Dial, s.upstreams.RootCAs()
	return s
}

// graph is what a socket serves at one moment.
type graph struct {
	table    *route.Table[*routeHandler]
	certs    *certIndex
	clusters map[string]*upstream.Cluster
	l4       *l4Route   // TCP and UDP listeners
	sni      []sniRoute // TLS (passthrough) listeners, most specific first
}

// Cluster resolves a backend name for the filter stages (mirrors).
func (g *graph) Cluster(name string) *upstream.Cluster { return g.clusters[name] }

// Apply replaces the snapshot of one source (a project) and serves the union of all sources.
// On error nothing changes: the previous graphs keep serving.
func (s *Server) Apply(source string, snap *ir.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]*ir.Snapshot, len(s.snapshots)+1)
	for k, v := range s.snapshots {
		next[k] = v
	}
	if snap == nil {
		delete(next, source)
	} else {
		next[source] = snap
	}
	current := make(map[string]ir.Protocol, len(s.sockets))
	for name, sk := range s.sockets {
		current[name] = sk.base().proto
	}
	merged, err := merge(next, current)
	if err != nil {
		return err
	}
	if err := s.serve(merged); err != nil {
		return err
	}
	s.snapshots = next
	return nil
}

// Remove stops serving a source.
func (s *Server) Remove(source string) error { return s.Apply(source, nil) }

// merge unions the sources' snapshots in source order: sockets by name; on the same socket,
// a virtual host (listener hostname + hostname) already served by an earlier source wins.
func merge(snaps map[string]*ir.Snapshot, current map[string]ir.Protocol) (*ir.Snapshot, error) {
	sources := make([]string, 0, len(snaps))
	for k := range snaps {
		sources = append(sources, k)
	}
	slices.Sort(sources)
	// The control plane (internal/claims) grants a socket to one protocol and hostnames to
	// one project, and removes what it denies before a snapshot gets here. Two sources
	// disagree only between one project's release and the next one's claim; meanwhile a
	// socket keeps the protocol it is serving.
	proto := map[string]ir.Protocol{}
	for _, src := range sources {
		for _, l := range snaps[src].Listeners {
			if p, ok := proto[l.Name]; !ok || p != current[l.Name] && l.Protocol == current[l.Name] {
				proto[l.Name] = l.Protocol
			}
		}
	}
	out := &ir.Snapshot{}
	listeners := map[string]*ir.Listener{}
	backends := map[string]bool{}
	certs := map[string]bool{}
	for _, src := range sources {
		snap := snaps[src]
		for _, l := range snap.Listeners {
			if l.Protocol != proto[l.Name] {
				continue
			}
			m, ok := listeners[l.Name]
			if !ok {
				m = &ir.Listener{Name: l.Name, Address: l.Address, Port: l.Port, Protocol: l.Protocol, NoHTTP3: l.NoHTTP3, HTTP: l.HTTP}
				listeners[l.Name] = m
				out.Listeners = append(out.Listeners, m)
			} else {
				// A socket shared by projects serves them all before it knows which one a
				// request is for: one project's limits must not hold the others' clients, so
				// the data plane's defaults apply.
				m.HTTP = nil
			}
			m.NoHTTP3 = m.NoHTTP3 || l.NoHTTP3
			if m.L4 == nil {
				m.L4 = l.L4 // a TCP socket has one route: the earlier source keeps it
			}
			for _, r := range l.SNIRoutes {
				if !slices.ContainsFunc(m.SNIRoutes, func(o *ir.SNIRoute) bool { return o.Hostname == r.Hostname }) {
					m.SNIRoutes = append(m.SNIRoutes, r) // an earlier source keeps a server name
				}
			}
			if l.TLS != nil {
				if m.TLS == nil {
					m.TLS = &ir.ListenerTLS{}
				}
				m.TLS.Certificates = append(m.TLS.Certificates, l.TLS.Certificates...)
			}
			for _, vh := range l.VirtualHosts {
				if !slices.ContainsFunc(m.VirtualHosts, func(o *ir.VirtualHost) bool {
					return o.ListenerHostname == vh.ListenerHostname && o.Hostname == vh.Hostname
				}) {
					m.VirtualHosts = append(m.VirtualHosts, vh)
				}
			}
		}
		for _, b := range snap.Backends {
			if !backends[b.Name] {
				backends[b.Name] = true
				out.Backends = append(out.Backends, b)
			}
		}
		for _, c := range snap.Certificates {
			if !certs[c.Name] {
				certs[c.Name] = true
				out.Certificates = append(out.Certificates, c)
			}
		}
	}
	for _, l := range out.Listeners {
		slices.SortStableFunc(l.VirtualHosts, compareVirtualHosts)
		slices.SortStableFunc(l.SNIRoutes, func(a, b *ir.SNIRoute) int { return hostname.Compare(a.Hostname, b.Hostname) })
	}
	for _, snap := range snaps {
		out.DrainTimeout = max(out.DrainTimeout, snap.DrainTimeout)
		for name, st := range snap.RateLimitStores { // names are scoped by project
			if out.RateLimitStores == nil {
				out.RateLimitStores = map[string]*ir.RedisStore{}
			}
			out.RateLimitStores[name] = st
		}
		for name, t := range snap.Telemetry { // keys are scoped by project too
			if out.Telemetry == nil {
				out.Telemetry = map[string]*ir.Telemetry{}
			}
			out.Telemetry[name] = t
		}
	}
	if err := out.Validate(); err != nil {
		return nil, err
	}
	out.SetVersion()
	return out, nil
}

// compareVirtualHosts keeps the merged order most specific first (stable across sources).
func compareVirtualHosts(a, b *ir.VirtualHost) int {
	return hostname.ComparePairs(a.ListenerHostname, a.Hostname, b.ListenerHostname, b.Hostname)
}

// serve compiles the merged snapshot, binds new sockets, then swaps graphs and closes sockets
// no longer used. Errors before the swap leave everything as it was.
func (s *Server) serve(snap *ir.Snapshot) error {
	// Stores the snapshot names are opened (or kept) before routes compile against them;
	// those it no longer names close after the swap, and new ones close again on failure.
	s.stores.prepare(snap.RateLimitStores)
	// What stages keep across swaps (htpasswd verifiers, JWKS caches) likewise.
	s.env.Kept.Begin()
	swapped := false
	if s.pipes != nil {
		s.pipes.Prepare(snap.Telemetry) // before the tracers that export to them
	}
	defer func() {
		if s.pipes != nil {
			s.pipes.Finish(swapped)
		}
		s.tracers.finish(swapped)
		s.stores.finish(swapped)
		s.env.Kept.End(swapped)
	}()
	graphs := map[string]*graph{}
	tels := s.compileTelemetry(snap)
	probePorts := map[string]int32{}
	counters := map[string]bool{} // Local rate-limit counters in use
	for _, l := range snap.Listeners {
		table, err := route.Compile(l, func(r *ir.Route) (*routeHandler, error) {
			if r.RateLimit != nil {
				for _, rr := range r.RateLimit.Rules {
					counters[rr.Counter] = true
				}
			}
			for _, b := range r.Backends {
				if !b.Invalid && probePorts[b.Backend] == 0 {
					probePorts[b.Backend] = b.Port
				}
			}
			return s.newRouteHandler(r, l, tels)
		})
		if err != nil {
			return fmt.Errorf("proxy: listener %s: %w", l.Name, err)
		}
		g := &graph{table: table}
		for _, r := range l.SNIRoutes {
			g.sni = append(g.sni, sniRoute{hostname: r.Hostname, route: newL4Route(r.Route, tels), terminate: r.Terminate})
			for _, b := range r.Route.Backends {
				if !b.Invalid && probePorts[b.Backend] == 0 {
					probePorts[b.Backend] = b.Port
				}
			}
		}
		if l.L4 != nil {
			g.l4 = newL4Route(l.L4, tels)
			for _, b := range l.L4.Backends {
				if !b.Invalid && probePorts[b.Backend] == 0 {
					probePorts[b.Backend] = b.Port
				}
			}
		}
		if l.Protocol == ir.ProtocolHTTPS || l.Protocol == ir.ProtocolTLS && l.TLS != nil {
			if g.certs, err = newCertIndex(l.TLS, snap.Certificates); err != nil {
				return fmt.Errorf("proxy: listener %s: %w", l.Name, err)
			}
		}
		graphs[l.Name] = g
	}
	// Bind what is new. A socket that cannot be bound (its port is taken) is reported through
	// BindError and left out; every other listener serves.
	var opened []socket
	bindErrors := map[string]error{}
	for _, l := range snap.Listeners {
		if old, ok := s.sockets[l.Name]; ok && old.base().proto == l.Protocol {
			continue
		}
		sk, err := s.listen(l)
		if err != nil {
			bindErrors[l.Name] = err
			delete(graphs, l.Name)
			continue
		}
		opened = append(opened, sk)
	}
	for name, err := range bindErrors {
		if _, had := s.bindErrors[name]; !had {
			s.log.Error("cannot listen; the listener is not served until the address is free", "listener", name, "err", err)
		}
	}
	s.bindErrors = bindErrors
	clusters := s.upstreams.Sync(snap.Backends, probePorts)
	for _, g := range graphs {
		g.clusters = clusters
	}
	for _, sk := range opened {
		name := sk.base().name
		if old, ok := s.sockets[name]; ok { // protocol changed on the same address
			go s.closeSocket(old, false)
		}
		s.sockets[name] = sk
	}
	for name, sk := range s.sockets {
		if g, ok := graphs[name]; ok {
			sk.base().graph.Store(g)
		}
	}
	for _, l := range snap.Listeners {
		if sk, ok := s.sockets[l.Name]; ok {
			sk.configure(l)
		}
	}
	for _, sk := range opened {
		go sk.serve()
	}
	for name, sk := range s.sockets {
		if _, ok := graphs[name]; !ok {
			delete(s.sockets, name)
			go s.closeSocket(sk, false)
		}
	}
	s.env.RateLimits.Retain(func(c string) bool { return counters[c] })
	swapped = true
	s.drain = s.opts.DrainTimeout
	if snap.DrainTimeout > 0 {
		s.drain = time.Duration(snap.DrainTimeout)
	}
	if s.version != snap.Version {
		s.log.Info("data plane updated", "version", snap.Version, "listeners", len(graphs), "backends", len(snap.Backends))
		s.version = snap.Version
	}
	return nil
}

// Addrs returns the bound address of every socket, by listener name (for tests using port 0).
func (s *Server) Addrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for name, sk := range s.sockets {
		out[name] = sk.addr()
	}
	return out
}

// BindError returns why a listener (by name, "address:port") could not be bound by the last
// Apply, or nil.
func (s *Server) BindError(listener string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bindErrors[listener]
}

// EndpointState is the data plane's view of one resolved endpoint address.
type EndpointState struct {
	Address string
	Healthy bool
}

// Endpoints reports a backend's resolved addresses and their health; ok is false when no
// current snapshot uses the backend.
func (s *Server) Endpoints(backend string) (states []EndpointState, ok bool) {
	c := s.Cluster(backend)
	if c == nil {
		return nil, false
	}
	for _, a := range c.Addresses() {
		states = append(states, EndpointState{Address: a.IP.String(), Healthy: a.Healthy()})
	}
	return states, true
}

// Denied lists a backend's resolved addresses the destination policy refused, with reasons.
func (s *Server) Denied(backend string) []string {
	if c := s.Cluster(backend); c != nil {
		return c.Denied()
	}
	return nil
}

// Cluster returns the live cluster of a backend (for status and tests).
func (s *Server) Cluster(name string) *upstream.Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sk := range s.sockets {
		if g := sk.base().graph.Load(); g != nil {
			if c, ok := g.clusters[name]; ok {
				return c
			}
		}
	}
	return nil
}

// FlushAccessLog writes out buffered access-log lines (tests read them at once).
func (s *Server) FlushAccessLog() { s.accessLog.Flush() }

// Clusters returns every live cluster (for status and tests).
func (s *Server) Clusters() []*upstream.Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[*upstream.Cluster]bool{}
	var out []*upstream.Cluster
	for _, sk := range s.sockets {
		if g := sk.base().graph.Load(); g != nil {
			for _, c := range g.clusters {
				if !seen[c] {
					seen[c] = true
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// Close drains every socket (up to DrainTimeout) and stops upstream clusters.
func (s *Server) Close() {
	s.mu.Lock()
	sockets := s.sockets
	s.sockets = map[string]socket{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, sk := range sockets {
		wg.Add(1)
		go func() { defer wg.Done(); s.closeSocket(sk, true) }()
	}
	wg.Wait()
	s.upstreams.Close()
	s.env.Kept.Close()
	scraped.remove(s)
	s.tracers.close()
	s.accessLog.Close()
	if s.pipes != nil {
		s.pipes.Close()
	} // writes out what is pending; lines logged later are dropped
}
